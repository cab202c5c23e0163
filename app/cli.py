"""The ``fumarole`` command: make the sample archive, index an archive, serve the dashboards."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from app.data.errors import FumaroleError
from app.paths import DASHBOARDS, REPO, default_archive, tiny_archive


def _progress(i: int, n: int, what: str) -> None:
    print(f"[{i}/{n}] {what}", file=sys.stderr, flush=True)


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the sample archive."""
    from app.sample.archive import PRODUCTS, is_complete, write_archive

    scenario = args.scenario
    out = Path(args.out) if args.out else None
    if args.resolution == "tiny":
        scenario = scenario if scenario != "soufriere" else "soufriere-tiny"
        out = out or tiny_archive()
    out = out or default_archive()
    if args.if_missing and is_complete(out):
        print(f"sample archive already complete at {out}", file=sys.stderr)
        return 0
    products = args.products.split(",") if args.products else list(PRODUCTS)
    days = args.days.split(",") if args.days else None
    summary = write_archive(
        out, scenario=scenario, resolution=args.resolution, products=products, days=days,
        workers=args.workers, progress=_progress,
    )
    mb = summary["bytes"] / 1e6
    print(f"wrote {summary['files']} files, {mb:.1f} MB, in {summary['seconds']:.1f} s to {out}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Build or refresh the granule index of an archive and print what it holds."""
    from app.data.catalog import open_catalog
    from app.data.index import GranuleIndex

    cat = open_catalog(args.catalog)
    index = GranuleIndex.for_catalog(cat)
    report = index.refresh()
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(index.summary())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the dashboards with ``panel serve``."""
    env = dict(os.environ)
    if args.catalog:
        env["FUMAROLE_CATALOG"] = args.catalog
    apps = sorted(str(p) for p in DASHBOARDS.glob("*.py") if not p.name.startswith("_"))
    cmd = [
        sys.executable, "-m", "panel", "serve", *apps,
        "--port", str(args.port), "--address", args.address,
        "--allow-websocket-origin", "*",
        "--index", str(DASHBOARDS / "_index.html") if (DASHBOARDS / "_index.html").exists() else apps[0],
        "--static-dirs", f"assets={REPO / 'assets'}",
    ]
    if args.num_procs != 1:
        cmd += ["--num-procs", str(args.num_procs)]
    print(f"serving {len(apps)} dashboards at http://localhost:{args.port}", file=sys.stderr, flush=True)
    return subprocess.call(cmd, env=env, cwd=REPO)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="fumarole", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is read and skipped")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write the sample archive in the real public formats")
    p.add_argument("--out", help="archive folder (default: data/sample, or data/tiny with --resolution tiny)")
    p.add_argument("--scenario", default="soufriere", help="soufriere (default), hunga-tonga, etna")
    p.add_argument("--resolution", default="demo", choices=["demo", "tiny", "full"],
                   help="demo: reduced sampling (default); tiny: for tests; full: the instruments' own sampling")
    p.add_argument("--products", help="comma-separated subset of: tropomi, caliop")
    p.add_argument("--days", help="comma-separated days (YYYY-MM-DD); default: the scenario's days")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--if-missing", action="store_true", help="do nothing when the archive is already complete")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("index", help="build or refresh the granule index of a catalogue's archive")
    p.add_argument("--catalog", help="catalogue YAML path or URL, or 'sample' / 'tiny' (default: sample)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("serve", help="serve the dashboards")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--num-procs", type=int, default=1, help="server processes (panel serve --num-procs)")
    p.add_argument("--catalog", help="catalogue to serve (default: the sample archive)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors are one sentence on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except FumaroleError as exc:
        print(f"fumarole: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
