"""The agent: take download messages, fetch, verify, place, write the receipt, acknowledge.

A message is deleted only after its file is placed, fsynced and verified and the receipt is
in the ledger; anything short of that leaves the message on the queue, to come back (after a
backoff set through its visibility) and, after the queue's `maxReceiveCount`, to land in the
dead-letter queue. Redelivery is harmless: the state file maps each user's content hash to
the file placed for it, so the same content is never written twice.

`Agent` puts the parts together: `Delivery` (one message's journey, `_deliver.py`), the
`PauseGate` (a full disk pauses, `_gate.py`), the `DownloadsQueue` (`_queue.py`) and the
`ServiceLoop` (`run`, `_loop.py`); `Reconciler` (`_reconcile.py`) uses the same delivery.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from mobile_backup.agent._config import DEFAULT_WAIT_SECONDS, AgentConfig, config_from_settings
from mobile_backup.agent._dead_letters import DeadLetters
from mobile_backup.agent._deliver import Delivery
from mobile_backup.agent._gate import PauseGate
from mobile_backup.agent._lock import LOCK_FILE, LibraryLock
from mobile_backup.agent._loop import ServiceLoop
from mobile_backup.agent._outcome import Outcome
from mobile_backup.agent._placement import STAGING_DIR, Library
from mobile_backup.agent._queue import Acknowledger, DownloadsQueue
from mobile_backup.agent._reconcile import Reconciler
from mobile_backup.agent._state import STATE_FILE, StateDB
from mobile_backup.agent._transfer import Downloader
from mobile_backup.agent.exceptions import (
    AgentError,
    LibraryInUseError,
    LibraryOfAnotherPcError,
)
from mobile_backup.aws import Queue, dynamodb_client, s3_client, sqs_client
from mobile_backup.core import (
    SQS_BATCH,
    ConfigError,
    DownloadMessage,
    MobileBackupError,
    Settings,
    utcnow,
)
from mobile_backup.ledger import Ledger, PcRecord, library_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

HIDDEN_DIR = PurePosixPath(STAGING_DIR.parts[0])


class Agent:
    """Consume the downloads queue into a library folder.

    Args:
        settings: supplies `downloads_queue_url` and, when set, the one `bucket` to read.
        s3: reads objects (and tags or deletes them once received). Any S3 endpoint.
        sqs: receives, extends and deletes download messages.
        ledger: where receipts and failures are recorded.
        library: the library root folder, or a `Library` (to inject its filesystem seams).
        host: this machine's name, recorded in receipts.
        clock: returns the current time (timezone-aware, UTC).
        wait_seconds: the long-poll wait used by `run`.
        config: workers, transfer sizes, path template, retention, backoffs.
        state: the state file (default: `{library}/.mobile-backup/agent.sqlite3`).
        on_outcome: told how each message ended (from worker threads), e.g. to show it.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        s3: S3Client,
        sqs: SQSClient,
        ledger: Ledger,
        library: Path | Library,
        host: str,
        clock: Callable[[], datetime] = utcnow,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        config: AgentConfig | None = None,
        state: StateDB | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._config = config or AgentConfig()
        self._library = (
            library
            if isinstance(library, Library)
            else Library(library, private=not self._config.shared_library)
        )
        self._clock = clock
        self._wait_seconds = wait_seconds
        hidden = self._library.root / HIDDEN_DIR
        if state is None:
            self._library.create()  # before the state file makes the folders world-readable
        self._state = state or StateDB(hidden / STATE_FILE)
        self._lock = LibraryLock(hidden / LOCK_FILE)
        self._downloader = Downloader(
            s3, library=self._library, state=self._state, config=self._config.transfer
        )
        main_queue = settings.require("downloads_queue_url")
        self._pcs = ledger.pc_registry(downloads_queue_url=main_queue)
        # `main` is the downloads queue; another PC's own queue is in the registry.
        self._queue = DownloadsQueue(Queue(sqs, self._pcs.queue_url(self._config.pc_name)))
        self._gate = PauseGate(
            backoff=self._config.pause_backoff,
            root=self._library.root,
            state=self._state,
            clock=clock,
            release=self._queue.release,
        )
        self._delivery = Delivery(
            bucket=settings.bucket,
            s3=s3,
            ledger=ledger,
            library=self._library,
            state=self._state,
            downloader=self._downloader,
            queue=self._queue,
            gate=self._gate,
            host=host,
            clock=clock,
            config=self._config,
            on_outcome=on_outcome,
        )
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._claimed = False
        self._dlq: Queue | Literal[False] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        library: Path | None = None,
        host: str | None = None,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        config: AgentConfig | None = None,
        s3: S3Client | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Agent:
        """An agent with clients built from `settings`; `library` defaults to the setting.

        The path template and retention come from the settings unless `config` is given.
        """
        root = library or settings.library
        if root is None:
            raise ConfigError(
                f"no library folder configured for profile {settings.profile!r} "
                "(set MOBILE_BACKUP_LIBRARY or pass one)"
            )
        if config is None:
            config = config_from_settings(settings)
        return cls(
            settings=settings,
            s3=s3 or s3_client(settings, component="agent"),
            sqs=sqs_client(settings, component="agent"),
            ledger=Ledger(dynamodb_client(settings, component="agent"), settings.require("table")),
            library=root.expanduser(),
            host=host or socket.gethostname() or "pc",
            wait_seconds=wait_seconds,
            config=config,
            on_outcome=on_outcome,
        )

    # What others look at ----------------------------------------------------------------
    @property
    def library(self) -> Library:
        return self._library

    @property
    def state(self) -> StateDB:
        return self._state

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def downloader(self) -> Downloader:
        return self._downloader

    @property
    def receipts_written(self) -> int:
        """Receipts written to the ledger since start (benchmarks wait for these)."""
        return self._delivery.receipts_written

    @property
    def pc_name(self) -> str:
        """This PC's name in the household (`main` unless registered under another)."""
        return self._config.pc_name

    # Life cycle ----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Take the library (or be a guest), clean staging leftovers, learn the queue's
        visibility timeout; done once, before the first file."""
        with self._prepare_lock:
            if self._prepared:
                return
            owner = self._lock.acquire()
            if owner:
                self._library.prepare(keep=self._state.resumable())
            else:
                logger.info("another agent owns %s; working as a guest", self._library.root)
                self._library.staging.mkdir(parents=True, exist_ok=True)
            self._delivery.owner = owner
            self._delivery.visibility_timeout = self._queue.visibility_timeout()
            self._prepared = True

    def start(self) -> None:
        """Take this library for a long run, or refuse in one line (nothing is received):

        - LibraryInUseError: another agent runs on it (a service and a terminal, say);
        - LibraryOfAnotherPcError: it is another PC's library (two receipts, one copy);
        - PcInUseError: another library already collects this PC's queue.
        """
        if not self._lock.acquire(pc=self.pc_name):
            holder = self._lock.holder()
            raise LibraryInUseError(
                f"another agent is already collecting into {self._library.root} "
                f"({holder.describe()}); stop it first (`agent status` shows it)"
            )
        try:
            self._check_library_pc()
            self.claim_pc()
        except BaseException:
            self._lock.release()
            raise
        self._claimed = True

    def _check_library_pc(self) -> None:
        """A library belongs to the first PC that ran on it (kept in its state file; for a
        library from before that, the PC registry's record of who collected into it)."""
        owner = self._state.value("library_pc")
        if not isinstance(owner, str):
            mine = self._library_id()
            others = [p.name for p in self._pcs.all() if p.library_id == mine]
            owner = next((name for name in others if name != self.pc_name), None)
        if owner is not None and owner != self.pc_name:
            raise LibraryOfAnotherPcError(
                f"{self._library.root} is the library of PC {owner!r}; PC {self.pc_name!r} "
                "needs a library of its own: run it with --library DIR (or set `library` "
                "in its profile)"
            )
        try:
            self._state.set_values(library_pc=self.pc_name)
        except MobileBackupError as exc:  # a full disk: remembered at the next start
            logger.warning("could not note this library's PC in its state file: %s", exc)

    def close(self) -> None:
        """Release the library, this PC's queue (if `start` took it) and the transfer threads."""
        self._release_pc()
        self._downloader.close()
        self._lock.release()
        with self._prepare_lock:
            self._prepared = False

    def claim_pc(self) -> PcRecord:
        """Record that this library collects its PC's queue (also the heartbeat); this PC's
        entry as it is now (whether a member asked for a check, when it last did one).

        Raises PcInUseError when another library collects it: two libraries sharing a
        queue would each get a share of the files and neither would be complete.
        """
        return self._pcs.claim(
            self._config.pc_name,
            queue_url=self._queue.url,
            library_id=self._library_id(),
            host=self._delivery.host,
            library=str(self._library.root),
            now=self._clock(),
        )

    def pc_registry_entry(self) -> PcRecord | None:
        """This PC's entry in the household's registry (who collects its queue)."""
        return self._pcs.get(self._config.pc_name)

    def _library_id(self) -> str:
        try:
            return library_id(self._library.root / HIDDEN_DIR)
        except OSError as exc:
            raise AgentError(
                f"cannot give the library {self._library.root} its id: "
                f"{exc.strerror or exc} (is its disk full or read-only?)"
            ) from exc

    def run(self, stop: threading.Event) -> None:
        """The service loop (`_loop.py`) until `stop` is set; `start()` first if it was not.

        Raises what `start()` raises before anything is received.
        """
        if not self._lock.held:
            self.start()
        try:
            self.prepare()
            self._service_loop().run(stop)
        finally:
            self._release_pc()

    def _release_pc(self) -> None:
        """Let another library take this PC's queue at once (a clean stop); best effort."""
        if not self._claimed:
            return
        self._claimed = False
        try:
            self._pcs.release(self._config.pc_name, library_id=self._library_id())
        except MobileBackupError as exc:
            logger.warning("%s", exc)

    def _service_loop(self) -> ServiceLoop:
        return ServiceLoop(
            delivery=self._delivery,
            queue=self._queue,
            gate=self._gate,
            state=self._state,
            config=self._config,
            clock=self._clock,
            wait_seconds=self._wait_seconds,
            reconciler=self.reconciler,
            heartbeat=self.claim_pc,
        )

    def reconciler(
        self, *, progress: Callable[[Outcome], None] | None = None, full: bool = False
    ) -> Reconciler:
        """A reconciler on this agent's library, ledger and delivery path; `full` reads
        every member's whole ledger instead of what changed since the last pass."""
        return Reconciler(
            self._delivery,
            workers=self._config.workers,
            prepare=self.prepare,
            progress=progress,
            dead_letters=self.dead_letters,
            full=full,
        )

    def dead_letters(self) -> DeadLetters | None:
        """The downloads DLQ this PC's queue dead-letters into (None if it has none)."""
        if self._dlq is None:
            self._dlq = self._queue.queue.dead_letter_queue() or False
        if self._dlq is False:
            return None
        return DeadLetters(self._dlq, self._pcs)

    # One batch, synchronously (tests, the local demo) ------------------------------------
    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive up to 10 messages, process them concurrently, delete the finished ones
        in one batch, then tag their cloud copies (and any tag an earlier run left
        waiting); returns how many were received."""
        self.prepare()
        messages = self._queue.receive(SQS_BATCH, wait_seconds)
        if not messages:
            self._tag_waiting()
            return 0
        acker = Acknowledger(self._queue.queue, before=self._delivery.write_counts)
        workers = min(self._config.workers, len(messages))
        with ThreadPoolExecutor(workers, thread_name_prefix="worker") as pool:
            handle = self._delivery.handle
            for future in [pool.submit(handle, m, ack=acker.ack) for m in messages]:
                try:
                    future.result()
                except Exception:
                    logger.exception("unexpected error while processing a message")
        acker.flush()
        self._tag_waiting()
        return len(messages)

    def _tag_waiting(self) -> None:
        """A single pass leaves no tag for a quiet moment that may never come."""
        try:
            self._delivery.tag_waiting()
        except MobileBackupError as exc:
            logger.warning("could not tag the downloaded copies: %s", exc)

    def process_message(self, msg: MessageTypeDef) -> Outcome:
        """Download, verify and place one message's file; delete the message when done."""
        self.prepare()
        return self._delivery.handle(msg, ack=None)

    def deliver(
        self,
        item: DownloadMessage,
        *,
        message_id: str = "-",
        cancel: threading.Event | None = None,
    ) -> Outcome:
        """Bring one file into the library and write its receipt; never raises for a bad
        file, a bad object or a full disk: the outcome says what happened."""
        self.prepare()
        return self._delivery.deliver(item, message_id=message_id, cancel=cancel)
