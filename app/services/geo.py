"""The GEO product service: one product of one slot, its frame, and the ring mosaic, read through the data layer.

Views and the API ask here; :mod:`app.render.geo` draws what this returns (frames, mosaics, elements) and reads
nothing itself. Satellites are named by platform id (``G16``), satellite (``GOES-16``) or ring position
(``GOES-East``), a position meaning the satellite that held it at the time asked for.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

from app.data import geo
from app.data.errors import FumaroleError, UserInputError
from app.render import geo as render
from app.science import rgb as rgbmod

__all__ = ["load_product", "product_frame", "RingScenes", "ring_scenes", "prefetch", "PREFETCH_LIMIT"]

CLOUD_TOP = render.CLOUD_TOP
product_channels = render.product_channels


def load_product(archive, platform, time, product: str) -> xr.Dataset:
    """The data of one product of one slot: the channels a composite needs (GeoScene) or the CloudTop.

    Reads only the channels the recipe uses. A slot that is not there raises :class:`~app.data.geo.MissingSlotError`;
    a channel the slot lacks, :class:`UserInputError` from :func:`app.science.rgb.compose`'s message ("the Ash RGB
    needs channel ir_87 (C11, 8.5 µm), which this GOES-16 scene lacks …"); a damaged file,
    :class:`~app.data.errors.GranuleError` naming it.
    """
    pos = geo.ring_position(platform, time, archive)
    if product in CLOUD_TOP:
        return geo.read_cloud_top(archive, pos.platform, time)
    needed, optional = product_channels(product, pos.sensor)
    t = pd.Timestamp(time).floor("min")
    table = geo.slots(archive, pos.platform, t, t + pd.Timedelta(minutes=1))
    if table.empty:
        return geo.read_scene(archive, pos.platform, t, needed[:1])  # raises MissingSlotError, naming the nearest
    present = set(table["channels"].iloc[0])
    wanted = [c for c in (*needed, *optional) if c in present]
    if not wanted:
        wanted = [c for c in table["channels"].iloc[0] if c != "hrv"][:1]
    scene = geo.read_scene(archive, pos.platform, t, wanted)
    missing = [c for c in needed if c not in present]
    if missing:
        rgbmod.compose(scene, product, pos.sensor)  # raises the recipe's sentence naming the missing channels
    return scene



def product_frame(archive, platform, time, product: str, x_range=None, y_range=None, width: int = 800,
                  height: int | None = None) -> xr.DataArray:
    """The frame (cached per process) of one product of one slot over a view of the disk."""
    return render.frame(load_product(archive, platform, time, product), product, x_range, y_range, width, height)


@dataclass
class RingScenes:
    """Each ring position's data at one time.

    ``scenes`` by platform id (None where missing), ``names`` the position name of each key, ``problems`` one
    sentence per satellite that could not be read.
    """

    scenes: dict[str, xr.Dataset | None] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def ring_scenes(archive, t, product: str) -> RingScenes:
    """Every ring satellite's ``product`` at ``t`` (its slot in the repeat cycle holding t), for a mosaic.

    A position nobody we read held at ``t`` gives None under the position's name; a satellite whose slot is missing
    or damaged gives None and a sentence in ``problems``. Raises :class:`UserInputError` only when no satellite at
    all can be read.
    """
    t = pd.Timestamp(t)
    out = RingScenes()
    for pos in geo.ring_at(t, archive):
        if not pos.platform:  # nobody we read held the position then
            out.scenes[pos.name] = None
            out.names[pos.name] = pos.name
            continue
        out.names[pos.platform] = pos.name
        slot_t = t.floor(f"{pos.repeat_minutes}min")
        try:
            out.scenes[pos.platform] = load_product(archive, pos.platform, slot_t, product)
        except FumaroleError as exc:
            out.scenes[pos.platform] = None
            out.problems.append(f"{pos.name}: {exc}")
    if all(v is None for v in out.scenes.values()):
        raise UserInputError(f"no ring satellite has {render.product_title(product)} at {t:%Y-%m-%d %H:%M} UTC: "
                             + "; ".join(out.problems))
    return out


#: At most this many frames queued ahead, for the whole process (a bounded background prefetch).
PREFETCH_LIMIT = 24
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-prefetch")
_PENDING: set = set()
_PENDING_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def prefetch(jobs) -> int:
    """Run ``(key, make)`` jobs on one background thread (an animation's next frames, into the frame caches).

    A key already queued is not queued again; past :data:`PREFETCH_LIMIT` queued jobs the rest are dropped (the
    frame is then made when shown). A job's failure is left for the frame's own showing to say. Returns how many
    jobs were queued.
    """
    queued = 0
    for key, make in jobs:
        with _PENDING_LOCK:
            if key in _PENDING or len(_PENDING) >= PREFETCH_LIMIT:
                continue
            _PENDING.add(key)
        _PREFETCH.submit(_run, key, make)
        queued += 1
    return queued


def _run(key, make) -> None:
    try:
        make()
    except FumaroleError:
        pass  # said when the frame is shown (or skipped by the animation)
    except Exception:  # noqa: BLE001 - a prefetch must never kill its thread; the showing says it
        log.exception("prefetch of %s failed", key)
    finally:
        with _PENDING_LOCK:
            _PENDING.discard(key)
