"""Which failures are worth retrying, and how: bounded exponential backoff with jitter."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from mobile_backup.client.exceptions import ApiError, TransportError, UploadError


def is_transient(exc: BaseException) -> bool:
    """Connection resets, timeouts, 5xx and 429 are transient; anything else is not."""
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ApiError | UploadError):
        return bool(exc.transient)
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried (per request).

    The wait before retry `n` is about `initial * 2**n` seconds, capped at `maximum`, plus
    up to `initial` seconds of random jitter so that many clients do not retry in step.
    """

    attempts: int = 6
    initial: float = 0.25
    maximum: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial < 0 or self.maximum < 0:
            raise ValueError("attempts must be at least 1 and waits not negative")

    def retrying(self, cancel: threading.Event | None = None) -> Retrying:
        """A tenacity controller; a set `cancel` event ends the waiting and the retries."""
        stop: stop_base = stop_after_attempt(self.attempts)
        if cancel is not None:
            stop = stop | stop_when_event_set(cancel)

        def sleep(seconds: float) -> None:
            if cancel is None:
                time.sleep(seconds)
            else:
                cancel.wait(seconds)

        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop,
            wait=wait_exponential_jitter(
                multiplier=self.initial, max=self.maximum, jitter=self.initial
            ),
            sleep=sleep,
            reraise=True,
        )
