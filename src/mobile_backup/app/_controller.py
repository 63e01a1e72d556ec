"""Everything the app does, without a screen: session, queue and folders (the history is
`_history.py`'s model, which the controller holds).

One `AppController` serves the app process (every page of the web mode shows the same
queue). Views call its methods from event handlers and draw what it reports; blocking calls
(`sign_in`, `history.refresh`) are meant to run off the UI loop, in a worker thread.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from mobile_backup.app._deployments import remember_profile
from mobile_backup.app._errors import SESSION_ENDED
from mobile_backup.app._folders import FolderWatch
from mobile_backup.app._history import HistoryModel
from mobile_backup.app._prefs import AppPrefs, PrefsStore
from mobile_backup.app._queue import BackupQueue, PendingStore
from mobile_backup.app._queue_items import SUCCEEDED, QueueItem
from mobile_backup.app._runner import BackupRunner, EngineFactory, UploadEngine
from mobile_backup.app._thumbs import Thumbnails
from mobile_backup.client import (
    ApiClient,
    Authenticator,
    CloudThumbs,
    Invite,
    Journal,
    MfaChallenge,
    NotLoggedInError,
    ResetSent,
    TokenStore,
    UploadSession,
    UploadSubscriber,
    account_id,
    join_profile,
    read_invite,
)
from mobile_backup.core import MobileBackupError, Settings, load_settings
from mobile_backup.core.wire import CheckResponse

log = logging.getLogger(__name__)

DEVICE = "Mobile Backup app"
APP_SESSION = "app-session.json"
SCAN_INTERVAL_SECONDS = 30.0
# How long signing out waits for the files in flight to stop (they resume at next sign-in).
SIGN_OUT_WAIT_SECONDS = 30.0
# Connection types on which "Wi-Fi only" lets uploads run.
UNMETERED = frozenset({"wifi", "ethernet"})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def _app_auth(settings: Settings) -> Authenticator:
    return Authenticator(
        settings=settings, store=TokenStore(settings.effective_state_dir / APP_SESSION)
    )


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
        state = settings.effective_state_dir
        # The app's own sign-in, apart from the CLI's (`session.json`): signing out of one
        # never signs the other out, and the app never opens as the CLI's member.
        self.auth = authenticator or _app_auth(settings)
        # Where a browser's picks arrive: fixed for the server's life (Flet's upload root),
        # whichever deployment the app switches to.
        self.upload_dir = state / "app-uploads"
        self._prefs_store = PrefsStore(state / "app-prefs.json")
        self._prefs = self._prefs_store.load()
        self.invited_email: str | None = None
        """The e-mail of the invite just joined (the sign-in screen fills it in)."""
        # The queue shows the signed-in member's files only (see `_enter_account`).
        self.queue = BackupQueue(store=None)
        self.queue.on_finished(self._finished)
        self._engine = engine or self._default_engine
        self._session: UploadSession | None = None
        self._account: str | None = None
        self._lock = threading.RLock()
        self._version = 0
        self.history = HistoryModel(self, self.queue, self._bump)
        self.thumbs: Thumbnails | None = None
        self.session_message: str | None = None
        self.wifi_supported = False
        self.connection: str | None = None
        self.folders = FolderWatch(
            folders=lambda: self._prefs.folders,
            account_dir=self._account_dir,
            queue_files=self.queue.add,
            interval=scan_interval,
        )
        self.runner = BackupRunner(
            queue=self.queue,
            engine=self._engine,
            gate=self.upload_gate,
            run_size=lambda: max(4, 2 * self._prefs.parallel),
            on_run_done=self._after_run,
            on_session_ended=self.session_ended,
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
    def configured(self) -> bool:
        """Whether the app knows a deployment to sign in to (a new phone does not yet)."""
        return bool(self.settings.api_url and self.settings.client_id)

    def join(self, link: str) -> Invite:
        """Set this device up for the deployment of an invite (its own profile), and switch
        to it; InvalidInviteError (one sentence) for a damaged or unsafe one."""
        invite = read_invite(link)
        profile = join_profile(invite)
        self.use(load_settings(profile, state_dir=self.settings.state_dir))
        self.invited_email = invite.email
        return invite

    def use(self, settings: Settings) -> None:
        """Switch to another deployment of this device: the member signed in here is paused
        and put away as at a sign-out (their session stays theirs, for their return)."""
        self._leave_account()
        state = settings.effective_state_dir
        with self._lock:
            self.settings = settings
            self.auth = _app_auth(settings)
            self._prefs_store = PrefsStore(state / "app-prefs.json")
            self._prefs = self._prefs_store.load()
            self.history.clear()
            self.session_message = None
            self.invited_email = None
        remember_profile(settings)
        self._enter_account()
        self._bump()

    @property
    def deployment(self) -> str:
        s = self.settings
        if not s.api_url:
            return "none yet"
        name = s.household or s.profile
        if s.local:
            return f"{name} (local stack)"
        host = urlsplit(s.api_url).hostname if s.api_url else None
        return f"{name} ({host})" if host else name

    @property
    def username(self) -> str | None:
        if self.session_message is not None:
            return None
        tokens = self.auth.current()
        return tokens.username if tokens else None

    def sign_in(self, email: str, password: str, new_password: str | None = None) -> None:
        """Sign in (blocking); raises a MobileBackupError whose `user_message` is shown.

        A new member's temporary password raises NewPasswordRequiredError: ask for their
        own and call again with `new_password`. Where the deployment asks for a second
        factor, MfaRequiredError (or MfaSetupRequiredError, with the key to add to an
        authenticator app) carries the challenge to answer with `answer_mfa`.
        """
        self.settings.require("api_url")
        self.auth.login(email, password, new_password=new_password)
        self._signed_in()

    def begin_password_reset(self, email: str) -> ResetSent:
        """A forgotten password: Cognito e-mails a code (blocking)."""
        self.settings.require("api_url")
        return self.auth.begin_password_reset(email)

    def finish_password_reset(self, email: str, code: str, new_password: str) -> None:
        """The e-mailed code and a new password; then signed in (blocking)."""
        self.auth.finish_password_reset(email, code, new_password)
        self._signed_in()

    def answer_mfa(self, challenge: MfaChallenge, code: str) -> None:
        """End a sign-in that asked for an authenticator app's code (blocking)."""
        self.auth.answer_mfa(challenge, code)
        self._signed_in()

    def _signed_in(self) -> None:
        with self._lock:
            self.session_message = None
        self._enter_account()
        self._bump()
        self.folders.scan()

    def sign_out(self) -> None:
        """Forget the session. The member's queue is paused, saved and hidden: the next
        member to sign in sees only their own, and it comes back at this one's next sign-in."""
        self._leave_account()
        self.auth.logout()
        with self._lock:
            self.history.clear()
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
                folder / "thumbnails",
                path_of=self._local_copy,
                on_ready=self._bump,
                cloud=CloudThumbs(self.api),
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
            thumbs = self.thumbs
            if forget:
                self._account = None
                self.thumbs = None
                self.history.clear()
        self.folders.close()
        if thumbs is not None:
            thumbs.close()

    @property
    def account(self) -> str | None:
        """The signed-in account's key (its state folder's name); None while signed out."""
        return self._account

    def _account_dir(self) -> Path | None:
        """The signed-in member's state folder (queue, seen files, thumbnails)."""
        account = self._account
        return None if account is None else self.settings.effective_state_dir / "accounts" / account

    def session_ended(self) -> None:
        """The session can no longer be refreshed: the app asks the member to sign in."""
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

    def check_now(self) -> CheckResponse:
        """Ask the household's PCs to check their copies now (the detail sheet's button)."""
        return self.api().request_check()

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
        self.folders.start()

    def stop(self) -> None:
        self.folders.stop()
        self.runner.stop()
        self._close_account(forget=False)

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
        return self.folders.scan()

    def remove_folder(self, folder: str) -> None:
        self.update_prefs(self._prefs.without_folder(folder))

    # Queue ----------------------------------------------------------------------------
    def add_files(self, paths: Iterable[Path]) -> int:
        return self.queue.add(paths)

    def incoming_path(self, name: str) -> Path:
        """Where a file the browser sends is received (web mode): a folder of its own.

        Each file's folder is removed once that file is in the cloud. A folder shared by a
        whole pick could be found empty (its first files done, the next not begun) and
        removed between Flet creating it and writing the next file into it: on a busy
        machine, picked files were lost that way. Two picked files of one name no longer
        share a path either.
        """
        return self.upload_dir / secrets.token_hex(8) / safe_upload_name(name)

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
        self.folders.backed_up(item.path)
        browser_copy = item.path.is_relative_to(self.upload_dir)
        thumbs = self.thumbs
        if thumbs is not None:  # kept in the cloud: the gallery shows it after free-up
            try:
                for sha in self.journal().backed_up_from(item.path):
                    if browser_copy:  # the last moment this device has the picture
                        thumbs.add(sha, item.path)
                    else:
                        thumbs.keep(sha, item.path)
            except MobileBackupError as exc:
                log.info("no thumbnail for %s: %s", item.name, exc)
        if browser_copy:
            # The browser's copy was only needed until the cloud had the bytes.
            item.path.unlink(missing_ok=True)
            if item.path.parent != self.upload_dir:  # its own folder (`incoming_path`)
                shutil.rmtree(item.path.parent, ignore_errors=True)

    def _after_run(self) -> None:
        self.history.refresh()
