"""The app's own preferences (what to back up and how), kept in the profile's state dir."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIN_PARALLEL, MAX_PARALLEL, DEFAULT_PARALLEL = 1, 8, 3


@dataclass(frozen=True, slots=True)
class AppPrefs:
    """Settings the user changes on the settings screen."""

    parallel: int = DEFAULT_PARALLEL
    wifi_only: bool = False
    folders: tuple[str, ...] = field(default_factory=tuple)

    def with_folder(self, folder: str) -> AppPrefs:
        if folder in self.folders:
            return self
        return replace(self, folders=(*self.folders, folder))

    def without_folder(self, folder: str) -> AppPrefs:
        return replace(self, folders=tuple(f for f in self.folders if f != folder))

    def with_parallel(self, n: int) -> AppPrefs:
        return replace(self, parallel=max(MIN_PARALLEL, min(MAX_PARALLEL, int(n))))


class PrefsStore:
    """AppPrefs as JSON; a missing or damaged file means the defaults."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> AppPrefs:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return AppPrefs()
        except (OSError, ValueError):
            log.warning("ignoring unreadable app preferences in %s", self.path)
            return AppPrefs()
        if not isinstance(data, dict):
            return AppPrefs()
        prefs = AppPrefs()
        if isinstance(data.get("parallel"), int):
            prefs = prefs.with_parallel(data["parallel"])
        if isinstance(data.get("wifi_only"), bool):
            prefs = replace(prefs, wifi_only=data["wifi_only"])
        folders = data.get("folders")
        if isinstance(folders, list):
            prefs = replace(prefs, folders=tuple(f for f in folders if isinstance(f, str)))
        return prefs

    def save(self, prefs: AppPrefs) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(prefs)
        data["folders"] = list(prefs.folders)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)
