"""`--hogs N`: a loaded PC for the bench. N busy loops, each a process of its own at normal
priority (what a game or a compile beside the agent is), run for the whole invocation.

Bounded: each hog stops when the bench process that started it is gone (it checks its
parent every few milliseconds of work) or after `MAX_SECONDS`, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

MAX_SECONDS = 4 * 3600
_HOG = """
import os, sys, time
parent, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while os.getppid() == parent and time.monotonic() < deadline:
    for _ in range(100_000):
        pass
"""


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """`count` CPU-bound processes beside the block (none for 0)."""
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", _HOG, str(os.getpid()), str(MAX_SECONDS)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
