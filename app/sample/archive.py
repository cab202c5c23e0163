"""Write a whole sample archive: every product of every day of a scenario, in parallel processes.

Products: ``tropomi`` (one task per day), ``caliop`` (per day, while CALIPSO flew: none after its science
operations ended in August 2023, said once in the log) and ``geo`` (per satellite and day: the satellite at each of
the five ring positions that day, :func:`geo_platforms_on` from ``assets/platforms.yaml`` — for 2021 GOES-17,
GOES-16, Meteosat-11, Meteosat-8, Himawari-8; for July 2025 GOES-18, GOES-19, Meteosat-12 (FCI), Meteosat-9,
Himawari-9 — each slot's imager files and its NWC SAF CTTH file, v2025 layout from 2025). Tasks are handed to the
processes longest first.

The archive is complete when its ``.complete`` stamp exists (written last), so an interrupted run is redone.

The writer never loses a file of the user's. It writes only into a new folder, an empty one, or a folder that is a
Fumarole sample archive already (a ``.complete`` stamp, or the ``.fumarole-writing`` marker of an interrupted run);
anything else is refused before any work. Files are written into a hidden staging folder inside the archive and
moved into place at the end; a file already there is replaced only when a previous run wrote it (the stamp's
``manifest`` lists every file a run wrote). A file of the user's that has the name of a sample file is kept, and
the run says so and leaves the archive incomplete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.data.errors import UserInputError
from app.sample.scenario import get_scenario

log = logging.getLogger(__name__)

STAMP = ".complete"
#: Present while a run writes: the archive's files of previous runs (``{"manifest": [...]}``).
MARKER = ".fumarole-writing"
STAGING_PREFIX = ".fumarole-staging-"
#: The archive's top folders of the products (a stamp of an older Fumarole, without a manifest, owns these).
PRODUCT_FOLDERS = ("tropomi", "caliop", "abi", "ahi", "seviri", "fci", "nwcsaf_ctth")


#: The geostationary ring of 2021, west to east: GOES-West, GOES-East, Meteosat, Meteosat IODC, Himawari (the
#: fallback of :func:`geo_platforms_on` when the platform table cannot say).
GEO_PLATFORMS = ("G17", "G16", "MSG4", "MSG1", "H08")
#: The last day CALIOP science data exist (CALIPSO's science operations ended on 1 August 2023).
CALIOP_LAST_DAY = "2023-07-31"


def geo_platforms_on(day: str) -> tuple[str, ...]:
    """The satellites of the ring on ``day``, west to east (our platform keys), from ``assets/platforms.yaml``."""
    from app.data.platforms import ring_on

    ring = tuple(a.platform.key for a in ring_on(str(day)) if a.platform is not None)
    return ring or GEO_PLATFORMS


def caliop_flies(day: str) -> bool:
    """True for the days CALIOP L1B granules exist (up to :data:`CALIOP_LAST_DAY`)."""
    return str(day) <= CALIOP_LAST_DAY


@dataclass(frozen=True)
class Resolution:
    """How much the sample is reduced from the instruments' real sampling (1 = full resolution).

    GEO fields: ``geo_abi_km`` the ABI pixel size at the sub-satellite point (every band on that grid, or on its
    own if coarser), ``geo_ahi_factor`` / ``geo_seviri_factor`` the whole factors by which the 2 km AHI and 3 km
    SEVIRI grids are coarsened, ``geo_fci_km`` the FCI pixel size (a whole multiple of 2 km);
    ``geo_central_times`` the slots (``HH:MM`` UTC) written on the scenario's central day, ``geo_other_times``
    those of the other days; ``geo_missing`` slots deliberately left out (platform,
    ``HH:MM`` on the central day): a real archive has gaps, and the dashboards must show them.
    """

    tropomi_scanline_step: int
    tropomi_pixel_step: int
    caliop_profile_step: int
    caliop_regional: bool
    geo_abi_km: float = 16.0
    geo_ahi_factor: int = 10
    geo_seviri_factor: int = 8
    geo_central_times: tuple[str, ...] = ()
    geo_other_times: tuple[str, ...] = ()
    geo_missing: tuple[tuple[str, str], ...] = ()
    geo_fci_km: float = 16.0


def _hours(step: int) -> tuple[str, ...]:
    return tuple(f"{h:02d}:00" for h in range(0, 24, step))


DEMO = Resolution(
    tropomi_scanline_step=4, tropomi_pixel_step=3, caliop_profile_step=15, caliop_regional=True,
    geo_abi_km=16.0, geo_ahi_factor=10, geo_seviri_factor=8,
    geo_central_times=_hours(1), geo_other_times=_hours(6), geo_missing=(("MSG1", "13:00"), ("MSG2", "13:00")),
    geo_fci_km=16.0,
)
TINY = Resolution(
    tropomi_scanline_step=16, tropomi_pixel_step=9, caliop_profile_step=60, caliop_regional=True,
    geo_abi_km=48.0, geo_ahi_factor=25, geo_seviri_factor=16,
    geo_central_times=("12:00", "15:00"), geo_missing=(("MSG1", "15:00"), ("MSG2", "15:00")), geo_fci_km=48.0,
)
FULL = Resolution(
    tropomi_scanline_step=1, tropomi_pixel_step=1, caliop_profile_step=1, caliop_regional=False,
    geo_abi_km=2.0, geo_ahi_factor=1, geo_seviri_factor=1, geo_central_times=("15:00",), geo_fci_km=2.0,
)
RESOLUTIONS = {"demo": DEMO, "tiny": TINY, "full": FULL}
PRODUCTS = ("tropomi", "caliop", "geo")
#: The archive's top folders of each product: made even when empty (no CALIOP after 2023, no FCI before 2024), so
#: the catalogue's every product has its folder and the index does not take the archive for a broken one.
_FOLDERS = {"tropomi": ("tropomi",), "caliop": ("caliop",), "geo": ("abi", "ahi", "seviri", "fci", "nwcsaf_ctth")}
#: Version of the ``.complete`` stamp: an archive stamped by an older Fumarole (without GEO) is written again.
STAMP_VERSION = 3  # 3: the real TROPOMI layout, the wind file, the constellation by date (issue 8)


def geo_slot_times(scenario, day: str, res: Resolution, platform: str | None = None) -> list[np.datetime64]:
    """The GEO slots written on ``day`` (for ``platform``: without its deliberately missing ones)."""
    days = [str(d) for d in scenario.days]
    central = days[len(days) // 2]
    times = res.geo_central_times if day == central else res.geo_other_times
    missing = {t for p, t in res.geo_missing if p == platform} if day == central else set()
    return [np.datetime64(f"{day}T{t}", "m") for t in times if t not in missing]


def _geo_task(sc, platform: str, day: str, out_root: Path, res: Resolution) -> list[Path]:
    """Every slot of one GEO satellite on one day: the imager's files and the NWC SAF CTTH file of each slot."""
    from app.data.geo_bands import geo_platform
    from app.sample.geo.ctth import write_ctth_slot
    from app.sample.geo.scene import GeoGrid

    sensor = geo_platform(platform).sensor
    paths: list[Path] = []
    for t in geo_slot_times(sc, day, res, platform):
        folder = out_root / sensor / platform / str(t)[:4] / str(t)[5:7] / str(t)[8:10]
        if sensor == "fci":
            from app.sample.geo.fci import fci_grid, write_fci_slot

            paths += write_fci_slot(sc, platform, t, out_root, resolution_km=res.geo_fci_km)
            grid = fci_grid(platform, res.geo_fci_km)
        elif sensor == "abi":
            from app.sample.geo.abi import write_abi_slot

            paths += write_abi_slot(sc, platform, t, out_root, resolution_km=res.geo_abi_km)
            grid = GeoGrid.full_disk(platform, res.geo_abi_km)
        elif sensor == "ahi":
            from app.sample.geo.ahi import ahi_grid

            paths += _write_ahi(sc, platform, t, folder, res.geo_ahi_factor)
            grid = ahi_grid(res.geo_ahi_factor).geo_grid(platform)
        else:
            from app.sample.geo.seviri import seviri_grid, write_seviri_slot

            paths += write_seviri_slot(sc, platform, t.astype(dt.datetime), folder,
                                       resolution_factor=res.geo_seviri_factor)
            grid = seviri_grid(platform, res.geo_seviri_factor).geo_grid(platform)
        paths.append(write_ctth_slot(sc, platform, t, out_root, grid))
    return paths


def _write_ahi(sc, platform: str, t: np.datetime64, folder: Path, factor: int) -> list[Path]:
    """One AHI slot of ``platform`` (H08 or H09): the scene on the HSD grid, written as that satellite's segments."""
    from app.sample.geo.ahi import AHI_DEMO_BANDS, ahi_grid, write_ahi_fields, write_ahi_slot
    from app.sample.geo.scene import grid_cloud_top, simulate_channels

    if platform == "H08":
        return write_ahi_slot(sc, t.astype(dt.datetime), folder, resolution_factor=factor, bands=AHI_DEMO_BANDS,
                              compress=True)
    from app.data.geo_bands import geo_platform

    p = geo_platform(platform)
    geo = ahi_grid(factor).geo_grid(platform)
    slot64 = np.datetime64(t, "s")
    fields = {name: np.empty(geo.shape, np.float32) for name in AHI_DEMO_BANDS}
    for rows in geo.row_blocks(1_000_000):
        lat, lon = geo.lonlat(rows)
        values = simulate_channels(sc, lat, lon, slot64, p.sub_lon, list(AHI_DEMO_BANDS),
                                   sat_height_m=p.projection.h, cloud_tops=grid_cloud_top(sc, geo, slot64, rows))
        for name in AHI_DEMO_BANDS:
            fields[name][rows] = values[name]
    return write_ahi_fields(fields, t.astype(dt.datetime), folder, resolution_factor=factor, platform=platform,
                            compress=True)


def _task(product: str, scenario_name: str, day: str, out_root: str, res: Resolution,
          platform: str | None = None) -> list[str]:
    sc = get_scenario(scenario_name)
    d = np.datetime64(day, "D")
    if product == "geo":
        return [str(p) for p in _geo_task(sc, platform, day, Path(out_root), res)]
    if product == "tropomi":
        from app.sample.tropomi import write_tropomi_day

        paths = write_tropomi_day(
            sc, d, Path(out_root), scanline_step=res.tropomi_scanline_step, pixel_step=res.tropomi_pixel_step
        )
    elif product == "caliop":
        from app.sample.caliop import write_caliop_day

        region = sc.domain if res.caliop_regional else None
        paths = write_caliop_day(sc, d, Path(out_root), profile_step=res.caliop_profile_step, region=region)
    else:
        raise ValueError(f"unknown product {product!r}; known products: {', '.join(PRODUCTS)}")
    return [str(p) for p in paths]


def is_complete(out_root: Path) -> bool:
    """True when a previous run of this version of Fumarole wrote the whole archive."""
    try:
        return json.loads((Path(out_root) / STAMP).read_text()).get("version") == STAMP_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def _jobs(products: list[str], scenario: str, days: list[str], out_root: str, res: Resolution) -> list[tuple]:
    """The tasks: one per product and day, for GEO one per satellite and day; the longest first."""
    sc = get_scenario(scenario)
    jobs = []
    grounded = [d for d in days if "caliop" in products and not caliop_flies(d)]
    if grounded:
        log.warning("no CALIOP granules for %s: CALIPSO's science operations ended in August 2023 (last day %s)",
                    ", ".join(grounded), CALIOP_LAST_DAY)
    for d in days:
        for p in products:
            if p == "caliop" and not caliop_flies(d):
                continue
            if p == "geo":
                for platform in geo_platforms_on(d):
                    if geo_slot_times(sc, d, res, platform):
                        weight = len(geo_slot_times(sc, d, res, platform))
                        jobs.append((weight, (p, scenario, d, out_root, res, platform)))
            else:
                jobs.append((8, (p, scenario, d, out_root, res)))
    jobs.sort(key=lambda j: -j[0])  # stable: equal weights keep day order
    return [job for _, job in jobs]


def _label(job: tuple) -> str:
    return f"{job[0]} {job[5]} {job[2]}" if job[0] == "geo" else f"{job[0]} {job[2]}"


def _by_product(out_root: Path, files: list[str]) -> dict[str, int]:
    """Files per top folder of the archive (``tropomi``, ``abi/G16``, ``nwcsaf_ctth/GOES16`` …)."""
    counts: dict[str, int] = {}
    for f in files:
        parts = Path(f).relative_to(out_root).parts
        key = "/".join(parts[:2]) if parts[0] in ("abi", "ahi", "seviri", "fci", "nwcsaf_ctth") else parts[0]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _ours(out_root: Path) -> set[str] | None:
    """The files (relative POSIX paths) previous runs wrote in ``out_root``; None when it is not a sample archive."""
    for name in (MARKER, STAMP):
        try:
            data = json.loads((out_root / name).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("manifest"), list):
            return {str(f) for f in data["manifest"]}
        if "scenario" in data:  # a stamp of a Fumarole that kept no manifest: its product folders are its own
            return {p.relative_to(out_root).as_posix() for top in PRODUCT_FOLDERS
                    for p in (out_root / top).rglob("*") if p.is_file()}
    return None


def check_out_folder(out_root: str | os.PathLike) -> set[str]:
    """Refuse (:class:`UserInputError`) a folder the archive cannot be written to, before any work.

    Accepted: a new folder whose parent exists, an empty folder, or a Fumarole sample archive. Returns the files
    that previous runs wrote there (those a new run may replace).
    """
    out = Path(out_root)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"the archive folder {out} is a file, not a folder")
    if not out.exists():
        parent = out.absolute().parent
        if not parent.is_dir():
            what = "is a file, not a folder" if parent.exists() else "does not exist"
            raise UserInputError(f"the archive folder {out} cannot be made: its parent {parent} {what}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserInputError(f"the archive folder {out} cannot be made: {parent} is not writable")
        return set()
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserInputError(f"the archive folder {out} is not writable")
    ours = _ours(out)
    if ours is None:
        if any(out.iterdir()):
            raise UserInputError(
                f"the archive folder {out} is not empty and is not a Fumarole sample archive (it has no {STAMP} "
                "stamp): give a new or empty folder, so that no file of yours is overwritten"
            )
        return set()
    return ours


def check_request(scenario: str, resolution: str, products: Iterable[str], days: Iterable[str] | None) -> list[str]:
    """Refuse an unknown scenario, resolution or product, or a day that is not one of the scenario's; the days."""
    try:
        sc = get_scenario(scenario)
    except KeyError as exc:
        raise UserInputError(str(exc.args[0])) from None
    if resolution not in RESOLUTIONS:
        raise UserInputError(f"unknown resolution {resolution!r}; known resolutions: {', '.join(RESOLUTIONS)}")
    products = list(products)
    if not products:
        raise UserInputError(f"no product given; known products: {', '.join(PRODUCTS)}")
    for p in products:
        if p not in PRODUCTS:
            raise UserInputError(f"unknown product {p!r}; known products: {', '.join(PRODUCTS)}")
    known = [str(d) for d in sc.days]
    day_list = known if days is None else [str(d).strip() for d in days]
    if not day_list:
        raise UserInputError(f"no day given; the days of scenario {scenario} are {', '.join(known)}")
    for d in day_list:
        try:
            dt.date.fromisoformat(d)
        except ValueError:
            raise UserInputError(f"day {d!r} is not a date YYYY-MM-DD") from None
        if d not in known:
            raise UserInputError(f"day {d} is not a day of scenario {scenario}: {', '.join(known)}")
    return day_list


def _place(staging: Path, out_root: Path, files: list[str], ours: set[str]) -> tuple[list[str], list[str]]:
    """Move the staged files into the archive; a file there that no run of ours wrote is kept, not replaced."""
    placed: list[str] = []
    kept: list[str] = []
    for f in files:
        rel = Path(f).relative_to(staging).as_posix()
        dest = out_root / rel
        if (dest.exists() or dest.is_symlink()) and rel not in ours:
            kept.append(rel)
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):  # a file of the user's in the way
            kept.append(rel)
            continue
        placed.append(rel)
    return placed, kept


def _run_jobs(jobs: list[tuple], workers: int, progress: Callable[[int, int, str], None] | None) -> list[str]:
    files: list[str] = []
    if workers <= 1:
        for i, job in enumerate(jobs, 1):
            files += _task(*job)
            if progress:
                progress(i, len(jobs), _label(job))
        return files
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_task, *job): job for job in jobs}
        for i, fut in enumerate(as_completed(futures), 1):
            files += fut.result()
            if progress:
                progress(i, len(jobs), _label(futures[fut]))
    return files


def write_archive(
    out_root: Path,
    scenario: str = "soufriere",
    resolution: str = "demo",
    products: Iterable[str] = PRODUCTS,
    days: Iterable[str] | None = None,
    workers: int = 2,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Write the sample archive and return a summary (files, bytes, seconds) also saved as ``.complete``.

    Every argument and the folder are checked first (:class:`UserInputError`, before any work); see the module's
    description for what is never overwritten.
    """
    out_root = Path(out_root)
    products = list(products)
    day_list = check_request(scenario, resolution, products, days)
    ours = check_out_folder(out_root)
    res = RESOLUTIONS[resolution]
    out_root.mkdir(exist_ok=True)
    (out_root / MARKER).write_text(json.dumps({"manifest": sorted(ours)}))
    (out_root / STAMP).unlink(missing_ok=True)
    for old in out_root.glob(f"{STAGING_PREFIX}*"):  # an interrupted run's
        shutil.rmtree(old, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_root))
    t0 = time.perf_counter()
    try:
        staged = _run_jobs(_jobs(products, scenario, day_list, str(staging), res), workers, progress)
        if "tropomi" in products:  # the scenario's wind for the flux (ERA5 layout): the catalogues' wind entry
            from app.sample.wind import write_wind_file

            staged.append(str(write_wind_file(get_scenario(scenario), staging)))
        placed, kept = _place(staging, out_root, staged, ours)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for product in products:  # a product's folder exists even when the scenario's dates have none of its files
        for top in _FOLDERS[product]:
            (out_root / top).mkdir(exist_ok=True)
    manifest = sorted(f for f in ours | set(placed) if (out_root / f).is_file())
    if kept:
        (out_root / MARKER).write_text(json.dumps({"manifest": manifest}))
        raise UserInputError(
            f"{len(kept)} file(s) in {out_root} that Fumarole did not write have the names of sample files and were "
            f"kept (first: {kept[0]}); the archive is incomplete: move them away and run again"
        )
    seconds = time.perf_counter() - t0
    files = [str(out_root / f) for f in placed]
    summary = {
        "version": STAMP_VERSION,
        "scenario": scenario,
        "resolution": resolution,
        "resolution_steps": asdict(res),
        "products": products,
        "days": day_list,
        "files": len(files),
        "files_by_product": _by_product(out_root, files),
        "bytes": int(sum(Path(f).stat().st_size for f in files)),
        "seconds": round(seconds, 1),
        "manifest": manifest,
    }
    (out_root / STAMP).write_text(json.dumps(summary, indent=2))
    (out_root / MARKER).unlink(missing_ok=True)
    return summary
