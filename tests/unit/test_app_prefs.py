"""App preferences and the package's public names."""

from __future__ import annotations

from pathlib import Path

from mobile_backup.app import AppPrefs, PrefsStore, safe_upload_name


def test_prefs_round_trip_and_clamp(tmp_path: Path) -> None:
    store = PrefsStore(tmp_path / "prefs.json")
    assert store.load() == AppPrefs()
    prefs = AppPrefs().with_parallel(99).with_folder("/a").with_folder("/b").with_folder("/a")
    assert prefs.parallel == 8
    assert prefs.folders == ("/a", "/b")
    store.save(prefs.without_folder("/a"))
    assert store.load() == AppPrefs(parallel=8, folders=("/b",))


def test_damaged_prefs_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_text('{"parallel": "many", "wifi_only": 1, "folders": [3, "/ok"]}')
    assert PrefsStore(path).load() == AppPrefs(folders=("/ok",))
    path.write_text("[]")
    assert PrefsStore(path).load() == AppPrefs()


def test_upload_names_are_one_harmless_component() -> None:
    assert safe_upload_name("IMG_0001.jpg") == "IMG_0001.jpg"
    assert safe_upload_name("a/b\\c\x00.jpg") == "a_b_c_.jpg"
    assert safe_upload_name("..") == "file"
    assert len(safe_upload_name("x" * 1000)) == 200
