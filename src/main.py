"""Entry point of the phone app for `flet build apk` / `flet build ipa` ([tool.flet.app]).

The deployment comes from the settings bundled with the build (`MOBILE_BACKUP_*` values or
a config file with the profile written by `mobile-backup deploy`).
"""

from __future__ import annotations

from mobile_backup.app import run_embedded
from mobile_backup.core import load_settings

# Flet runs this file as the app; there is nothing else to import from it.
run_embedded(load_settings())
