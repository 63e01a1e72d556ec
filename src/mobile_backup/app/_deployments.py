"""The households this device knows: the profiles of its config file that name a
deployment, and which one the app opens with (the last one joined or chosen).

A phone starts with none: its first screen asks for the invite it was sent, which becomes
a profile (`client.join_profile`). A member of two households holds two and switches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mobile_backup.core import Settings, default_state_dir, read_profiles

log = logging.getLogger(__name__)

_CHOSEN = "app-profile.json"


def known_deployments() -> list[str]:
    """The profiles of this device's config file that name a deployment (an API)."""
    try:
        profiles = read_profiles()
    except Exception as exc:  # an unreadable config file: no choice to offer, say why
        log.warning("cannot read the profiles: %s", exc)
        return []
    return sorted(name for name, values in profiles.items() if values.get("api_url"))


def _chosen_file(state_root: Path | None) -> Path:
    return (state_root or default_state_dir()) / _CHOSEN


def chosen_profile(state_root: Path | None = None) -> str | None:
    """The profile the app last used on this device (None: never chose one)."""
    try:
        data = json.loads(_chosen_file(state_root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("profile") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name in known_deployments() else None


def remember_profile(settings: Settings) -> None:
    """Open the app with this profile next time."""
    path = _chosen_file(settings.state_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"profile": settings.profile}), encoding="utf-8")
    except OSError as exc:
        log.warning("cannot remember the app's profile: %s", exc)
