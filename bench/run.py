"""`python -m bench.run [B1 B3 ...] [--runs N] [--quick] [--hogs N] [--list] [--keep] [--out DIR]`.

Discovers the scenario modules `bench/b*_*.py` (each registers itself on import), runs the
chosen scenarios (all by default, in name order: B0, B1, ...) with a warm-up and `--runs`
measured runs each, prints the table and writes `latest.md` / `latest.json` to `--out`
(default bench/results). `--hogs N` runs N busy loops beside every scenario (a loaded PC;
the report says so). Exit status: 0 when every scenario ran (misses included: they are
printed as MISS), 1 when one failed to import or raised, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench._harness import Scenario, ScenarioResult, registry, run_scenarios, write_report
from bench._hogs import cpu_hogs

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> dict[str, str]:
    """Import every `bench/b*_*.py`; returns {module: error} for those that failed."""
    failed: dict[str, str] = {}
    for path in sorted(BENCH_DIR.glob("b*_*.py")):
        module = f"bench.{path.stem}"
        try:
            importlib.import_module(module)
        except Exception as exc:
            failed[module] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
    return failed


def _order(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name[1:] if ch.isdigit())
    return (int(digits) if digits else 1_000_000, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("scenarios", nargs="*", metavar="NAME", help="e.g. B1 B3 (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs after the warm-up (≥3)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    parser.add_argument(
        "--hogs", type=int, default=0, metavar="N",
        help="N CPU hogs (busy loops at normal priority) beside every scenario: a loaded PC",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (generated files)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="report dir")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.hogs < 0:
        parser.error("--hogs must be 0 or more")

    import_errors = discover()
    if args.list:
        for name in sorted(registry, key=_order):
            print(f"{name}\t{registry[name].title}\t({registry[name].module})")
        for module, error in import_errors.items():
            print(f"?\t{module} failed to import: {error}")
        return 1 if import_errors else 0

    wanted = [n.upper() for n in args.scenarios] or sorted(registry, key=_order)
    unknown = [n for n in wanted if n not in registry]
    if unknown:
        known = ", ".join(sorted(registry, key=_order)) or "none"
        broken = f"; failed to import: {', '.join(import_errors)}" if import_errors else ""
        parser.error(f"unknown scenario(s) {', '.join(unknown)} (known: {known}{broken})")
    chosen: list[Scenario] = [registry[n] for n in wanted]

    started = datetime.now(UTC)
    with cpu_hogs(args.hogs):
        results = run_scenarios(chosen, runs=args.runs, quick=args.quick, keep=args.keep)
    # A module that failed to import is a failed scenario, reported as such (only when
    # running everything: naming scenarios explicitly says which ones matter).
    if not args.scenarios:
        for module, error in import_errors.items():
            results.append(
                ScenarioResult(
                    name=module.split(".")[-1],
                    title=module,
                    runs=0,
                    error=f"import failed: {error}",
                )
            )
    md, js, text = write_report(
        results, out_dir=args.out, runs=args.runs, quick=args.quick, started=started,
        hogs=args.hogs,
    )  # fmt: skip
    print(text)
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
