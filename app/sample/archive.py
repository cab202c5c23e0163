"""Write a whole sample archive: every product of every day of a scenario, in parallel processes.

The archive is complete when its ``.complete`` stamp exists (written last), so an interrupted run is redone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.sample.scenario import get_scenario

log = logging.getLogger(__name__)

STAMP = ".complete"


@dataclass(frozen=True)
class Resolution:
    """How much the sample is reduced from the instruments' real sampling (1 = full resolution)."""

    tropomi_scanline_step: int
    tropomi_pixel_step: int
    caliop_profile_step: int
    caliop_regional: bool


DEMO = Resolution(tropomi_scanline_step=4, tropomi_pixel_step=3, caliop_profile_step=15, caliop_regional=True)
TINY = Resolution(tropomi_scanline_step=16, tropomi_pixel_step=9, caliop_profile_step=60, caliop_regional=True)
FULL = Resolution(tropomi_scanline_step=1, tropomi_pixel_step=1, caliop_profile_step=1, caliop_regional=False)
RESOLUTIONS = {"demo": DEMO, "tiny": TINY, "full": FULL}
PRODUCTS = ("tropomi", "caliop")


def _task(product: str, scenario_name: str, day: str, out_root: str, res: Resolution) -> list[str]:
    sc = get_scenario(scenario_name)
    d = np.datetime64(day, "D")
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
    """True when a previous run wrote the whole archive."""
    return (Path(out_root) / STAMP).exists()


def write_archive(
    out_root: Path,
    scenario: str = "soufriere",
    resolution: str = "demo",
    products: Iterable[str] = PRODUCTS,
    days: Iterable[str] | None = None,
    workers: int = 2,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Write the sample archive and return a summary (files, bytes, seconds) also saved as ``.complete``."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / STAMP).unlink(missing_ok=True)
    sc = get_scenario(scenario)
    res = RESOLUTIONS[resolution]
    day_list = [str(d) for d in (days or sc.days)]
    products = list(products)
    for p in products:
        if p not in PRODUCTS:
            raise ValueError(f"unknown product {p!r}; known products: {', '.join(PRODUCTS)}")
    jobs = [(p, scenario, d, str(out_root), res) for d in day_list for p in products]
    t0 = time.perf_counter()
    files: list[str] = []
    if workers <= 1:
        for i, job in enumerate(jobs, 1):
            files += _task(*job)
            if progress:
                progress(i, len(jobs), f"{job[0]} {job[2]}")
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_task, *job): job for job in jobs}
            for i, fut in enumerate(as_completed(futures), 1):
                files += fut.result()
                job = futures[fut]
                if progress:
                    progress(i, len(jobs), f"{job[0]} {job[2]}")
    seconds = time.perf_counter() - t0
    summary = {
        "scenario": scenario,
        "resolution": resolution,
        "resolution_steps": asdict(res),
        "products": products,
        "days": day_list,
        "files": len(files),
        "bytes": int(sum(Path(f).stat().st_size for f in files)),
        "seconds": round(seconds, 1),
    }
    (out_root / STAMP).write_text(json.dumps(summary, indent=2))
    return summary
