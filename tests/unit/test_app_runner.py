"""The runner and the controller, with a stand-in upload engine that reports like the real one.

The real engine needs the API and S3 (the e2e test drives it); here the engine is replaced
so that pause, failures and folder bookkeeping can be checked exactly and quickly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from mobile_backup.app import AppController, BackupQueue, BackupRunner, ItemState
from mobile_backup.app._controller import APP_SESSION
from mobile_backup.app._runner import STOPPED_EARLY
from mobile_backup.client import (
    CANCELLED,
    FAILED,
    UPLOADED,
    FileResult,
    NotLoggedInError,
    Tokens,
    TokenStore,
    UploadSubscriber,
    UploadSummary,
)
from mobile_backup.core import Settings, utcnow


class FakeEngine:
    """Reports every file as the real Uploader does; files named in `fail` fail."""

    def __init__(self, *, fail: Iterable[str] = (), raises: Exception | None = None) -> None:
        self.fail = set(fail)
        self.raises = raises
        self.runs: list[list[Path]] = []
        self.skip_report = False

    def __call__(self, subscribers: Sequence[UploadSubscriber]) -> FakeEngine:
        self._subs = list(subscribers)
        self.cancelled = False
        return self

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True

    def upload(self, paths: Iterable[Path]) -> UploadSummary:
        files = list(paths)
        self.runs.append(files)
        if self.raises is not None:
            raise self.raises
        summary = UploadSummary()
        for p in files:
            size = p.stat().st_size
            for s in self._subs:
                s.on_queued(path=p, size=size)
            if self.skip_report:
                continue
            if self.cancelled:
                result = FileResult(p, CANCELLED, size)
            elif p.name in self.fail:
                result = FileResult(p, FAILED, size, reason="storage refused the file: HTTP 400")
            else:
                for s in self._subs:
                    s.on_progress(path=p, bytes_sent=size)
                result = FileResult(p, UPLOADED, size)
            for s in self._subs:
                s.on_done(result=result)
            summary.results.append(result)
        return summary


def _photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"IMG_{i}.jpg"
        p.write_bytes(bytes([i]) * (100 + i))
        out.append(p)
    return out


def test_runs_take_a_few_files_at_a_time_and_report_each(tmp_path: Path) -> None:
    q = BackupQueue()
    engine = FakeEngine(fail={"IMG_1.jpg"})
    runs_done: list[int] = []
    runner = BackupRunner(
        queue=q, engine=engine, run_size=lambda: 2, on_run_done=lambda: runs_done.append(1)
    )
    q.add(_photos(tmp_path, 3))
    assert runner.run_once()
    assert runner.run_once()
    assert not runner.run_once()  # nothing left
    assert [len(r) for r in engine.runs] == [2, 1]
    assert len(runs_done) == 2
    states = {i.name: i.state for i in q.snapshot().items}
    assert states == {
        "IMG_0.jpg": ItemState.DONE,
        "IMG_1.jpg": ItemState.FAILED,
        "IMG_2.jpg": ItemState.DONE,
    }


def test_paused_queue_starts_no_run(tmp_path: Path) -> None:
    q = BackupQueue()
    engine = FakeEngine()
    runner = BackupRunner(queue=q, engine=engine)
    q.add(_photos(tmp_path, 1))
    q.pause()
    assert not runner.run_once()
    assert engine.runs == []


def test_pausing_mid_run_puts_unfinished_files_back_to_waiting(tmp_path: Path) -> None:
    q = BackupQueue()
    engine = FakeEngine()
    runner = BackupRunner(queue=q, engine=engine)
    photos = _photos(tmp_path, 2)
    q.add(photos)
    paths = q.claim(2)
    q.pause()
    engine([q])
    runner._current = engine
    runner.cancel_current()
    engine.upload(paths)
    assert {i.state for i in q.snapshot().items} == {ItemState.WAITING}
    assert q.snapshot().headline() == "Paused"
    q.resume()
    assert runner.run_once()
    assert {i.state for i in q.snapshot().items} == {ItemState.DONE}
    assert engine.closed


def test_a_closed_gate_says_why_and_uploads_nothing(tmp_path: Path) -> None:
    q = BackupQueue()
    engine = FakeEngine()
    runner = BackupRunner(queue=q, engine=engine, gate=lambda: "Waiting for Wi-Fi.")
    runner.stop()  # no thread; makes the gate's back-off return at once
    q.add(_photos(tmp_path, 1))
    assert not runner.run_once()
    assert runner.blocked_reason == "Waiting for Wi-Fi."
    assert engine.runs == []


def test_an_engine_error_fails_the_run_with_a_readable_message(tmp_path: Path) -> None:
    q = BackupQueue()
    ended: list[bool] = []
    runner = BackupRunner(
        queue=q,
        engine=FakeEngine(raises=NotLoggedInError("the session has expired")),
        on_session_ended=lambda: ended.append(True),
    )
    q.add(_photos(tmp_path, 2))
    runner.run_once()
    assert ended == [True]
    assert {i.error for i in q.snapshot().items} == {
        "Your session has ended. Please sign in again."
    }


def test_files_the_engine_never_reported_do_not_spin_forever(tmp_path: Path) -> None:
    q = BackupQueue()
    engine = FakeEngine()
    engine.skip_report = True
    runner = BackupRunner(queue=q, engine=engine)
    q.add(_photos(tmp_path, 1))
    runner.run_once()
    (item,) = q.snapshot().items
    assert item.state == ItemState.FAILED
    assert item.error == STOPPED_EARLY


@pytest.fixture
def signed_in(tmp_path: Path) -> Settings:
    settings = Settings.explicit(
        profile="t", api_url="http://127.0.0.1:9", client_id="c", state_dir=tmp_path / "state"
    )
    TokenStore(settings.effective_state_dir / APP_SESSION).save(
        Tokens("me@example.com", "token", "refresh", utcnow() + timedelta(hours=1))
    )
    return settings


def test_chosen_folders_are_backed_up_once(tmp_path: Path, signed_in: Settings) -> None:
    engine = FakeEngine()
    c = AppController(settings=signed_in, engine=engine)
    assert c.username == "me@example.com"
    photos = _photos(tmp_path / "DCIM", 3)
    (tmp_path / "DCIM" / "notes.txt").write_text("not media")
    assert c.add_folder(str(tmp_path / "DCIM")) == 3
    while c.runner.run_once():
        pass
    assert sorted(engine.runs[0]) == photos
    c.queue.clear_finished()
    assert c.folders.scan() == 0  # backed up: not queued again
    photos[0].write_bytes(b"edited")  # a changed file is new again
    assert c.folders.scan() == 1
    # Preferences persist across restarts.
    assert AppController(settings=signed_in, engine=engine).prefs.folders == (
        str(tmp_path / "DCIM"),
    )
    c.stop()


def test_browser_copies_are_deleted_once_backed_up(signed_in: Settings) -> None:
    c = AppController(settings=signed_in, engine=FakeEngine())
    dest = c.incoming_path("../../etc/passwd.jpg")
    assert dest.parent.parent == c.upload_dir
    assert dest.name == "_.._etc_passwd.jpg"
    c.queue.expect(dest, size=3)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"abc")
    c.queue.received(dest)
    assert c.runner.run_once()
    assert not dest.exists()
    assert not dest.parent.exists()


def test_a_backed_up_copy_never_takes_the_folder_of_a_file_still_arriving(
    signed_in: Settings,
) -> None:
    """Issue 29, item 4, at its root: the first file of a pick is backed up (and its copy
    removed) while the browser is about to send the next one. Flet creates the next file's
    folder, then writes into it; that folder must still be there when it writes."""
    c = AppController(settings=signed_in, engine=FakeEngine())
    first, second = c.incoming_path("IMG_1.jpg"), c.incoming_path("IMG_1.jpg")
    assert first.parent != second.parent  # each file its own folder, even of one name
    for dest in (first, second):
        c.queue.expect(dest, size=3)
    first.parent.mkdir(parents=True)
    first.write_bytes(b"one")
    c.queue.received(first)
    second.parent.mkdir(parents=True)  # Flet's handler: makedirs, then the body arrives
    assert c.runner.run_once()  # the first is backed up meanwhile, and its copy goes
    assert not first.parent.exists()
    second.write_bytes(b"two")  # raised FileNotFoundError when a pick shared one folder
    c.queue.received(second)
    assert c.runner.run_once()
    assert [i.state for i in c.queue.snapshot().items] == [ItemState.DONE, ItemState.DONE]


def test_without_a_session_nothing_uploads(tmp_path: Path) -> None:
    settings = Settings.explicit(profile="t", api_url="http://127.0.0.1:9", state_dir=tmp_path)
    c = AppController(settings=settings, engine=FakeEngine())
    assert c.username is None
    assert c.upload_gate() == "Sign in to back up."
    assert c.deployment == "t (127.0.0.1)"


def test_wifi_only_waits_on_mobile_data_where_the_platform_reports_it(
    signed_in: Settings,
) -> None:
    from dataclasses import replace

    c = AppController(settings=signed_in, engine=FakeEngine())
    c.update_prefs(replace(c.prefs, wifi_only=True))
    assert c.upload_gate() is None  # the platform does not report the network: no gate
    c.wifi_supported = True
    c.set_connection("mobile")
    assert c.upload_gate() == "Waiting for Wi-Fi (Wi-Fi only is on)."
    c.set_connection("wifi")
    assert c.upload_gate() is None


def test_the_app_keeps_its_own_sign_in_apart_from_the_clis(tmp_path: Path) -> None:
    """Issue 29, item 3: the app neither opens as the CLI's member nor signs the CLI out."""
    settings = Settings.explicit(
        profile="t", api_url="http://127.0.0.1:9", client_id="c", state_dir=tmp_path / "state"
    )
    cli = TokenStore(settings.effective_state_dir / "session.json")
    cli.save(Tokens("cli@example.com", "token", "refresh", utcnow() + timedelta(hours=1)))
    c = AppController(settings=settings, engine=FakeEngine())
    assert c.username is None  # its own sign-in screen, not the CLI's member
    app = TokenStore(settings.effective_state_dir / APP_SESSION)
    app.save(Tokens("app@example.com", "token", "refresh", utcnow() + timedelta(hours=1)))
    c = AppController(settings=settings, engine=FakeEngine())
    assert c.username == "app@example.com"  # its remembered member
    c.sign_out()
    assert c.username is None
    assert app.load() is None
    loaded = cli.load()
    assert loaded is not None
    assert loaded.username == "cli@example.com"  # the CLI is still signed in
    c.stop()


def test_the_apps_journal_is_the_clis_one_per_deployment_and_member(
    tmp_path: Path, signed_in: Settings
) -> None:
    """Issue 9, item 3: keyed by e-mail only, a journal followed a member from one deployment
    (a local stack that restarted) to the next. Now both the app and the CLI key it by
    deployment and member, through the one `UploadSession`."""
    from mobile_backup.client import UploadSession, account_key

    c = AppController(settings=signed_in, engine=FakeEngine())
    app_journal = c.journal().path
    TokenStore(signed_in.effective_state_dir / "session.json").save(  # the CLI, same member
        Tokens("me@example.com", "cli-token", "cli-refresh", utcnow() + timedelta(hours=1))
    )
    with UploadSession(signed_in) as cli_session:
        assert cli_session.journal.path == app_journal  # the CLI's, for the same member
        assert cli_session.account == account_key(signed_in, "me@example.com")
    elsewhere = signed_in.model_copy(update={"api_url": "http://127.0.0.1:10"})  # elsewhere
    with UploadSession(elsewhere) as other:
        assert other.journal.path != app_journal
    c.stop()
