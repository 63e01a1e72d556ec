"""`agent ...`: the PC side."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from mobile_backup.commands._common import load_profile, out
from mobile_backup.core import MobileBackupError

app = typer.Typer(help="The PC agent: collects uploads into your library.")


@app.command("run")
def agent_run(
    library: Annotated[
        Path | None, typer.Option(help="Library root (default: the profile's `library`).")
    ] = None,
) -> None:
    """Collect uploads into the library until stopped (Ctrl+C or SIGTERM)."""
    from mobile_backup.agent import Agent

    cfg = load_profile(library=library)
    root = cfg.library
    if root is None:
        raise MobileBackupError("no library folder: pass --library or set it in the profile")
    agent = Agent.from_settings(cfg, library=root.expanduser().resolve())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.print(f"Agent collecting into {root} (Ctrl+C to stop)…")
    runner = threading.Thread(target=agent.run, args=(stop,), name="agent")
    runner.start()
    try:
        while runner.is_alive():
            runner.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        runner.join()
    out.print("Agent stopped.")
