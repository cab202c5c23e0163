"""``fumarole sample``: write the sample archive (the one command of the CLI that uses :mod:`app.sample`).

:mod:`app.cli` builds the parser and dispatches ``fumarole sample`` here by a lazy import, the one import of
``app.sample`` from the CLI that the layer contracts allow (``.importlinter``: ``app.cli -> app.sample.cli``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.data.errors import UserInputError
from app.paths import default_archive, tiny_archive

__all__ = ["cmd_sample"]


def _progress(i: int, n: int, what: str) -> None:
    print(f"[{i}/{n}] {what}", file=sys.stderr, flush=True)


def _items(text: str | None) -> list[str] | None:
    """A comma-separated flag value as a list (None when the flag is not given)."""
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the sample archive (every argument and the folder checked before any work)."""
    from app.sample.archive import PRODUCTS, check_out_folder, check_request, is_complete, write_archive

    scenario = args.scenario
    out = Path(args.out).expanduser() if args.out else None
    if args.resolution == "tiny":
        scenario = scenario if scenario != "soufriere" else "soufriere-tiny"
    if out is None:  # our own default folder (data/ of a fresh checkout, the data home): its parents are ours to make
        out = tiny_archive() if args.resolution == "tiny" else default_archive()
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"the archive folder {out} cannot be made: {exc.strerror or exc}") from None
    if not 1 <= args.workers <= 64:
        raise UserInputError(f"--workers {args.workers}: give 1 to 64 processes")
    products = _items(args.products) if args.products is not None else list(PRODUCTS)
    days = _items(args.days)
    check_request(scenario, args.resolution, products, days)
    if args.if_missing and is_complete(out):
        print(f"sample archive already complete at {out}", file=sys.stderr)
        return 0
    check_out_folder(out)
    summary = write_archive(
        out, scenario=scenario, resolution=args.resolution, products=products, days=days,
        workers=args.workers, progress=_progress,
    )
    mb = summary["bytes"] / 1e6
    print(f"wrote {summary['files']} files, {mb:.1f} MB, in {summary['seconds']:.1f} s to {out}")
    return 0
