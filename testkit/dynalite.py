"""A second DynamoDB on loopback: dynalite (Node), for the ledger's tests and the benchmarks.

moto is the emulator every component runs against; dynalite is an independent implementation
built to match the real service's validation and errors, so a ledger test that passes on both
has been checked by two readings of the API, as SeaweedFS checks moto's S3. It is also far
lighter per request than moto's DynamoDB, which lets a benchmark tell the ledger's cost from
the emulator's.

dynalite comes from `testkit/node` (`npm ci` from its committed lock file, which `make`
runs: `make node`); Node is on every machine this project builds on. The server listens on a
port the OS picks on 127.0.0.1, keeps its tables in memory and ends when this process closes
its stdin, so it never outlives its owner.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from mobile_backup.core import ServiceError

__all__ = ["NODE_DIR", "DynaliteError", "DynaliteServer"]

NODE_DIR = Path(__file__).parent / "node"
_SCRIPT = NODE_DIR / "dynalite.js"
_INSTALLED = NODE_DIR / "node_modules" / "dynalite" / "package.json"
HOST = "127.0.0.1"
REGION = "us-east-1"


class DynaliteError(ServiceError):
    """dynalite could not be found or started."""

    code = "dynalite_failed"


class DynaliteServer:
    """One dynalite process on 127.0.0.1; `endpoint_url` once started.

    `start()` returns once the server has said which port it listens on (tables it creates
    are ACTIVE at once); `stop()` closes its stdin and waits, and is safe to call twice. A
    server still running when the interpreter exits is stopped then.
    """

    def __init__(self, *, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.endpoint_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        node = shutil.which("node")
        if node is None:
            raise DynaliteError("Node.js (`node`) is not on PATH; dynalite needs it")
        if not _INSTALLED.is_file():
            raise DynaliteError(
                f"dynalite is not installed in {NODE_DIR}; run `make node` "
                "(npm ci from the committed lock file)"
            )
        process = subprocess.Popen(
            [node, str(_SCRIPT)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._process = process
        atexit.register(self.stop)
        port = self._read_port(process)
        self.endpoint_url = f"http://{HOST}:{port}"
        return self

    def _read_port(self, process: subprocess.Popen[str]) -> int:
        assert process.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(_line(process.stdout)), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        if not found or not found[0]:
            process.kill()
            said = (process.stderr.read() if process.stderr else "").strip()[-500:]
            self.stop()
            raise DynaliteError(f"dynalite did not start in {self.startup_timeout:.0f} s: {said}")
        try:
            return int(json.loads(found[0])["port"])
        except (ValueError, KeyError, TypeError) as exc:
            self.stop()
            raise DynaliteError(f"dynalite said {found[0]!r}, not its port") from exc

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks meter its CPU)."""
        return self._process.pid if self._process is not None else None

    def client(self) -> Any:
        """A botocore DynamoDB client for this server (standard retries)."""
        from mobile_backup.local._provision_stack import client

        return client("dynamodb", self.endpoint_url, REGION)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _line(stream: IO[str] | None) -> str:
    return stream.readline().strip() if stream is not None else ""
