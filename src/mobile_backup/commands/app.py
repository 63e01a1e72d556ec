"""`mobile-backup app`: the mobile app on this computer, in a window or a browser."""

from __future__ import annotations

from typing import Annotated

import typer

from mobile_backup.commands._common import err, load_profile, out, safe, state, wait_for_signal


def app(
    web: Annotated[
        bool, typer.Option("--web", help="Serve the app to a browser instead of a window.")
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port for --web (0 picks a free one).")
    ] = 8550,
    host: Annotated[
        str,
        typer.Option(help="Address for --web; keep the loopback default unless you mean it."),
    ] = "127.0.0.1",
) -> None:
    """Open the Mobile Backup app (sign in, pick photos, watch the queue, read receipts).

    Without --profile, the app opens the household it last used (one joined from an invite,
    or chosen in its settings).
    """
    from mobile_backup.app import chosen_profile, run_desktop, run_web

    if state.profile is None:
        state.profile = chosen_profile()
    settings = load_profile()
    if not web:
        run_desktop(settings)
        return

    def ready(url: str) -> None:
        out.print(f"The app is at [bold]{url}[/] (profile {safe(settings.profile)}).")
        err.print("Press Ctrl+C to stop.")

    run_web(settings, host=host, port=port, on_ready=ready, wait=wait_for_signal)
