"""B8's home link: a shaping TCP proxy on loopback, in a process of its own.

`Shaper(link)` starts `python -m bench._shaper` in front of any number of endpoints (S3, the
queue and ledger, the API); every connection through any of them crosses one link: each
direction sends its bytes one after another at the link's rate (one wire per direction,
shared by every connection, as a home's uplink and downlink are), and each chunk arrives
half a round trip after it left. A request and its answer therefore take at least one round
trip, and many connections share the link's rate as they share a real one.

Not modelled: TCP's and TLS's handshakes (every tool here keeps its connections open), slow
start and loss. A connection holds at most one bandwidth-delay product in flight (the most
a window needs to fill the link alone), so a tool gains nothing by opening more connections
than it needs.

Bounded: the proxy stops when the bench closes its stdin (the `Shaper` leaving its `with`),
when the bench process dies, or after `max_seconds` whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 * 1024
MIN_WINDOW = 256 * 1024


@dataclass(frozen=True)
class Link:
    """A household's link to AWS: round trip and rate (each direction)."""

    name: str
    rtt_s: float
    mbit_s: float

    @property
    def bytes_per_s(self) -> float:
        return self.mbit_s * 1e6 / 8

    @property
    def window(self) -> int:
        """Bytes one connection may have in flight: a bandwidth-delay product."""
        return max(MIN_WINDOW, int(self.bytes_per_s * self.rtt_s))


HOME_LINKS = (Link("40 ms, 100 Mbit/s", 0.040, 100), Link("20 ms, 1 Gbit/s", 0.020, 1000))


class Shaper:
    """The proxy process for `link`; `front(url)` gives the URL to use instead of `url`."""

    def __init__(self, link: Link, *, max_seconds: float = 4 * 3600) -> None:
        self.link = link
        self._max_seconds = max_seconds
        self._proc: subprocess.Popen[str] | None = None
        self._fronts: dict[str, str] = {}

    def __enter__(self) -> Shaper:
        job = {"rtt_s": self.link.rtt_s, "mbit_s": self.link.mbit_s, "max_s": self._max_seconds}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench._shaper", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def front(self, url: str) -> str:
        """`url` through the link (the same scheme and path, the proxy's host and port)."""
        if url in self._fronts:
            return self._fronts[url]
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("the shaping proxy is not running (use Shaper in a with block)")
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._proc.stdin.write(json.dumps({"host": parts.hostname, "port": port}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the shaping proxy stopped")
        mine = json.loads(line)["port"]
        self._fronts[url] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{mine}"))
        return self._fronts[url]

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            if self._proc.stdin:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# The proxy process ---------------------------------------------------------------------
class _Wire:
    """One direction of the link: bytes leave one after another at its rate."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.free_at = 0.0

    def send(self, n: int, now: float) -> float:
        """When the last of `n` bytes handed over at `now` has left."""
        self.free_at = max(now, self.free_at) + n / self.rate
        return self.free_at


class _Proxy:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.up, self.down = _Wire(link.bytes_per_s), _Wire(link.bytes_per_s)

    async def serve(self, host: str, port: int) -> int:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(reader, writer, host, port)

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        return int(server.sockets[0].getsockname()[1])

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        pumps = [
            asyncio.create_task(self._pump(client_r, server_w, self.up)),
            asyncio.create_task(self._pump(server_r, client_w, self.down)),
        ]
        try:
            await asyncio.gather(*pumps)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for task in pumps:
                task.cancel()
            for w in (client_w, server_w):
                with contextlib.suppress(Exception):
                    w.close()

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, wire: _Wire
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Condition()
        held = [0]
        half_rtt = self.link.rtt_s / 2

        async def deliver() -> None:
            while True:
                at, chunk = await queue.get()
                if not chunk:
                    with contextlib.suppress(OSError, RuntimeError):
                        if dst.can_write_eof():
                            dst.write_eof()
                    return
                wait = at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(chunk)
                await dst.drain()
                async with room:
                    held[0] -= len(chunk)
                    room.notify_all()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await src.read(CHUNK):
                async with room:
                    await room.wait_for(lambda: held[0] < self.link.window)
                    held[0] += len(chunk)
                queue.put_nowait((wire.send(len(chunk), loop.time()) + half_rtt, chunk))
            queue.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()


async def _main(job: dict[str, float]) -> None:
    link = Link("shaped", job["rtt_s"], job["mbit_s"])
    proxy = _Proxy(link)
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + job["max_s"]
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    parent = os.getppid()
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=1.0)
        except TimeoutError:
            continue
        if not line:  # the bench closed our stdin
            return
        want = json.loads(line)
        port = await proxy.serve(str(want["host"]), int(want["port"]))
        sys.stdout.write(json.dumps({"port": port}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
