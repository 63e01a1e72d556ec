"""Everything the app does, without a screen: session, queue, folders, history.

One `AppController` serves the app process (every page of the web mode shows the same
queue). Views call its methods from event handlers and draw what it reports; blocking calls
(`sign_in`, `refresh_history`) are meant to run off the UI loop, in a worker thread.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from mobile_backup.app._errors import SESSION_ENDED, user_message
from mobile_backup.app._folders import SeenFiles, scan
from mobile_backup.app._prefs import AppPrefs, PrefsStore
from mobile_backup.app._queue import BackupQueue, PendingStore
from mobile_backup.app._queue_items import SUCCEEDED, QueueItem
from mobile_backup.app._receipts import (
    HistoryCounts,
    HistoryEntry,
    count,
    history,
    household_pcs,
    last_collected,
)
from mobile_backup.app._runner import BackupRunner, EngineFactory, UploadEngine
from mobile_backup.app._status import Glance, Link, glance
from mobile_backup.app._thumbs import Thumbnails
from mobile_backup.client import (
    ApiClient,
    Authenticator,
    Journal,
    NotLoggedInError,
    TransportError,
    UploadSession,
    UploadSubscriber,
    account_id,
)
from mobile_backup.core import MobileBackupError, Settings
from mobile_backup.core.wire import FileView

log = logging.getLogger(__name__)

DEVICE = "Mobile Backup app"
SCAN_INTERVAL_SECONDS = 30.0
# How long signing out waits for the files in flight to stop (they resume at next sign-in).
SIGN_OUT_WAIT_SECONDS = 30.0
# Connection types on which "Wi-Fi only" lets uploads run.
UNMETERED = frozenset({"wifi", "ethernet"})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
# The history reads the ledger a page at a time; the first page is drawn before the next
# is asked for.
HISTORY_PAGE = 250


@dataclass(frozen=True, slots=True)
class HistoryState:
    """What the history screen shows."""

    entries: tuple[HistoryEntry, ...] = ()
    counts: HistoryCounts = field(default_factory=HistoryCounts)
    error: str | None = None
    loaded: bool = False
    complete: bool = False
    """Every page has been read (until then the counts are of what has arrived)."""
    pcs: tuple[str, ...] = ()
    """The household's PCs that have written receipts for this member's files."""
    collected: dict[str, datetime] = field(default_factory=dict)
    """When each PC last collected one of this member's files."""
    member: str | None = None
    """The member's folder name in the PC library."""


def safe_upload_name(name: str) -> str:
    """A browser-supplied file name as one harmless path component (names are data)."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip().strip(".")
    return cleaned[:200] or "file"


class AppController:
    """The app's state and actions; no Flet import, so it is tested without a screen."""

    def __init__(
        self,
        *,
        settings: Settings,
        authenticator: Authenticator | None = None,
        engine: EngineFactory | None = None,
        scan_interval: float = SCAN_INTERVAL_SECONDS,
    ) -> None:
        self.settings = settings
        self.auth = authenticator or Authenticator(settings=settings)
        state = settings.effective_state_dir
        self.upload_dir = state / "app-uploads"
        self._prefs_store = PrefsStore(state / "app-prefs.json")
        self._prefs = self._prefs_store.load()
        self._seen: SeenFiles | None = None
        # The queue shows the signed-in member's files only (see `_enter_account`).
        self.queue = BackupQueue(store=None)
        self.queue.on_finished(self._finished)
        self._engine = engine or self._default_engine
        self._session: UploadSession | None = None
        self._account: str | None = None
        self._lock = threading.RLock()
        self._version = 0
        self._history = HistoryState()
        self._history_lock = threading.Lock()
        self.link = Link.UNKNOWN
        self.link_message: str | None = None
        self.thumbs: Thumbnails | None = None
        self.session_message: str | None = None
        self.wifi_supported = False
        self.connection: str | None = None
        self._scan_interval = scan_interval
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.runner = BackupRunner(
            queue=self.queue,
            engine=self._engine,
            gate=self.upload_gate,
            run_size=lambda: max(4, 2 * self._prefs.parallel),
            on_run_done=self._after_run,
            on_session_ended=self._session_ended,
        )
        self._enter_account()  # a member still signed in from last time sees their queue

    # Change tracking -----------------------------------------------------------------
    @property
    def version(self) -> int:
        """Changes whenever anything a view draws has changed."""
        return self._version * 1_000_003 + self.queue.version

    def _bump(self) -> None:
        with self._lock:
            self._version += 1

    # Deployment and session ----------------------------------------------------------
    @property
    def deployment(self) -> str:
        s = self.settings
        if s.local:
            return f"{s.profile} (local stack)"
        host = urlsplit(s.api_url).hostname if s.api_url else None
        return f"{s.profile} ({host})" if host else s.profile

    @property
    def username(self) -> str | None:
        if self.session_message is not None:
            return None
        tokens = self.auth.current()
        return tokens.username if tokens else None

    def sign_in(self, email: str, password: str, new_password: str | None = None) -> None:
        """Sign in (blocking); raises a MobileBackupError whose `user_message` is shown.

        A new member's temporary password raises NewPasswordRequiredError: ask for their
        own and call again with `new_password`.
        """
        self.settings.require("api_url")
        self.auth.login(email, password, new_password=new_password)
        with self._lock:
            self.session_message = None
        self._enter_account()
        self._bump()
        self.scan_folders()

    def sign_out(self) -> None:
        """Forget the session. The member's queue is paused, saved and hidden: the next
        member to sign in sees only their own, and it comes back at this one's next sign-in."""
        self._leave_account()
        self.auth.logout()
        with self._lock:
            self._history = HistoryState()
            self.session_message = None
        self._bump()

    def _enter_account(self) -> None:
        """Show the signed-in member's own queue, seen-files list and session."""
        username = self.username
        if username is None:
            return
        key = account_id(self.settings, username)
        with self._lock:
            if key == self._account:
                return
        self._leave_account()
        folder = self.settings.effective_state_dir / "accounts" / key
        legacy = self.settings.effective_state_dir / "app-queue.json"
        if legacy.exists() and not (folder / "queue.json").exists():
            # A queue from before queues were per member goes to the first who signs in.
            folder.mkdir(parents=True, exist_ok=True)
            legacy.replace(folder / "queue.json")
        with self._lock:
            self._account = key
            self.thumbs = Thumbnails(
                folder / "thumbnails", path_of=self._local_copy, on_ready=self._bump
            )
        self.queue.switch(PendingStore(folder / "queue.json"))

    def _leave_account(self) -> None:
        """Stop the member's uploads where they are (resumable) and put their state away."""
        self.queue.pause()
        self.runner.cancel_current()
        if not self.runner.wait_idle(SIGN_OUT_WAIT_SECONDS):
            log.warning("uploads still running after %.0f s of signing out", SIGN_OUT_WAIT_SECONDS)
        self._close_account(forget=True)
        self.queue.switch(None)

    def _close_account(self, *, forget: bool) -> None:
        """Close the member's session and seen-files list (and, with `forget`, the account)."""
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._session = None
            if self._seen is not None:
                self._seen.close()
            self._seen = None
            thumbs = self.thumbs
            if forget:
                self._account = None
                self.thumbs = None
                self.link, self.link_message = Link.UNKNOWN, None
        if thumbs is not None:
            thumbs.close()

    def _session_ended(self) -> None:
        with self._lock:
            self.session_message = SESSION_ENDED
        self._bump()

    def session(self) -> UploadSession:
        """The signed-in member's API client and journal (their uploads, and only theirs)."""
        with self._lock:
            if self._session is None:
                self._session = UploadSession(self.settings, self.auth)
            return self._session

    def api(self) -> ApiClient:
        return self.session().api

    def journal(self) -> Journal:
        """The signed-in account's upload journal: what lets an upload resume after a restart."""
        if self.username is None:
            raise NotLoggedInError("not signed in")
        return self.session().journal

    def _default_engine(self, subscribers: Sequence[UploadSubscriber]) -> UploadEngine:
        return self.session().uploader(
            parallel=self._prefs.parallel,
            device=DEVICE,
            subscribers=subscribers,
            received_dir=self.upload_dir,  # a browser's copies: their time is the arrival
        )

    def pause(self) -> None:
        """No new files start, and the files in flight stop where they are (resumable)."""
        self.queue.pause()
        self.runner.cancel_current()

    def resume(self) -> None:
        self.queue.resume()

    # Lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Re-queue what the signed-in member's earlier run left unfinished, then work."""
        self._enter_account()
        self.runner.start()
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="app-folders", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.runner.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self._close_account(forget=False)

    def _watch(self) -> None:
        while True:
            try:
                self.scan_folders()
            except Exception:
                log.exception("scanning the chosen folders failed")
            if self._stop.wait(self._scan_interval):
                return

    # Preferences and folders -------------------------------------------------------------
    @property
    def prefs(self) -> AppPrefs:
        return self._prefs

    def update_prefs(self, prefs: AppPrefs) -> None:
        self._prefs = prefs
        try:
            self._prefs_store.save(prefs)
        except OSError as exc:
            log.warning("cannot save preferences: %s", exc)
        self._bump()

    def add_folder(self, folder: str) -> int:
        """Choose a folder for automatic backup; returns how many files were queued now."""
        self.update_prefs(self._prefs.with_folder(folder))
        return self.scan_folders()

    def remove_folder(self, folder: str) -> None:
        self.update_prefs(self._prefs.without_folder(folder))

    def seen(self) -> SeenFiles:
        """The signed-in member's list of folder files already backed up."""
        with self._lock:
            if self._account is None:
                raise NotLoggedInError("not signed in")
            if self._seen is None:
                folder = self.settings.effective_state_dir / "accounts" / self._account
                self._seen = SeenFiles(folder / "seen.sqlite3")
            return self._seen

    def scan_folders(self) -> int:
        """Queue new media from the chosen folders (only while signed in)."""
        if not self._prefs.folders or self.username is None or self._account is None:
            return 0
        return self.queue.add(scan(self._prefs.folders, self.seen()))

    def _in_chosen_folder(self, path: Path) -> bool:
        return any(path.is_relative_to(Path(f).expanduser()) for f in self._prefs.folders)

    # Queue ----------------------------------------------------------------------------
    def add_files(self, paths: Iterable[Path]) -> int:
        return self.queue.add(paths)

    def incoming_path(self, name: str, batch: str | None = None) -> Path:
        """Where a file the browser sends is received (web mode)."""
        folder = self.upload_dir / (batch or secrets.token_hex(6))
        return folder / safe_upload_name(name)

    def upload_gate(self) -> str | None:
        if self.username is None:
            return "Sign in to back up."
        if self._prefs.wifi_only and self.wifi_supported and self.connection not in UNMETERED:
            return "Waiting for Wi-Fi (Wi-Fi only is on)."
        return None

    def set_connection(self, kind: str | None) -> None:
        self.connection = kind
        self._bump()

    def _local_copy(self, sha256: str) -> Path | None:
        try:
            return self.journal().local_copy(sha256)
        except MobileBackupError:
            return None

    def _finished(self, item: QueueItem) -> None:
        if item.state not in SUCCEEDED:
            return
        if self._prefs.folders and self._account and self._in_chosen_folder(item.path):
            self.seen().mark(item.path)
        if item.path.is_relative_to(self.upload_dir):
            thumbs = self.thumbs
            if thumbs is not None:  # the last moment this device has the picture
                try:
                    for sha in self.journal().backed_up_from(item.path):
                        thumbs.add(sha, item.path)
                except MobileBackupError as exc:
                    log.info("no thumbnail for %s: %s", item.name, exc)
            # The browser's copy was only needed until the cloud had the bytes.
            item.path.unlink(missing_ok=True)
            parent = item.path.parent
            if parent != self.upload_dir and not any(parent.iterdir()):
                shutil.rmtree(parent, ignore_errors=True)

    def _after_run(self) -> None:
        self.refresh_history()

    # History ---------------------------------------------------------------------------
    @property
    def history(self) -> HistoryState:
        return self._history

    def refresh_history(self, *, wait: bool = True) -> HistoryState:
        """Read the ledger a page at a time (blocking); errors become a message on the
        history screen and set the top bar's icon. The first page is shown as soon as it
        arrives, so a long history paints at once and fills in. Without `wait`, a refresh
        already under way is enough (a periodic poll)."""
        if self.username is None:
            return self._history
        if not self._history_lock.acquire(blocking=wait):
            return self._history
        try:
            account, old = self._account, self._history
            records: list[FileView] = []
            cursor: str | None = None
            try:
                while True:
                    page = self.api().list_files(limit=HISTORY_PAGE, cursor=cursor)
                    records.extend(page.files)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                    if not old.loaded and account == self._account:  # the first paint
                        self._history = _state(records, complete=False)
                        self._bump()
            except NotLoggedInError as exc:
                self._session_ended()
                state = HistoryState(entries=old.entries, error=user_message(exc))
            except MobileBackupError as exc:
                offline = isinstance(exc, TransportError)
                self.link = Link.OFFLINE if offline else Link.ERROR
                self.link_message = user_message(exc)
                state = replace(old, error=user_message(exc))
            else:
                self.link, self.link_message = Link.OK, None
                state = _state(records, complete=True)
            if account != self._account:  # signed out meanwhile: not the next member's
                return self._history
            self._history = state
        finally:
            self._history_lock.release()
        self._bump()
        return state

    def glance(self) -> Glance:
        """The backup at a glance (the Back up screen's status card and the top bar)."""
        h = self._history
        snap = self.queue.snapshot()
        return glance(
            username=self.username,
            member=h.member,
            deployment=self.deployment,
            on_pc=h.counts.on_pc,
            waiting_for_pc=h.counts.waiting_for_pc,
            failed=h.counts.failed + snap.failed,
            to_upload=len(snap.items) - snap.finished,
            loaded=h.loaded,
            collected=h.collected,
            link=self.link,
            link_message=self.link_message,
            now=datetime.now(UTC),
        )

    def history_needs_polling(self) -> bool:
        """True while some file is in the cloud but not yet on the PC."""
        return self._history.counts.waiting_for_pc > 0 or self.queue.snapshot().active


def _state(records: Sequence[FileView], *, complete: bool) -> HistoryState:
    entries = history(records)
    return HistoryState(
        entries=tuple(entries),
        counts=count(entries),
        loaded=True,
        complete=complete,
        pcs=household_pcs(entries),
        collected=last_collected(entries),
        member=next((r.owner_name for r in records if r.owner_name), None),
    )
