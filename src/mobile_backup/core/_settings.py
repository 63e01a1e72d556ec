"""One settings object for every component.

Precedence: explicit argument > environment (`MOBILE_BACKUP_*`) > the profile's section of
the TOML config file > default. The config file lives in the platform's config dir
(override with `MOBILE_BACKUP_CONFIG_FILE`) and holds one `[profiles.NAME]` table per
deployment; `local` is written by `mobile-backup local up`.

This is the only module that reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from mobile_backup.core._errors import ConfigError

ENV_PREFIX = "MOBILE_BACKUP_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
PROFILE_ENV = f"{ENV_PREFIX}PROFILE"
DEFAULT_PROFILE = "default"
APP_NAME = "mobile-backup"
# Credentials the emulator accepts; refused for anything that is not the local stack.
EMULATOR_KEY = "testing"


def config_file_path() -> Path:
    """Where profiles are stored."""
    override = os.environ.get(CONFIG_FILE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs  # not needed on the Lambda path

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_state_dir() -> Path:
    """Where the client journal, tokens and agent state live by default."""
    override = os.environ.get(f"{ENV_PREFIX}STATE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    import tomllib  # only where there is a file (a Lambda has none): its import is ~3 ms

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


DEFAULT_PROFILE_KEY = "default_profile"


def selected_profile(explicit: str | None = None, path: Path | None = None) -> str:
    """The profile a command uses: `--profile`, else MOBILE_BACKUP_PROFILE, else the config
    file's `default_profile`, else its only profile when it has exactly one, else
    `default` (as `aws` picks a profile)."""
    return _select(explicit, lambda: _read_config(path or config_file_path()))


def _select(explicit: str | None, config: Callable[[], dict[str, Any]]) -> str:
    """`selected_profile` over a config read only when the choice needs it."""
    if explicit:
        return explicit
    if os.environ.get(PROFILE_ENV):
        return os.environ[PROFILE_ENV]
    data = config()
    chosen = data.get(DEFAULT_PROFILE_KEY)
    if isinstance(chosen, str) and chosen:
        return chosen
    profiles = data.get("profiles", {})
    if isinstance(profiles, dict) and len(profiles) == 1 and DEFAULT_PROFILE not in profiles:
        return str(next(iter(profiles)))
    return DEFAULT_PROFILE


def set_default_profile(name: str, path: Path | None = None) -> Path:
    """Make `name` the profile commands use without --profile."""
    import tomlkit

    path = path or config_file_path()
    profiles = read_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile named {name!r} in {path} (known: {known})")
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    doc[DEFAULT_PROFILE_KEY] = name
    _write_private(path, tomlkit.dumps(doc))
    return path


def read_profiles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """All profiles in the config file ({} when there is no file)."""
    path = path or config_file_path()
    return _profiles_of(_read_config(path), path)


def _profiles_of(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table")
    return profiles


def write_profile(name: str, values: dict[str, object], path: Path | None = None) -> Path:
    """Create or replace one profile; everything else in the file (other profiles, the
    user's comments and layout) is kept as it was (`tomlkit` round-trips it). The file is
    private (0600) and replaced atomically."""
    import tomlkit  # the CLI's dependency; only the commands that write profiles need it

    path = path or config_file_path()
    read_profiles(path)  # a broken file is reported, never overwritten
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    doc = tomlkit.parse(text) if text else tomlkit.document()
    if not text:
        doc.add(tomlkit.comment(_HEADER))
    if "profiles" not in doc:
        doc.add("profiles", tomlkit.table(is_super_table=True))
    table = tomlkit.table()
    for key, value in sorted(values.items()):
        if value is not None:
            table.add(key, str(value) if isinstance(value, Path) else value)
    profiles: Any = doc["profiles"]
    profiles[name] = table
    _write_private(path, tomlkit.dumps(doc))
    return path


def _write_private(path: Path, text: str) -> None:
    """Replace the config file atomically, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


_HEADER = "Mobile Backup deployments; edit with care or re-run the command that wrote them."


def _profile_values(
    profile: str, profiles: dict[str, dict[str, Any]], path: Path
) -> dict[str, Any]:
    """The selected profile's values from the config file (lowest precedence)."""
    if profile not in profiles:
        if profile != DEFAULT_PROFILE:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile named {profile!r} in {path} (known: {known})")
        return {}
    return dict(profiles[profile])


CRASH_AT_ENV = f"{ENV_PREFIX}CRASH_AT"


def crash_spec() -> str | None:
    """The crash point this process was asked to die at (`NAME:N`), for torture runs only.

    Read here, not through `Settings`: crash points sit deep in code that holds no settings,
    and the value is a test seam, never configuration a user sets.
    """
    return os.environ.get(CRASH_AT_ENV) or None


RECORD_CALLS_ENV = f"{ENV_PREFIX}RECORD_AWS_CALLS"


def record_calls_path() -> str | None:
    """Where to record every AWS call this process makes (the IAM test sets it), or None.

    A test seam like `crash_spec`: read here so that client construction, which holds no
    settings of its own for it, can ask.
    """
    return os.environ.get(RECORD_CALLS_ENV) or None


def _environment_values() -> dict[str, str]:
    """`MOBILE_BACKUP_<FIELD>` variables by field name; names match case-insensitively."""
    values: dict[str, str] = {}
    for key, value in os.environ.items():
        upper = key.upper()
        if upper.startswith(ENV_PREFIX):
            name = upper.removeprefix(ENV_PREFIX).lower()
            if name in Settings.model_fields:
                values[name] = value
    return values


class Settings(BaseModel):
    """Everything any component needs to know about one deployment.

    A plain model: `load_settings` gathers the environment and the config file. (Not
    pydantic-settings, whose import alone costs a Lambda cold start ~50-100 ms.)
    """

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    profile: str = DEFAULT_PROFILE
    local: bool = Field(default=False, description="True for the embedded local stack")
    region: str = "us-east-1"
    aws_endpoint_url: str | None = Field(default=None, description="emulator endpoint")
    dynamodb_endpoint_url: str | None = Field(
        default=None, description="a DynamoDB of its own for the ledger (tests, benchmarks)"
    )
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_profile: str | None = Field(default=None, description="boto3 profile (PC agent)")

    api_url: str | None = None
    household: str | None = Field(
        default=None, description="the deployment's name, as its invite gave it"
    )
    user_pool_id: str | None = None
    client_id: str | None = None
    jwks_url: str | None = Field(default=None, description="override of the pool's JWKS URL")

    bucket: str | None = None
    table: str | None = None
    events_queue_url: str | None = None
    downloads_queue_url: str | None = None

    presign_expiry_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    library: Path | None = Field(default=None, description="where the agent files media")
    state_dir: Path | None = Field(default=None, description="parent of each profile's state")
    # The agent validates the template when it loads it (agent/_template.py).
    path_template: str = Field(
        default="{user}/{year}/{month}/{filename}", description="the agent's library layout"
    )
    delete_after_download: bool = Field(
        default=False, description="agent deletes the cloud copy after its receipt"
    )
    pc_name: str | None = Field(
        default=None,
        description="this PC's name (default main); others register with `agent register`",
    )
    shared_library: bool = Field(
        default=False,
        description=(
            "library readable by other accounts of the PC (folders 0755, files 0644 under "
            "the umask) instead of private (0700 and 0600); Windows inherits the folder's ACL"
        ),
    )

    @field_validator("pc_name")
    @classmethod
    def _pc_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", value):
            raise ValueError(f"{value!r} is not a PC name: use 1-20 of a-z, 0-9 and '-'")
        return value

    @field_validator("api_url", "aws_endpoint_url", "dynamodb_endpoint_url", "jwks_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def model_post_init(self, context: Any, /) -> None:
        secret = self.aws_secret_access_key
        if not self.local and secret is not None and secret.get_secret_value() == EMULATOR_KEY:
            raise ConfigError(
                "the emulator's placeholder AWS key is set for a non-local profile; "
                "use a real credential (or the boto3 credential chain) outside the local stack"
            )

    @classmethod
    def explicit(cls, **values: Any) -> Settings:
        """Settings from these values and defaults only (no environment, no config file).

        For code that builds a deployment's settings itself: the local stack and tests.
        """
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(exc) from exc

    # Derived values ------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The `iss` claim Cognito puts in this pool's tokens."""
        pool = self.require("user_pool_id")
        return f"https://cognito-idp.{self.region}.amazonaws.com/{pool}"

    @property
    def effective_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        if self.aws_endpoint_url:
            return f"{self.aws_endpoint_url}/{self.require('user_pool_id')}/.well-known/jwks.json"
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def effective_state_dir(self) -> Path:
        """This profile's own folder under the state dir (each deployment its own session)."""
        return (self.state_dir or default_state_dir()) / self.profile

    def require(self, name: str) -> str:
        """A string setting that must be present, or a ConfigError naming it."""
        value = getattr(self, name)
        if value in (None, ""):
            env = f"{ENV_PREFIX}{name.upper()}"
            raise ConfigError(
                f"setting {name!r} is not configured for profile {self.profile!r} "
                f"({_profiles_hint(self.profile)}set {env}, "
                "or run `mobile-backup local up` / `mobile-backup deploy`)"
            )
        return str(value)


def _profiles_hint(current: str) -> str:
    """Which other profiles exist, for an error about the current one ('' if none)."""
    try:
        others = sorted(set(read_profiles()) - {current})
    except ConfigError:
        return ""
    if not others:
        return ""
    return (
        f"profiles configured: {', '.join(others)}; choose one with --profile NAME or make "
        "it the default with `mobile-backup profiles default NAME`, or "
    )


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    return ConfigError(f"invalid setting {where}: {message}")


def load_settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Build Settings, turning validation problems into one readable ConfigError."""
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if profile:
        kwargs["profile"] = profile
    environment = _environment_values()
    # The config file is read once, whether it chooses the profile and gives its values or
    # only gives them.
    path = config_file_path()
    read: list[dict[str, Any]] = []

    def config() -> dict[str, Any]:
        if not read:
            read.append(_read_config(path))
        return read[0]

    selected = _select(kwargs.get("profile"), config)
    kwargs["profile"] = selected
    # Precedence: explicit argument > environment > the profile in the config file > default.
    profile_values = _profile_values(selected, _profiles_of(config(), path), path)
    values = {**profile_values, **environment, **kwargs}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _config_error(exc) from exc
