from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mobile_backup.client import Tokens, TokenStore


def test_store_round_trips_privately(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "s" / "session.json")
    tokens = Tokens("me@example.com", "access", "refresh", datetime(2030, 1, 1, tzinfo=UTC))
    store.save(tokens)
    assert store.load() == tokens
    if os.name == "posix":
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.clear()
    assert store.load() is None
    assert not store.clear()


def test_damaged_session_file_reads_as_signed_out(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text("{not json", encoding="utf-8")
    assert TokenStore(path).load() is None


def test_freshness_keeps_a_margin() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert Tokens("u", "a", None, now + timedelta(minutes=5)).fresh(now)
    assert not Tokens("u", "a", None, now + timedelta(seconds=30)).fresh(now)
