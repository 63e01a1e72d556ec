"""The last step of a message's walk: settle it by its outcome.

A delivered (or refused, or stale) message is acknowledged; one released by a stop is made
visible again at once; one blocked by a full disk is hidden until space returns; anything
else backs off before the queue shows it again (then its dead-letter queue takes over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mobile_backup.agent._config import AgentConfig
from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._outcome import Outcome, OutcomeKind
from mobile_backup.agent._queue import DownloadsQueue

logger = logging.getLogger(__name__)

# Outcomes whose message is done with: no retry could change them.
SETTLED = frozenset(
    {OutcomeKind.PLACED, OutcomeKind.ALREADY_PLACED, OutcomeKind.STALE, OutcomeKind.REFUSED}
)


class Settlement:
    """Acknowledges, releases, holds or backs off each message, and tells `on_outcome`."""

    def __init__(
        self,
        *,
        queue: DownloadsQueue,
        gate: PauseGate,
        config: AgentConfig,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._queue = queue
        self._gate = gate
        self._backoff = config.retry_backoff
        self._on_outcome = on_outcome
        self.visibility_timeout = 300
        """The queue's own timeout (set by the agent once it is prepared)."""

    def settle(
        self,
        outcome: Outcome,
        handle: str,
        attempt: int,
        ack: Callable[[str, str], None] | None,
    ) -> Outcome:
        """Acknowledge a delivered message, or put back / back off one that was not."""
        message_id = outcome.message_id
        if outcome.kind in SETTLED:
            acknowledged = self._acknowledge(message_id, handle, ack)
            return self.told(
                Outcome(
                    outcome.kind,
                    message_id,
                    acknowledged=acknowledged,
                    placement=outcome.placement,
                    detail=outcome.detail,
                )
            )
        if outcome.kind == OutcomeKind.RELEASED:
            self._queue.release([(message_id, handle)])
        elif outcome.kind == OutcomeKind.BLOCKED:
            self._queue.hide([(message_id, handle)], int(self._gate.seconds_left()))
            self._gate.hold([(message_id, handle)])  # visible again as soon as space returns
        else:
            self.retry_later(message_id, handle, attempt)
        return self.told(outcome)

    def told(self, outcome: Outcome) -> Outcome:
        """Pass a message's final outcome to `on_outcome` (its failure never stops us)."""
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:
                logger.exception("on_outcome failed for message %s", outcome.message_id)
        return outcome

    def retry_later(self, message_id: str, handle: str, attempt: int) -> None:
        """Back off before the next try, never longer than the queue's own timeout."""
        backoff = self._backoff
        delay = min(backoff[min(attempt, len(backoff)) - 1], self.visibility_timeout)
        if delay != self.visibility_timeout:
            self._queue.hide([(message_id, handle)], delay)

    def _acknowledge(
        self, message_id: str, handle: str, ack: Callable[[str, str], None] | None
    ) -> bool:
        if ack is not None:
            ack(message_id, handle)
            return True
        return self._queue.delete(message_id, handle)
