from __future__ import annotations

from mobile_backup.cli import main

main()
