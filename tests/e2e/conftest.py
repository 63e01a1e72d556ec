"""Fixtures of the end-to-end tests: a fresh Chromium profile per test (Debian's
/usr/bin/chromium, never a downloaded browser) that may reach loopback only, and local
stacks with and without their PC agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS, PHONE
from playwright.sync_api import BrowserContext, Route, sync_playwright

from mobile_backup.local import LocalStack


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    assert CHROMIUM.exists(), "Debian's chromium is required: apt-get install chromium"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every run
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=PHONE,
        )
        blocked: list[str] = []

        def loopback_only(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", loopback_only)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def quiet_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The local stack without its PC agent: files stay 'waiting for your PC' until a test
    starts one."""
    with LocalStack(library=tmp_path / "library", poll_seconds=1, run_agent=False) as s:
        yield s
