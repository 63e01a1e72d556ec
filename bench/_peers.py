"""The peers we compare with: s5cmd, rclone and boto3's transfer manager, run the same way.

Each wrapper copies a set of local files to `s3://bucket/prefix/` (or a prefix down to a
directory) on a given endpoint and returns a `PeerResult`: elapsed seconds, bytes, files,
peak RSS of the process doing the work, the tool's version and the settings used. s5cmd and
rclone are separate processes by nature; boto3 runs in a subprocess too (this module's
`__main__`), so its RSS is its own and its figure excludes interpreter start-up (it times only
the transfers). Credentials go through the environment, never argv or a file in $HOME.

Uploads are checked after the fact (`verify_prefix`): a peer that silently copied nothing
must not look fast.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import mb_per_s, run_measured

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from testkit.seaweed import SeaweedServer

    from bench._harness import BenchContext

__all__ = [
    "BOTO3_SWEEP",
    "RCLONE_SWEEP",
    "S5CMD_SWEEP_FILES",
    "S5CMD_SWEEP_PARTS",
    "Endpoint",
    "PeerResult",
    "best_setting",
    "boto3_download",
    "boto3_upload",
    "download_trial",
    "rclone_copy_down",
    "rclone_copy_up",
    "rclone_version",
    "s5cmd_download",
    "s5cmd_upload",
    "s5cmd_version",
    "upload_trial",
    "verify_prefix",
]

# Defaults each tool ships with, recorded with every result. s5cmd: 256 workers, 5 parts in
# flight per file; rclone: 4 transfers; boto3: 10 threads. Scenarios may change them and the
# change is recorded.
S5CMD_NUMWORKERS = 256
S5CMD_CONCURRENCY = 5
RCLONE_TRANSFERS = 4
BOTO3_MAX_CONCURRENCY = 10


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint and the one identity used on it."""

    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    @classmethod
    def from_seaweed(cls, server: SeaweedServer) -> Endpoint:
        return cls(server.endpoint_url, server.access_key, server.secret_key, server.region)

    @classmethod
    def from_emulator(cls, url: str) -> Endpoint:
        from mobile_backup.core import EMULATOR_KEY

        return cls(url, EMULATOR_KEY, EMULATOR_KEY)

    def env(self) -> dict[str, str]:
        """A clean environment for a peer: these credentials, no profile, no config files."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        return {
            **keep,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def client(self, *, max_pool_connections: int = 10) -> S3Client:
        import boto3
        from botocore.config import Config

        client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                max_pool_connections=max_pool_connections,
            ),
        )
        return client


@dataclass(frozen=True)
class PeerResult:
    tool: str
    version: str
    elapsed: float
    bytes: int
    files: int
    peak_rss: int
    settings: dict[str, Any] = field(default_factory=dict)
    work_cpu_s: float | None = None
    """CPU of the transfer alone, start-up left out (the floors, which run our Python)."""

    @property
    def mb_per_s(self) -> float:
        return mb_per_s(self.bytes, self.elapsed)

    @property
    def name(self) -> str:
        """`tool version`, as the report's peer column shows it."""
        return f"{self.tool} {self.version}"


def _binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` not found; install the dev extra (`pip install -e '.[dev]'`)")
    return found


def _files_bytes(files: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def _same_dir(files: Sequence[Path]) -> Path:
    parents = {p.parent for p in files}
    if len(parents) != 1:
        raise ValueError("peers copy one directory's files: pass files from a single directory")
    return parents.pop()


# -- best setting ----------------------------------------------------------------------------

# What each peer's setting is swept over, once per scenario (BENCHMARKS.md: peers run at their
# best setting on this machine). s5cmd's `--numworkers` is how many files move at once and
# `--concurrency` how many parts of one file; rclone's `--transfers` and boto3's
# `max_concurrency` are both.
S5CMD_SWEEP_FILES = ({"numworkers": 16}, {"numworkers": 64}, {"numworkers": 256})
S5CMD_SWEEP_PARTS = ({"concurrency": 5}, {"concurrency": 10}, {"concurrency": 20})
RCLONE_SWEEP = ({"transfers": 4}, {"transfers": 16}, {"transfers": 32})
BOTO3_SWEEP = ({"max_concurrency": 10}, {"max_concurrency": 20}, {"max_concurrency": 32})


def best_setting(
    ctx: BenchContext,
    tool: str,
    candidates: Sequence[dict[str, int]],
    trial: Callable[[dict[str, int]], PeerResult],
) -> dict[str, int]:
    """The candidate at which `trial` moved the most MB/s, swept once per scenario (the first
    call, in the warm-up run); each candidate's figure lands in the report's settings."""

    def sweep() -> dict[str, int]:
        figures = [(trial(dict(candidate)).mb_per_s, candidate) for candidate in candidates]
        shown = ", ".join(
            f"{' '.join(f'{k}={v}' for k, v in c.items())}: {mb:.0f} MB/s" for mb, c in figures
        )
        ctx.record_setting(f"{tool} sweep", shown)
        return dict(max(figures, key=lambda pair: pair[0])[1])

    best: dict[str, int] = ctx.once(f"best {tool}", sweep)
    return best


def download_trial(
    download: Callable[..., PeerResult], endpoint: Endpoint, *, bucket: str, prefix: str, dest: Path
) -> Callable[[dict[str, int]], PeerResult]:
    """A `best_setting` trial: one `download` of the prefix into `dest` at the candidate
    setting, `dest` removed afterwards."""

    def trial(setting: dict[str, int]) -> PeerResult:
        try:
            return download(endpoint, bucket=bucket, prefix=prefix, dest=dest, **setting)
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    return trial


def upload_trial(
    upload: Callable[..., PeerResult],
    endpoint: Endpoint,
    files: Sequence[Path],
    *,
    bucket: str,
    new_prefix: Callable[[], str],
) -> Callable[[dict[str, int]], PeerResult]:
    """A `best_setting` trial: one `upload` of `files` under a prefix from `new_prefix` (the
    caller removes those) at the candidate setting."""

    def trial(setting: dict[str, int]) -> PeerResult:
        return upload(endpoint, files, bucket=bucket, prefix=new_prefix(), **setting)

    return trial


# -- s5cmd -----------------------------------------------------------------------------------


@functools.cache
def s5cmd_version() -> str:
    out = run_measured([_binary("s5cmd"), "version"]).check().stdout.strip()
    return out.split("-")[0].lstrip("v")  # "v2.3.0-991c9fb"


def _s5cmd(endpoint: Endpoint, args: list[str], numworkers: int, concurrency: int) -> Any:
    argv = [
        _binary("s5cmd"),
        "--endpoint-url",
        endpoint.url,
        "--numworkers",
        str(numworkers),
        *args[:1],
        "--concurrency",
        str(concurrency),
        *args[1:],
    ]
    return run_measured(argv, env=endpoint.env()).check()


def s5cmd_upload(
    endpoint: Endpoint,
    files: Sequence[Path],
    *,
    bucket: str,
    prefix: str,
    numworkers: int = S5CMD_NUMWORKERS,
    concurrency: int = S5CMD_CONCURRENCY,
) -> PeerResult:
    """`s5cmd cp DIR/* s3://bucket/prefix/` (all files of one directory)."""
    source = _same_dir(files)
    if len(files) != len(list(source.iterdir())):
        raise ValueError(f"{source} holds other files than the ones to upload")
    run = _s5cmd(
        endpoint,
        ["cp", f"{source}/*", f"s3://{bucket}/{prefix.rstrip('/')}/"],
        numworkers,
        concurrency,
    )
    settings = {"numworkers": numworkers, "concurrency": concurrency}
    return PeerResult(
        "s5cmd",
        s5cmd_version(),
        run.elapsed,
        _files_bytes(files),
        len(files),
        run.peak_rss,
        settings,
    )


def s5cmd_download(
    endpoint: Endpoint,
    *,
    bucket: str,
    prefix: str,
    dest: Path,
    numworkers: int = S5CMD_NUMWORKERS,
    concurrency: int = S5CMD_CONCURRENCY,
) -> PeerResult:
    """`s5cmd cp 's3://bucket/prefix/*' DEST/`; bytes and files counted in DEST afterwards."""
    dest.mkdir(parents=True, exist_ok=True)
    run = _s5cmd(
        endpoint,
        ["cp", f"s3://{bucket}/{prefix.rstrip('/')}/*", f"{dest}/"],
        numworkers,
        concurrency,
    )
    got = [p for p in dest.rglob("*") if p.is_file()]
    settings = {"numworkers": numworkers, "concurrency": concurrency}
    return PeerResult(
        "s5cmd", s5cmd_version(), run.elapsed, _files_bytes(got), len(got), run.peak_rss, settings
    )


# -- rclone ----------------------------------------------------------------------------------

_REMOTE = "benchpeer"


@functools.cache
def rclone_version() -> str:
    first = run_measured([_binary("rclone"), "version"]).check().stdout.splitlines()[0]
    return first.split()[-1].lstrip("v")  # "rclone v1.75.2"


def _rclone_env(endpoint: Endpoint, config_dir: Path) -> dict[str, str]:
    # An on-the-fly remote from environment variables; RCLONE_CONFIG points at a file that
    # does not exist (in our work dir), so nothing is read from or written to $HOME.
    prefix = f"RCLONE_CONFIG_{_REMOTE.upper()}_"
    return {
        **endpoint.env(),
        "RCLONE_CONFIG": str(config_dir / "rclone-unused.conf"),
        f"{prefix}TYPE": "s3",
        f"{prefix}PROVIDER": "Other",
        f"{prefix}ENDPOINT": endpoint.url,
        f"{prefix}ACCESS_KEY_ID": endpoint.access_key,
        f"{prefix}SECRET_ACCESS_KEY": endpoint.secret_key,
        f"{prefix}REGION": endpoint.region,
        f"{prefix}FORCE_PATH_STYLE": "true",
    }


def _rclone(endpoint: Endpoint, args: list[str], transfers: int, work: Path) -> Any:
    argv = [
        _binary("rclone"),
        *args,
        "--transfers",
        str(transfers),
        "--checkers",
        str(max(8, transfers)),
        "--quiet",
    ]
    return run_measured(argv, env=_rclone_env(endpoint, work)).check()


def rclone_copy_up(
    endpoint: Endpoint,
    files: Sequence[Path],
    *,
    bucket: str,
    prefix: str,
    transfers: int = RCLONE_TRANSFERS,
) -> PeerResult:
    """`rclone copy DIR remote:bucket/prefix` (all files of one directory)."""
    source = _same_dir(files)
    run = _rclone(
        endpoint,
        ["copy", str(source), f"{_REMOTE}:{bucket}/{prefix.rstrip('/')}"],
        transfers,
        source.parent,
    )
    return PeerResult(
        "rclone",
        rclone_version(),
        run.elapsed,
        _files_bytes(files),
        len(files),
        run.peak_rss,
        {"transfers": transfers},
    )


def rclone_copy_down(
    endpoint: Endpoint,
    *,
    bucket: str,
    prefix: str,
    dest: Path,
    transfers: int = RCLONE_TRANSFERS,
) -> PeerResult:
    """`rclone copy remote:bucket/prefix DEST`; bytes and files counted in DEST afterwards."""
    dest.mkdir(parents=True, exist_ok=True)
    run = _rclone(
        endpoint,
        ["copy", f"{_REMOTE}:{bucket}/{prefix.rstrip('/')}", str(dest)],
        transfers,
        dest.parent,
    )
    got = [p for p in dest.rglob("*") if p.is_file()]
    return PeerResult(
        "rclone",
        rclone_version(),
        run.elapsed,
        _files_bytes(got),
        len(got),
        run.peak_rss,
        {"transfers": transfers},
    )


# -- boto3 transfer manager (in a subprocess: this module's __main__) -------------------------


def _boto3(endpoint: Endpoint, job: dict[str, Any]) -> tuple[dict[str, Any], int]:
    run = run_measured(
        [sys.executable, "-m", "bench._peers"],
        env=endpoint.env(),
        cwd=Path(__file__).resolve().parent.parent,
        stdin=json.dumps({"endpoint": endpoint.url, **job}),
    ).check()
    answer: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return answer, run.peak_rss


def _boto3_version() -> str:
    from importlib.metadata import version

    return version("boto3")


def boto3_upload(
    endpoint: Endpoint,
    files: Sequence[Path],
    *,
    bucket: str,
    prefix: str,
    max_concurrency: int = BOTO3_MAX_CONCURRENCY,
    multipart_threshold: int = 8 * 1024 * 1024,
    multipart_chunksize: int = 8 * 1024 * 1024,
) -> PeerResult:
    """boto3's transfer manager: every file submitted at once, `max_concurrency` threads."""
    settings = {
        "max_concurrency": max_concurrency,
        "multipart_threshold": multipart_threshold,
        "multipart_chunksize": multipart_chunksize,
    }
    answer, rss = _boto3(
        endpoint,
        {
            "op": "upload",
            "bucket": bucket,
            "prefix": prefix.rstrip("/"),
            "files": [str(p) for p in files],
            **settings,
        },
    )
    return PeerResult(
        "boto3",
        _boto3_version(),
        answer["elapsed"],
        answer["bytes"],
        answer["files"],
        rss,
        settings,
    )


def boto3_download(
    endpoint: Endpoint,
    *,
    bucket: str,
    prefix: str,
    dest: Path,
    max_concurrency: int = BOTO3_MAX_CONCURRENCY,
    multipart_threshold: int = 8 * 1024 * 1024,
    multipart_chunksize: int = 8 * 1024 * 1024,
) -> PeerResult:
    """boto3's transfer manager `download_file` for every object under the prefix (the
    listing is done before the clock starts)."""
    settings = {
        "max_concurrency": max_concurrency,
        "multipart_threshold": multipart_threshold,
        "multipart_chunksize": multipart_chunksize,
    }
    dest.mkdir(parents=True, exist_ok=True)
    answer, rss = _boto3(
        endpoint,
        {
            "op": "download",
            "bucket": bucket,
            "prefix": prefix.rstrip("/"),
            "dest": str(dest),
            **settings,
        },
    )
    return PeerResult(
        "boto3",
        _boto3_version(),
        answer["elapsed"],
        answer["bytes"],
        answer["files"],
        rss,
        settings,
    )


FLOOR = "floor: boto3 GET+SHA-256+fsync"


def plain_floor_download(
    endpoint: Endpoint, *, bucket: str, prefix: str, dest: Path, threads: int = 16
) -> PeerResult:
    """The floor a download pipeline can reach on this endpoint: each object fetched by one
    plain GET, hashed with SHA-256 as it streams, written, fsynced and renamed into place, on
    `threads` threads; no queue, no ledger, no receipts. Where the agent is far below this,
    the time is ours; where it is near, the endpoint binds."""
    settings = {"threads": threads, "chunk": "1 MiB"}
    answer, rss = _floor_job(endpoint, "floor", bucket=bucket, prefix=prefix, dest=dest,
                             concurrency=threads)  # fmt: skip
    return PeerResult(
        FLOOR, _boto3_version(), answer["elapsed"], answer["bytes"], answer["files"], rss, settings,
        work_cpu_s=answer["cpu_s"],
    )  # fmt: skip


def _floor_job(
    endpoint: Endpoint, op: str, *, bucket: str, prefix: str, dest: Path, concurrency: int
) -> tuple[dict[str, Any], int]:
    """Run one of the floors (`op`) in a process of its own: its answer and peak RSS."""
    dest.mkdir(parents=True, exist_ok=True)
    return _boto3(
        endpoint,
        {"op": op, "bucket": bucket, "prefix": prefix.rstrip("/"), "dest": str(dest),
         "max_concurrency": concurrency, "multipart_threshold": 8 * 1024 * 1024,
         "multipart_chunksize": 8 * 1024 * 1024},  # unused by the floors: no transfer manager
    )  # fmt: skip


CRT_FLOOR = "floor: awscrt GET to file+SHA-256 read back+fsync"


def crt_floor_download(
    endpoint: Endpoint, *, bucket: str, prefix: str, dest: Path, in_flight: int = 16
) -> PeerResult:
    """The same floor with the bytes moved by awscrt's S3 client (C: its own threads write
    each object to its file), then each file hashed with SHA-256 as read back from the page
    cache, fsynced and renamed: what the agent's photo path would cost without Python per
    byte (issue 34's lever for B1 and B2). At most `in_flight` objects at a time, as the
    boto3 floor's threads (each holds a part-sized buffer)."""
    answer, rss = _floor_job(endpoint, "floor-crt", bucket=bucket, prefix=prefix, dest=dest,
                             concurrency=in_flight)  # fmt: skip
    from importlib.metadata import version

    return PeerResult(
        CRT_FLOOR, version("awscrt"), answer["elapsed"], answer["bytes"], answer["files"], rss,
        {"part_size": "8 MiB", "in_flight": in_flight}, work_cpu_s=answer["cpu_s"],
    )  # fmt: skip


def _floor_crt(
    endpoint: Endpoint, bucket: str, keys: list[tuple[str, int]], dest: Path, in_flight: int
) -> None:
    import hashlib
    import threading
    from concurrent.futures import Future
    from urllib.parse import quote, urlsplit

    from awscrt.auth import AwsCredentialsProvider
    from awscrt.http import HttpHeaders, HttpRequest
    from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup
    from awscrt.s3 import (
        S3Client,
        S3RequestTlsMode,
        S3RequestType,
        create_default_s3_signing_config,
    )

    url = urlsplit(endpoint.url)
    loops = EventLoopGroup()
    credentials = AwsCredentialsProvider.new_static(endpoint.access_key, endpoint.secret_key)
    client = S3Client(
        bootstrap=ClientBootstrap(loops, DefaultHostResolver(loops)),
        region=endpoint.region,
        signing_config=create_default_s3_signing_config(
            region=endpoint.region, credential_provider=credentials
        ),
        tls_mode=S3RequestTlsMode.ENABLED if url.scheme == "https" else S3RequestTlsMode.DISABLED,
        part_size=8 * 1024 * 1024,
        throughput_target_gbps=2.0,  # two cores: its default (10) opens connections for 10 Gbit/s
    )
    started: list[tuple[Future[tuple[Any, int]], Any, Path, Path]] = []
    slots = threading.BoundedSemaphore(in_flight)
    for key, _ in keys:
        slots.acquire()
        target = dest / key.rsplit("/", 1)[-1]
        tmp = target.with_suffix(target.suffix + ".part")
        done: Future[tuple[Any, int]] = Future()

        def on_done(*, error: Any = None, status_code: int = 0, done: Any = done, **_: Any) -> None:
            slots.release()
            done.set_result((error, status_code))

        request = HttpRequest("GET", f"/{bucket}/{quote(key)}", HttpHeaders([("Host", url.netloc)]))
        started.append((done, client.make_request(
            type=S3RequestType.GET_OBJECT, request=request, recv_filepath=str(tmp),
            on_done=on_done,
        ), tmp, target))  # fmt: skip
    for done, _, tmp, target in started:
        error, status = done.result()
        if error is not None or status not in (200, 206):
            raise RuntimeError(f"awscrt could not get {target.name}: {status} {error}")
        with open(tmp, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != target.name:
                raise RuntimeError(f"{target.name} does not hash to its name")
            os.fsync(f.fileno())
        os.replace(tmp, target)


def _floor(client: Any, bucket: str, keys: list[tuple[str, int]], dest: Path, threads: int) -> None:
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    def one(key: str) -> None:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        target = dest / key.rsplit("/", 1)[-1]
        tmp = target.with_suffix(target.suffix + ".part")
        with open(tmp, "wb") as out:
            while chunk := body.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != target.name:  # objects are named by their SHA-256
            raise RuntimeError(f"{key} does not hash to its name")
        os.replace(tmp, target)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, [key for key, _ in keys]))


def _boto3_main(job: dict[str, Any]) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    endpoint = Endpoint(
        job["endpoint"],
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_REGION", "us-east-1"),
    )
    client = endpoint.client(max_pool_connections=job["max_concurrency"])
    config = TransferConfig(
        max_concurrency=job["max_concurrency"],
        multipart_threshold=job["multipart_threshold"],
        multipart_chunksize=job["multipart_chunksize"],
    )
    bucket, prefix = job["bucket"], job["prefix"]
    if job["op"] == "upload":
        paths = [Path(p) for p in job["files"]]
        started = time.perf_counter()
        with create_transfer_manager(client, config) as manager:
            futures = [manager.upload(str(p), bucket, f"{prefix}/{p.name}") for p in paths]
            for future in futures:
                future.result()
        elapsed = time.perf_counter() - started
        return {"elapsed": elapsed, "bytes": _files_bytes(paths), "files": len(paths)}
    dest = Path(job["dest"])
    keys: list[tuple[str, int]] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/"
    ):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    started, cpu_started = time.perf_counter(), time.process_time()
    if job["op"] == "floor":
        _floor(client, bucket, keys, dest, job["max_concurrency"])
    elif job["op"] == "floor-crt":
        _floor_crt(endpoint, bucket, keys, dest, job["max_concurrency"])
    else:
        with create_transfer_manager(client, config) as manager:
            futures = [
                manager.download(bucket, key, str(dest / key[len(prefix) + 1 :])) for key, _ in keys
            ]
            for future in futures:
                future.result()
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed, "bytes": sum(size for _, size in keys), "files": len(keys),
        "cpu_s": time.process_time() - cpu_started,
    }  # fmt: skip


# -- checks ----------------------------------------------------------------------------------


def verify_prefix(endpoint: Endpoint, *, bucket: str, prefix: str, files: Sequence[Path]) -> None:
    """Raise unless `prefix/` holds exactly these files' names and sizes."""
    client = endpoint.client()
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix.rstrip('/')}/"
    ):
        found.update({o["Key"].rsplit("/", 1)[-1]: o["Size"] for o in page.get("Contents", [])})
    expected = {p.name: p.stat().st_size for p in files}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:5]
        wrong = sorted(k for k in expected if k in found and found[k] != expected[k])[:5]
        raise RuntimeError(
            f"s3://{bucket}/{prefix}/ holds {len(found)} objects, expected {len(expected)} "
            f"(missing {missing}, wrong size {wrong})"
        )


if __name__ == "__main__":
    print(json.dumps(_boto3_main(json.loads(sys.stdin.read()))))
