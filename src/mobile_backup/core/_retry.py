"""One retry policy for every transfer in the product: bounded exponential backoff with
jitter, stopped at once by a cancel event. The caller says which failures are transient
(the upload client: resets, timeouts, 5xx and 429; the agent: a connection broken mid-part).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried (per request).

    The wait before retry `n` (1, 2, ...) is `initial * 2**(n-1)` seconds plus up to
    `initial` seconds of random jitter (so that many clients do not retry in step), capped
    at `maximum`.
    """

    attempts: int = 6
    initial: float = 0.25
    maximum: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial < 0 or self.maximum < 0:
            raise ValueError("attempts must be at least 1 and waits not negative")

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        jitter = random.uniform(0, self.initial)  # noqa: S311 - spreading retries, not secrets
        return float(min(self.initial * 2 ** (retry - 1) + jitter, self.maximum))

    def call(
        self,
        fn: Callable[[], T],
        *,
        transient: Callable[[BaseException], bool],
        cancel: threading.Event | None = None,
    ) -> T:
        """`fn()`, tried again after a transient failure until the attempts run out or
        `cancel` is set (then the last failure is raised)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as exc:
                last = attempt == self.attempts or not transient(exc)
                if last or (cancel is not None and cancel.is_set()):
                    raise
                delay = self.wait_before(attempt)
                if cancel is None:
                    time.sleep(delay)
                elif cancel.wait(delay):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")
