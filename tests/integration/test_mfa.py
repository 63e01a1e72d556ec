"""A second factor at sign-in (issue 30): codes from an authenticator app, against the
emulator's Cognito, which checks them (`MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP`) and asks a
member without one to set it up where the pool requires it (`local/_emulator_fixes_cognito.py`).

The CLI runs as a person runs it: in a process of its own, reading the key it prints before
the code is typed. The codes are computed from that key as an authenticator app would
(RFC 6238: HMAC-SHA1 of the 30-second step, six digits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import settings_for
from mobile_backup.aws import cognito_client
from mobile_backup.client import (
    Authenticator,
    LoginError,
    MfaRequiredError,
    MfaSetupRequiredError,
    TokenStore,
)
from mobile_backup.core import Settings, write_profile
from mobile_backup.deploy import add_member
from mobile_backup.local import profile_values, provision

pytestmark = pytest.mark.integration

PROFILE = "mfa"
TEMP = "Temp-Password-1"
OWN = "Own-Password-42"


def totp(secret: str, *, at: float | None = None) -> str:
    """The code an authenticator app shows for `secret` now (or at `at`)."""
    key = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8),
                           casefold=True)  # fmt: skip
    step = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def fresh_code(secret: str) -> str:
    """A code with at least two seconds of its 30 left (the emulator allows no drift)."""
    if time.time() % 30 > 28:
        time.sleep(30 - time.time() % 30 + 0.1)
    return totp(secret)


def pool_with(emulator: Any, mfa: str) -> Settings:
    resources = provision(
        endpoint_url=emulator.endpoint_url,
        stack_name=f"m{uuid.uuid4().hex[:10]}",
        parameters={"Mfa": mfa},
    )
    settings = settings_for(resources).model_copy(update={"profile": PROFILE})
    write_profile(PROFILE, profile_values(settings))
    return settings


def member(settings: Settings, *, password: str | None = None) -> str:
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    add_member(
        cognito_client(settings, component="test"),
        user_pool_id=settings.require("user_pool_id"),
        email=email,
        **({"password": password} if password else {"temporary_password": TEMP}),
    )
    return email


class Cli:
    """One CLI command, fed line by line as a person would type."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mobile_backup", "--profile", PROFILE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.seen: list[str] = []

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_until(self, pattern: str) -> re.Match[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"never printed {pattern!r}: {''.join(self.seen)}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.seen) + out, err


def test_a_required_second_factor_is_set_up_at_the_first_sign_in_then_asked_each_time(
    emulator: Any,
) -> None:
    settings = pool_with(emulator, "required")
    email = member(settings)
    login = Cli("login", "--email", email, "--password-stdin")
    login.type(TEMP)
    login.type(OWN)
    key = login.read_until(r"Key: ([A-Z2-7 ]+)").group(1)
    assert login.seen[-2].strip(), "a QR code of the key comes first"
    login.type(fresh_code(key))
    code, out, err = login.finish()
    assert code == 0, err
    assert "Your new password is set." in out
    assert "The authenticator app is set up" in out
    assert f"Signed in as {email}" in out

    # From now on every sign-in asks for the code, and only the right one signs in.
    again = Cli("login", "--email", email, "--password-stdin")
    again.type(OWN)
    again.type("000000" if totp(key) != "000000" else "111111")
    code, out, err = again.finish()
    assert code == 1
    assert err.strip().splitlines() == [
        "error: that is not the code your authenticator app shows now; enter the current one"
    ]
    right = Cli("login", "--email", email, "--password-stdin")
    right.type(OWN)
    right.type(fresh_code(key))
    code, out, err = right.finish()
    assert (code, err) == (0, "")
    assert f"Signed in as {email}" in out


def test_a_member_already_signed_up_is_asked_to_set_one_up_when_it_becomes_required(
    emulator: Any, tmp_path: Path
) -> None:
    settings = pool_with(emulator, "required")
    email = member(settings, password=OWN)
    auth = Authenticator(settings=settings, store=TokenStore(tmp_path / "s.json"))
    with pytest.raises(MfaSetupRequiredError) as asked:
        auth.login(email, OWN)
    challenge = asked.value.challenge
    assert challenge.secret
    assert challenge.otpauth_uri().startswith(
        f"otpauth://totp/Mobile%20Backup:{email}?secret={challenge.secret}"
    )
    with pytest.raises(LoginError, match="six digits"):
        auth.answer_mfa(challenge, "12345")  # refused before it reaches Cognito
    tokens = auth.answer_mfa(challenge, fresh_code(challenge.secret))
    assert tokens.username == email
    assert auth.current() == tokens


def test_an_optional_second_factor_is_turned_on_and_off_by_the_member(emulator: Any) -> None:
    settings = pool_with(emulator, "optional")
    email = member(settings, password=OWN)
    login = Cli("login", "--email", email, "--password-stdin")
    login.type(OWN)
    code, out, err = login.finish()
    assert code == 0, err  # optional, and not set up: no code asked

    setup = Cli("mfa", "setup", "--code-stdin")
    key = setup.read_until(r"Key: ([A-Z2-7 ]+)").group(1)
    setup.type(fresh_code(key))
    code, out, err = setup.finish()
    assert code == 0, err
    assert "every sign-in now asks for a code" in out

    auth = Authenticator(settings=settings, store=TokenStore(settings.effective_state_dir / "x"))
    with pytest.raises(MfaRequiredError) as asked:
        auth.login(email, OWN)
    assert not isinstance(asked.value, MfaSetupRequiredError)
    auth.answer_mfa(asked.value.challenge, fresh_code(key))

    off = Cli("mfa", "off")
    code, out, err = off.finish()
    assert code == 0, err
    assert (
        Authenticator(settings=settings, store=TokenStore(settings.effective_state_dir / "y"))
        .login(email, OWN)
        .username
        == email
    )


# The first sign-in's own password (issue 31) -----------------------------------------------


def test_a_weak_new_password_is_refused_in_words_and_asked_for_again_on_a_terminal(
    emulator: Any,
) -> None:
    """At a terminal (getpass reads the terminal itself, so the CLI runs on a pseudo-terminal):
    a weak password is refused before "again" is asked, a mismatch is asked again too, and
    the member is not sent back to the e-mail."""
    import fcntl
    import pty
    import termios

    settings = pool_with(emulator, "off")
    email = member(settings)
    primary, secondary = pty.openpty()

    def own_terminal() -> None:  # the pseudo-terminal becomes the CLI's /dev/tty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "mobile_backup", "--profile", PROFILE, "login", "--email", email],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        preexec_fn=own_terminal,
    )
    os.close(secondary)
    seen = everything = ""

    def answer(prompt: str, line: str) -> None:
        nonlocal seen, everything
        deadline = time.monotonic() + 60
        while prompt not in seen and time.monotonic() < deadline:
            try:
                chunk = os.read(primary, 4096).decode(errors="replace")
            except OSError:
                break
            seen += chunk
            everything += chunk
        assert prompt in seen, seen
        seen = seen[seen.index(prompt) + len(prompt) :]
        os.write(primary, (line + "\n").encode())

    answer("Password: ", TEMP)
    answer("New password: ", "short")
    answer("New password: ", OWN)
    answer("New password again: ", OWN + "x")
    answer("New password: ", OWN)
    answer("New password again: ", OWN)
    transcript = seen
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        transcript += chunk.decode(errors="replace")
    assert proc.wait(timeout=60) == 0, everything + transcript
    os.close(primary)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", everything + transcript)  # the terminal's bold
    assert f"Signed in as {email}" in plain
    refusals = [line.strip() for line in plain.splitlines() if line.endswith("try again.")]
    assert refusals == [
        "the password needs at least 10 characters, with a lower-case letter, an upper-case "
        "letter and a number: try again.",
        "the two new passwords differ: try again.",
    ]


def test_standard_input_gives_one_try_per_line_and_ends_with_one_line_when_none_is_left(
    emulator: Any,
) -> None:
    settings = pool_with(emulator, "off")
    email = member(settings)
    login = Cli("login", "--email", email, "--password-stdin")
    login.type(TEMP)
    login.type("alllowercase-but-long")
    login.type(OWN)
    code, out, err = login.finish()
    assert code == 0, err
    assert err.strip().splitlines() == [
        "the password needs at least 10 characters, with a lower-case letter, an upper-case "
        "letter and a number: trying the next line."
    ]
    assert "Your new password is set." in out

    other = member(settings)
    login = Cli("login", "--email", other, "--password-stdin")
    login.type(TEMP)
    login.type("weak")
    code, out, err = login.finish()  # standard input ends: nothing more to try
    assert code != 0
    assert err.strip().splitlines()[-1] == (
        "error: the password needs at least 10 characters, with a lower-case letter, an "
        "upper-case letter and a number; nothing was changed (run login again)"
    )


def test_a_forgotten_password_is_reset_with_the_mailed_code_then_the_member_is_signed_in(
    emulator: Any,
) -> None:
    """Issue 31, item 12: Cognito's ForgotPassword flow from the CLI. The emulator mails
    nothing and hands the code back, which the CLI shows on the local stack only."""
    settings = pool_with(emulator, "off")
    email = member(settings, password=OWN)
    reset = Cli("login", "--email", email, "--forgot-password", "--password-stdin")
    code = reset.read_until(r"its code is (\S+)").group(1)
    reset.type(code)
    reset.type("weak")
    reset.type("Brand-New-Password-7")
    status, out, err = reset.finish()
    assert status == 0, err
    assert "the password needs at least 10 characters" in err  # refused in words first
    assert "Your new password is set." in out
    assert f"Signed in as {email}" in out
    again = Cli("login", "--email", email, "--password-stdin")
    again.type("Brand-New-Password-7")
    assert again.finish()[0] == 0
    old = Cli("login", "--email", email, "--password-stdin")
    old.type(OWN)
    assert old.finish()[0] == 1  # the old one no longer works

    wrong = Cli("login", "--email", email, "--forgot-password", "--password-stdin")
    real = wrong.read_until(r"its code is (\S+)").group(1)
    wrong.type(real[:-1] + ("0" if real[-1] != "0" else "1"))
    wrong.type("Another-Password-8")
    status, out, err = wrong.finish()
    assert status == 1
    assert err.strip().splitlines()[-1].startswith("error: that code")
