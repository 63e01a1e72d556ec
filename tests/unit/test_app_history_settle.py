"""Issue 31, item 3b: a file the queue gave up on (the member signed out, or the connection
went, while it was being sent) that the ledger holds after all is "already backed up" once
the history has been read, not "needs attention" for ever."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mobile_backup.app._history import HistoryModel
from mobile_backup.app._queue import BackupQueue, ItemState
from mobile_backup.client import Journal
from mobile_backup.core import FileStatus, sha256_file
from mobile_backup.core.wire import FilesPage, FileView


class Member:
    """The app as the history sees it: signed in, its API answering with `held`."""

    def __init__(self, held: list[Path]) -> None:
        self.username = self.account = "ann@example.com"
        self.deployment = "home"
        self._journal = Journal.memory()
        self._page = FilesPage(
            files=[
                FileView(
                    sha256=sha256_file(p),
                    filename=p.name,
                    size=p.stat().st_size,
                    content_type="image/jpeg",
                    status=FileStatus.UPLOADED,
                    created_at=datetime.now(UTC),
                )
                for p in held
            ]
        )

    def api(self) -> Any:
        page = self._page

        class Api:
            def list_files(self, **_: object) -> FilesPage:
                return page

        return Api()

    def journal(self) -> Journal:
        return self._journal

    def session_ended(self) -> None:  # pragma: no cover - not signed out here
        raise AssertionError("signed out")


def test_failed_files_the_ledger_holds_become_backed_up_and_the_rest_stay_failed(
    tmp_path: Path,
) -> None:
    arrived, lost = tmp_path / "IMG_1.jpg", tmp_path / "IMG_2.jpg"
    arrived.write_bytes(b"\xff\xd8\xff\xe0 arrived before the sign-out")
    lost.write_bytes(b"\xff\xd8\xff\xe0 never sent")
    queue = BackupQueue()
    queue.add([arrived, lost])
    queue.fail([arrived, lost], "The upload stopped: signed out.")
    finished: list[Path] = []
    queue.on_finished(lambda item: finished.append(item.path))
    assert queue.snapshot().headline() == "2 of 2 files need attention"

    model = HistoryModel(Member(held=[arrived]), queue, lambda: None)
    model.refresh()

    assert queue.get(arrived).state == ItemState.SKIPPED  # type: ignore[union-attr]
    assert queue.get(lost).state == ItemState.FAILED  # type: ignore[union-attr]
    assert finished == [arrived]  # the app's after-backup steps run for it (web copy, thumb)
    assert queue.snapshot().headline() == "1 of 2 files need attention"
