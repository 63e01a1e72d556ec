"""How to add what a command is missing, said the way this copy was installed."""

from __future__ import annotations

import sys
from pathlib import Path

DISTRIBUTION = "mobile-backup"


def installed_with_pipx(prefix: str | None = None) -> bool:
    """Whether this interpreter is a pipx-managed environment (`…/pipx/venvs/NAME`)."""
    parts = Path(prefix or sys.prefix).parts
    return len(parts) >= 3 and parts[-3] == "pipx" and parts[-2] == "venvs"


def install_hint(*packages: str, prefix: str | None = None) -> str:
    """The command that adds `packages` to this installation: `pipx inject` into a pipx
    install (its extras cannot be added afterwards), `pip install` anywhere else."""
    quoted = " ".join(f"'{p}'" for p in packages)
    if installed_with_pipx(prefix):
        return f"pipx inject {DISTRIBUTION} {quoted}"
    return f"pip install {quoted}"
