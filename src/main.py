"""Entry point of the phone app for `flet build apk` / `flet build ipa` ([tool.flet.app]).

A new phone knows no household: its first screen asks for the invite link the member was
sent (`mobile-backup users add` prints it; opening `mobilebackup://join?i=...` fills it
in). Joining writes the household as a profile in the app's own config file, which later
starts open with. Settings bundled with a build (`MOBILE_BACKUP_*`) still work.
"""

from __future__ import annotations

from mobile_backup.app import chosen_profile, run_embedded
from mobile_backup.core import load_settings

# Flet runs this file as the app; there is nothing else to import from it.
run_embedded(load_settings(chosen_profile()))
