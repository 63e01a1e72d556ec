"""A local server in a child interpreter, with a GIL (a core) of its own.

The child runs `code` with `python -c`. It prints one line, "READY <url>" once listening or
"ERROR <why>" when it cannot start, then serves until its stdin closes: when `stop()` closes
it, or when this process ends, since the pipe closes with it even on kill -9. No orphan
outlives its parent.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Mapping

from mobile_backup.core import ServiceError

__all__ = ["LocalServerError", "ServerProcess"]

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class LocalServerError(ServiceError):
    """A local server could not start (a port in use, a missing module)."""

    code = "local_server_failed"


class ServerProcess:
    """`start()` returns the URL the child announced; `stop()` ends it (safe to call twice)."""

    def __init__(
        self, code: str, *args: str, what: str, env: Mapping[str, str] | None = None
    ) -> None:
        self._argv = [sys.executable, "-c", code, *args]
        self._what = what
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> str:
        proc = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self._env
        )
        stdout = proc.stdout
        assert stdout is not None
        ready: list[str] = []
        # Read in a thread, so that a child that never announces itself cannot hang us.
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_SECONDS)
        line = ready[0].strip() if ready else ""
        if not line.startswith("READY "):
            _end(proc)
            if line.startswith("ERROR "):  # the child's own one-line account
                raise LocalServerError(line.removeprefix("ERROR "))
            raise LocalServerError(f"the {self._what} did not start (exit code {proc.poll()})")
        self._proc = proc
        return line.split()[1]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)


def _end(proc: subprocess.Popen[str]) -> None:
    """Close the child's stdin (its cue to stop and exit); kill it if it lingers."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):  # a child that died has closed its end
            proc.stdin.close()
    try:
        proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
