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
    """'86.5\u00a0MB/s': a no-break space, so a narrow screen never splits the number from
    its unit."""
    return f"{human_bytes(bytes_per_second)}/s".replace(" ", "\u00a0")


def human_date(when: datetime | None) -> str:
    return when.strftime("%d %b %Y, %H:%M") if when else "unknown date"


def human_ago(when: datetime, now: datetime) -> str:
    """How long before `now` (both aware): 'just now', '5 min ago', '3 h ago', '2 days ago'."""
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return f"{days} day ago" if days == 1 else f"{days} days ago"
