"""The ``fumarole`` command: make the sample archive, index an archive, serve the dashboards, time series."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from app.data.errors import FumaroleError, UserInputError
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
        # the HTTP API (/api/geo/...): Tornado handlers added to the same server (app/api/geo.py, ROUTES)
        "--plugins", "app.api.geo",
    ]
    if args.num_procs != 1:
        cmd += ["--num-procs", str(args.num_procs)]
    if not args.no_warm:
        # run each dashboard once at start-up: Numba's JIT (seconds per process) and the archive's index and
        # first reads are paid before the first visitor comes, not by them
        cmd += ["--warm"]
    print(f"serving {len(apps)} dashboards at http://localhost:{args.port}", file=sys.stderr, flush=True)
    # become the server (no child process left behind when this one is stopped)
    os.chdir(REPO)
    os.execve(sys.executable, cmd, env)


def _scenario_of_archive(cat) -> str:
    """The scenario the sample archive was written from (its ``.complete`` stamp), for the scenario's wind."""
    import json

    from app.data.catalog import archive_root

    stamp = Path(archive_root(cat)) / ".complete"
    try:
        return str(json.loads(stamp.read_text())["scenario"])
    except (OSError, ValueError, KeyError):
        raise UserInputError(
            f"--plume-height-km takes the wind of the archive's scenario, but {stamp} does not name one: "
            "give --scenario (soufriere, hunga-tonga, etna) or the wind with --wind-ms or --wind-csv"
        ) from None


def _flux_wind(args: argparse.Namespace, cat) -> tuple[object, str]:
    """The wind for the flux from the flags, and a description of it for the CSV header."""
    given = [name for name in ("wind_ms", "wind_csv", "plume_height_km") if getattr(args, name) is not None]
    if len(given) != 1:
        raise UserInputError(
            "--flux needs the wind at plume height from exactly one of --wind-ms SPEED, --wind-csv FILE or "
            f"--plume-height-km KM (the scenario's wind); got {len(given)}"
        )
    if args.wind_ms is not None:
        return args.wind_ms, f"{args.wind_ms:g} m/s (constant)"
    if args.wind_csv is not None:
        from app.data.timeseries import load_wind_csv

        return load_wind_csv(args.wind_csv), f"time series from {args.wind_csv}"
    from app.sample.scenario import get_scenario

    name = args.scenario or _scenario_of_archive(cat)
    try:
        scenario = get_scenario(name)
    except KeyError as exc:
        raise UserInputError(str(exc.args[0])) from None
    speed = float(scenario.wind_speed_ms(args.plume_height_km))
    return speed, f"{speed:.3f} m/s: the wind of scenario {name} at {args.plume_height_km:g} km"


def cmd_timeseries(args: argparse.Namespace) -> int:
    """SO2 mass within each radius of a volcano for every orbit of a period (and the flux), as CSV."""
    from tqdm import tqdm

    from app.data.catalog import open_catalog
    from app.data.timeseries import (
        compute_flux_timeseries,
        compute_mass_timeseries,
        parse_radii,
        write_timeseries_csv,
    )
    from app.science.filters import Filters

    filters = Filters(qa_min=args.qa_min, sza_max=args.sza_max, edge_pixels=args.edge_pixels, min_du=args.min_du)
    radii = parse_radii(args.radii)
    cat = open_catalog(args.catalog)
    wants_flux = args.flux or any(getattr(args, n) is not None for n in ("wind_ms", "wind_csv", "plume_height_km"))
    wind = _flux_wind(args, cat) if wants_flux else None
    bars: list[tqdm] = []  # made at the first progress call: bad input fails with no bar drawn

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="granule", desc="SO2 mass", file=sys.stderr, leave=False))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        table, report = compute_mass_timeseries(
            cat, args.volcano, args.start, args.end, radii, args.variable, filters,
            scheduler=args.scheduler, cache_dir=False if args.no_cache else args.cache_dir, progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    for path, reason in report.corrupt:
        print(f"skipped {Path(path).name}: {reason}", file=sys.stderr)
    provenance = dict(
        volcano=report.volcano, start=report.start, end=report.end, variable=args.variable, filters=filters,
        radii=radii, n_granules=report.n_granules, scheduler=report.scheduler,
    )
    write_timeseries_csv(table, args.output, **provenance)
    print(
        f"wrote {len(table)} rows ({table['orbit'].nunique()} orbits x {len(radii)} radii) from "
        f"{report.n_granules} granules ({report.cache_hits} from the cache, {report.skipped_by_index} skipped by "
        f"the index, {len(report.corrupt)} unreadable) to {args.output}",
        file=sys.stderr,
    )
    if wind is not None:
        flux = compute_flux_timeseries(table, wind[0], min_coverage=args.min_coverage)
        out = Path(args.flux_output) if args.flux_output else Path(args.output).with_suffix(".flux.csv")
        write_timeseries_csv(flux, out, **provenance, extra={"wind": wind[1], "min_coverage": args.min_coverage})
        n_ok = int(flux["flux_t_day"].notna().sum())
        print(f"wrote the flux of {n_ok} of {len(flux)} orbits to {out}", file=sys.stderr)
    return 0


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
    p.add_argument("--no-warm", action="store_true", help="do not run the dashboards once at start-up")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("timeseries", help="SO2 mass (and flux) around a volcano for every orbit of a period, as CSV")
    p.add_argument("--volcano", required=True, help="GVP name or number (e.g. 'Soufriere St Vincent', 360150)")
    p.add_argument("--start", required=True, help="first day or time, UTC (YYYY-MM-DD[THH:MM])")
    p.add_argument("--end", required=True, help="last day (included) or end time, UTC")
    p.add_argument("--radii", default="25,50,75,100,150,200,250,300,400,500,1000,2000",
                   help="disk radii in km, comma-separated (default: 25 ... 2000)")
    p.add_argument("--variable", default="so2_7km", help="so2_pbl, so2_1km, so2_7km (default) or so2_15km")
    p.add_argument("--qa-min", type=float, default=0.5, help="keep pixels with qa_value >= this (default 0.5)")
    p.add_argument("--sza-max", type=float, default=None, help="keep pixels with solar zenith angle <= this")
    p.add_argument("--edge-pixels", type=int, default=0, help="drop this many outermost ground pixels each side")
    p.add_argument("--min-du", type=float, default=None, help="truncate columns below this (DU)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786); default: local threads")
    p.add_argument("--catalog", help="catalogue YAML path or URL, or 'sample' / 'tiny' (default: sample)")
    p.add_argument("--cache-dir", help="cache folder (default: <archive>/.fumarole-cache/timeseries)")
    p.add_argument("--no-cache", action="store_true", help="compute every granule again, store nothing")
    p.add_argument("--flux", action="store_true", help="also the disk-method flux per orbit (a wind flag implies it)")
    p.add_argument("--wind-ms", type=float, help="flux: constant wind speed at plume height, m/s")
    p.add_argument("--wind-csv", help="flux: CSV of time, wind_ms")
    p.add_argument("--plume-height-km", type=float, help="flux: the scenario's wind at this height")
    p.add_argument("--scenario", help="flux: scenario of --plume-height-km (default: the archive's)")
    p.add_argument("--min-coverage", type=float, default=0.5,
                   help="flux: fit only radii whose disk is covered at least this much (default 0.5)")
    p.add_argument("--flux-output", help="flux CSV (default: the output with the suffix .flux.csv)")
    p.add_argument("-o", "--output", required=True, help="the CSV to write")
    p.set_defaults(func=cmd_timeseries)
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
