"""`python -m mobile_backup.deploy build DIR`: the Lambda package, unzipped, into DIR.

This is what `sam build` runs (infra/lambda/Makefile sets DIR to SAM's $(ARTIFACTS_DIR)),
so `sam build && sam deploy` ships exactly what `mobile-backup deploy` ships.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from mobile_backup.core import MobileBackupError


def main(argv: list[str] | None = None) -> int:
    """Build into the given directory; prints one line, returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m mobile_backup.deploy")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the Lambda package into DIR")
    build.add_argument("directory", type=Path)
    args = parser.parse_args(argv)

    from mobile_backup.deploy._artifact import build_artifact, lambda_target
    from mobile_backup.infra import load_template

    try:
        target = lambda_target(load_template())
        with tempfile.TemporaryDirectory(prefix="mobile-backup-build-") as tmp:
            artifact = build_artifact(Path(tmp), target=target)
            destination: Path = args.directory
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copytree(artifact.directory, destination, dirs_exist_ok=True)
    except MobileBackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"built the Lambda package for {target.runtime}/{target.architecture} into "
        f"{destination}: {artifact.unzipped_bytes / 1e6:.1f} MB "
        f"({artifact.zip_bytes / 1e6:.1f} MB zipped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
