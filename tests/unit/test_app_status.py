"""The backup at a glance: who, where, how it stands, and the top bar's signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mobile_backup.app._format import human_ago, human_rate
from mobile_backup.app._status import Glance, Link, Signal, glance
from mobile_backup.app._widgets import OK, WARN

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _glance(**changes: object) -> Glance:
    values: dict[str, object] = {
        "username": "anna@example.com",
        "member": "anna",
        "deployment": "home (api.example.com)",
        "on_pc": 10,
        "waiting_for_pc": 2,
        "failed": 0,
        "to_upload": 0,
        "loaded": True,
        "collected": {"main": NOW - timedelta(minutes=5)},
        "link": Link.OK,
        "link_message": None,
        "now": NOW,
    }
    values.update(changes)
    return glance(**values)  # type: ignore[arg-type]


def test_the_glance_says_who_where_how_many_and_when_the_pc_last_collected() -> None:
    g = _glance()
    assert g.who == "Signed in as anna@example.com"
    assert g.where == "To home (api.example.com) · library folder anna"
    assert dict(g.counts) == {
        "on your PC": 10,
        "waiting for your PC": 2,
        "to upload": 0,
        "failed": 0,
    }
    assert g.collected == "Your PC last collected a file 5 min ago."
    assert (g.signal, g.problem) == (Signal.OK, None)
    two = _glance(collected={"main": NOW - timedelta(hours=3), "laptop": NOW - timedelta(days=2)})
    assert two.collected == "Last collected: PC laptop 2 days ago, PC main 3 h ago"
    assert _glance(collected={}).collected == "Your PC has not collected any file yet."
    assert _glance(collected={}, loaded=False).collected == "Reading the ledger…"


def test_the_signal_reflects_reachability_first_then_failures_then_work() -> None:
    offline = _glance(link=Link.OFFLINE, link_message="Can't reach your backup service.", failed=3)
    assert offline.signal == Signal.OFFLINE
    assert offline.problem == "Can't reach your backup service."
    assert _glance(link=Link.ERROR).signal == Signal.ERROR
    assert _glance(failed=1).signal_text == "1 file needs attention"
    assert _glance(failed=2, to_upload=5).signal == Signal.ATTENTION
    assert _glance(to_upload=5).signal == Signal.BUSY
    assert _glance(link=Link.UNKNOWN).signal == Signal.CHECKING


def test_small_screen_words() -> None:
    assert human_rate(86_500_000) == "86.5\u00a0MB/s"  # never split across two lines
    assert human_ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert human_ago(NOW - timedelta(days=1, hours=2), NOW) == "1 day ago"


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_our_own_colours_pass_wcag_aa_on_the_light_surfaces() -> None:
    # The theme's roles (primary, error, outline) are Material 3's, built for contrast; the
    # two colours the app picks itself are checked here against white and a tinted surface
    # darker than the cards' (Flutter derives the real ones from the seed colour).
    for surface in ("#FFFFFF", "#ECE6F0"):
        for colour in (OK, WARN):
            lighter, darker = sorted((_luminance(surface), _luminance(colour)), reverse=True)
            assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (colour, surface)


def test_figures_not_read_are_a_dash_and_last_known_ones_say_their_age() -> None:
    """Issue 31, item 2: with the service unreachable the card never shows a zero it does
    not know; figures read before it went away stay, with their age."""
    never = _glance(loaded=False, link=Link.OFFLINE, collected={}, on_pc=0, waiting_for_pc=0)
    assert dict(never.counts) == {
        "on your PC": None,
        "waiting for your PC": None,
        "to upload": 0,
        "failed": 0,
    }
    assert never.collected == "Your backups cannot be read until the service answers."
    assert _glance(loaded=False, link=Link.UNKNOWN, collected={}).collected == (
        "Reading the ledger…"
    )
    then = _glance(link=Link.OFFLINE, read_at=NOW - timedelta(minutes=7))
    assert dict(then.counts)["on your PC"] == 10
    assert then.collected == "Your PC last collected a file 5 min ago. Figures as of 7 min ago."
    assert _glance(read_at=NOW - timedelta(minutes=7)).collected.endswith("5 min ago.")
