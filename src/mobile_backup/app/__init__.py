"""The mobile app (Flet): sign in, choose what to back up, watch the queue, read receipts.

The state logic (queue, receipts, errors, preferences, folder scanning, the controller) is
plain Python and imports no UI toolkit; the Flet screens (`_screen_*`, `_shell`) draw it.
"""

from __future__ import annotations

from mobile_backup.app._controller import AppController, safe_upload_name
from mobile_backup.app._deployments import chosen_profile
from mobile_backup.app._errors import reason_message, user_message
from mobile_backup.app._prefs import AppPrefs, PrefsStore
from mobile_backup.app._queue import BackupQueue, PendingStore
from mobile_backup.app._queue_items import ItemState, QueueItem, QueueSnapshot
from mobile_backup.app._receipts import (
    CLOUD_DONE,
    HistoryEntry,
    history,
    history_entry,
    pc_done,
)
from mobile_backup.app._run import run_desktop, run_embedded, run_web
from mobile_backup.app._runner import BackupRunner
from mobile_backup.app._web import WebAppServer

__all__ = [
    "CLOUD_DONE",
    "AppController",
    "AppPrefs",
    "BackupQueue",
    "BackupRunner",
    "HistoryEntry",
    "ItemState",
    "PendingStore",
    "PrefsStore",
    "QueueItem",
    "QueueSnapshot",
    "WebAppServer",
    "chosen_profile",
    "history",
    "history_entry",
    "pc_done",
    "reason_message",
    "run_desktop",
    "run_embedded",
    "run_web",
    "safe_upload_name",
    "user_message",
]
