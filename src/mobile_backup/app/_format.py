"""Numbers as a person reads them on a small screen."""

from __future__ import annotations

from datetime import datetime


def human_bytes(n: float) -> str:
    """1234567 → '1.2 MB' (decimal units, as phones show storage)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"


def human_date(when: datetime | None) -> str:
    return when.strftime("%d %b %Y, %H:%M") if when else "unknown date"
