"""`upload`: back up files and folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mobile_backup.commands._common import (
    RichProgress,
    api_client,
    load_profile,
    print_summary,
    progress_bar,
)


def upload(
    paths: Annotated[
        list[Path], typer.Argument(help="Photos, videos or folders (searched for media).")
    ],
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Files sent at once.")] = 4,
) -> None:
    """Back up photos and videos: hash, skip what is already backed up, upload the rest."""
    from mobile_backup.client import Uploader, discover

    cfg = load_profile()
    files = discover(paths)
    api = api_client(cfg)
    try:
        with progress_bar() as progress:
            summary = Uploader(
                api=api, parallel=parallel, subscribers=[RichProgress(progress)]
            ).upload(files)
    finally:
        api.close()
    print_summary(summary)
    if not summary.ok:
        raise typer.Exit(1)
