"""Geostationary imagery as the views see it: the ring, the slots of each satellite, scenes and cloud tops.

The one entry the GEO views use. Nothing here knows a file format. Which files exist comes, for a product whose
catalogue entry has ``partition:`` (``{platform}/{time:%Y/%m/%d}/``, NOAA's ``ABI-L1b-RadF/{time:%Y/%j/%H}/``), from
listings of only the time-partitioned folders around the times asked for (:mod:`app.data.geo_slots`: cached,
re-listed every ``live.poll_seconds`` for a live source), else from the granule index (one row per file); this
module groups them into **slots** (one full-disk scan of one satellite: twelve ABI files,
one per band; an HSD file per band and segment; one SEVIRI file) and hands the files of a slot to the reader of
the satellite's sensor (:func:`app.data.geo_abi.read_abi`, :func:`app.data.geo_ahi.read_ahi`,
:func:`app.data.geo_seviri.read_seviri`, ``app.data.geo_fci.read_fci``; :func:`app.data.nwcsaf.read_ctth` for
cloud tops).

- **The ring of a date.** Who holds each of the five positions (GOES-West, GOES-East, Meteosat, Meteosat IODC,
  Himawari, west to east) is data: ``assets/platforms.yaml`` (:mod:`app.data.platforms`), with the catalogue's
  ``platforms:`` maps of the GEO products applied (:func:`constellation`). :func:`ring_at` gives the ring at an
  instant (2021-04-12: ``G17``, ``G16``, ``MSG4``, ``MSG1``, ``H08``; 2025-07-08: ``G18``, ``G19``, ``MTI1``,
  ``MSG2``, ``H09``); :func:`ring_position` resolves a platform id (``G16``), satellite (``GOES-16``) or position
  name (``GOES-East``, by the time asked for) to a :class:`RingPosition`.
- :func:`slots` (a table of the slots in a time range; for a position name, the slots of whoever held it then),
  :func:`latest_slot`, :func:`ring_latest` (the latest slot of every ring position, stale ones flagged, the
  satellites named by the assignment of that instant), :func:`days`.
- :func:`read_scene` (a canonical GeoScene: generic channels, BT in K, reflectance in %) and
  :func:`read_cloud_top` (a canonical CloudTop); a slot that is not there raises :class:`MissingSlotError`,
  which names the nearest slot there is. Whatever a reader raises on a file (not only
  :class:`~app.data.errors.GranuleError`) becomes a :class:`~app.data.errors.GranuleError` naming the file and
  the reason; with ``skip_damaged`` the channels of the other files are still served.

A slot's time is its nominal start (the repeat cycle it belongs to: 10 min for ABI and AHI, 15 min for SEVIRI).
Files may be local or remote (fsspec URLs with the catalogue's storage options, :mod:`app.data.storage`): ABI and FCI
are read by byte ranges (satpy ``FSFile``), HSD segments and SEVIRI files through kept local copies, NWC SAF by
byte ranges (h5netcdf). Reads are cached per server process, per channel, keyed by each file's
:func:`app.data.storage.stamp` (URL, modification time or ETag, size: a file written again is read again), in the
byte-bounded cache ``geo-channels`` (a quarter of the process's memory budget, :mod:`app.core.cache`); identical
reads asked for at the same time are done once. The readers hold
:data:`app.core.locks.HDF_LOCK` while they are inside netCDF-C/HDF5 (HSD files are plain binary reads, unlocked).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from app.core.cache import SingleFlight, bounded_cache
from app.core.state import archive_state_dir, say_once
from app.data import geo_slots, storage
from app.data import platforms as _platforms
from app.data.errors import CatalogError, GranuleError, UserInputError
from app.data.geo_bands import FULL_DISK, SENSOR_BANDS, generic_channels
from app.data.readers import reader_for

__all__ = [
    "RingPosition",
    "Slot",
    "MissingSlotError",
    "MissingChannelError",
    "IMAGER_PRODUCTS",
    "CLOUD_TOP_PRODUCT",
    "ring_position",
    "ring_at",
    "constellation",
    "slots",
    "latest_slot",
    "ring_latest",
    "STALE_AFTER",
    "days",
    "read_scene",
    "read_cloud_top",
    "slot_stamp",
    "clear_cache",
]

log = logging.getLogger(__name__)

#: The catalogue product of each sensor's imager files, and of the NWC SAF cloud tops.
IMAGER_PRODUCTS = {"abi": "geo_abi_l1b", "ahi": "geo_ahi_hsd", "seviri": "geo_seviri_nc", "fci": "geo_fci_l1c"}
CLOUD_TOP_PRODUCT = "nwcsaf_ctth"
#: Repeat cycle (minutes) of a sensor whose full-disk grid geo_bands does not describe (yet).
_DEFAULT_REPEAT = {"fci": 10}


@dataclass(frozen=True)
class RingPosition:
    """A ring position as held by one platform: the position's name, the platform, and the period it holds it."""

    name: str  # GOES-West ("" for a platform that never held a ring position)
    platform: str  # G17: the platform id of the index and of the sample archive's folders
    satellite: str  # GOES-17
    sub_lon: float  # degrees east: the satellite's longitude in that period
    sensor: str  # abi, ahi, seviri, fci
    product: str  # the catalogue product of its imager files
    start: pd.Timestamp | None = None  # the period it holds the position: start ≤ t < until (None: open)
    until: pd.Timestamp | None = None

    @property
    def repeat_minutes(self) -> int:
        """The full-disk repeat cycle: 10 min (ABI mode 6, AHI, FCI) or 15 min (SEVIRI)."""
        if self.sensor in FULL_DISK:
            return FULL_DISK[self.sensor].repeat_minutes
        return _DEFAULT_REPEAT.get(self.sensor, 10)

    def covers(self, t) -> bool:
        """True when the platform holds the position at ``t``."""
        t = _as_time(t)
        return (self.start is None or self.start <= t) and (self.until is None or t < self.until)


# --- the constellation of an archive ---------------------------------------------------------------------------

_CONSTELLATIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CONSTELLATIONS_LOCK = threading.Lock()


def _catalog_platforms(arch) -> dict[str, dict]:
    """The ``platforms:`` maps of the archive's GEO products, merged (ids the same in two products: merged too)."""
    merged: dict[str, dict] = {}
    have = set(arch.products())
    for product in (*IMAGER_PRODUCTS.values(), CLOUD_TOP_PRODUCT):
        if product not in have:
            continue
        info = arch.product_info(product)
        for key, entry in info.platforms.items():
            merged.setdefault(str(key), {}).update(entry if isinstance(entry, dict) else {"satellite": entry})
    return merged


def constellation(archive=None) -> _platforms.Constellation:
    """The constellation of an archive: ``assets/platforms.yaml`` with its catalogue's ``platforms:`` applied.

    ``archive=None`` gives the file's alone. Computed once per archive object.
    """
    if archive is None:
        return _platforms.default()
    arch = _archive(archive)
    with _CONSTELLATIONS_LOCK:
        found = _CONSTELLATIONS.get(arch)
    if found is None:
        found = _platforms.default().with_overrides(_catalog_platforms(arch), f"catalogue {arch.catalog_source}")
        with _CONSTELLATIONS_LOCK:
            _CONSTELLATIONS[arch] = found
    return found


def _position_of(plat: _platforms.Platform, period: _platforms.Period | None) -> RingPosition:
    return RingPosition(
        name=period.position if period is not None else "",
        platform=plat.key,
        satellite=plat.name,
        sub_lon=period.lon if period is not None else plat.sub_lon,
        sensor=plat.instrument,
        product=IMAGER_PRODUCTS[plat.instrument],
        start=None if period is None else period.start,
        until=None if period is None else period.until,
    )


def _held(pos: RingPosition, archive=None) -> str:
    """`` (GOES-West from 2023-01-04)``: the position held then, else the latest it held; nothing if none."""
    if not pos.name and pos.platform:
        try:
            pos = ring_position(pos.platform, None, archive)
        except UserInputError:
            return ""
    if not pos.name:
        return ""
    since = f" from {pos.start:%Y-%m-%d}" if pos.start is not None else ""
    until = f" until {pos.until:%Y-%m-%d}" if pos.until is not None else ""
    return f" ({pos.name}{since}{until})"


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def ring_at(when=None, archive=None) -> tuple[RingPosition, ...]:
    """The ring at ``when`` (default: now), west to east: the platform holding each position then.

    A position nobody we read held then is a :class:`RingPosition` with ``platform=""``, its nominal longitude, and
    the reason as ``satellite`` ("no satellite we read held GOES-West on 2016-01-01 …").
    """
    c = constellation(archive)
    out = []
    for a in c.ring_on(_now() if when is None else _as_time(when)):
        if a.platform is None:
            out.append(RingPosition(a.position, "", a.note, a.position_lon, "", ""))
        else:
            out.append(_position_of(a.platform, a.period))
    return tuple(out)


def _holder_with_data(arch, c: _platforms.Constellation, position: str) -> RingPosition | None:
    """The latest holder of a position that has files in the archive within its period (None: no holder has)."""
    for plat, period in reversed(c.holders(position)):
        pos = _position_of(plat, period)
        if _has_files(arch, pos.product, pos.platform, period.start, period.until):
            return pos
    return None


def ring_position(platform: str | RingPosition, when=None, archive=None) -> RingPosition:
    """The ring position of a platform id (``G16``), satellite (``GOES-16``) or position name (``GOES-East``).

    A position name is resolved by ``when``: the platform that held it then. Without ``when``, with an
    ``archive``: the latest holder with files in the archive (else the holder of today). A platform id or name
    gives the position it held at ``when`` (without ``when``: its latest one); ``name=""`` when it held none.
    Unknown names raise :class:`UserInputError` naming the known ones; a position nobody we read held at
    ``when``, :class:`MissingSlotError` saying so.
    """
    if isinstance(platform, RingPosition):
        return platform
    c = constellation(archive)
    text = str(platform).strip()
    if c.is_position(text):
        if when is None and archive is not None:
            found = _holder_with_data(_archive(archive), c, text)
            if found is not None:
                return found
        t = _now() if when is None else _as_time(when)
        a = c.assignment(text, t)
        if a.platform is None:
            raise MissingSlotError(a.note, "", t, None)
        return _position_of(a.platform, a.period)
    try:
        plat, period = c.position_of(text, when)
    except UserInputError:
        t = _now() if when is None else _as_time(when)
        ring = ", ".join(f"{a.key} ({a.satellite}, {a.position})" for a in c.ring_on(t) if a.platform)
        day = "today" if when is None else f"on {t:%Y-%m-%d}"
        others = ", ".join(p.key for p in c.platforms.values())
        raise UserInputError(f"unknown geostationary satellite {platform!r}; the ring {day} has {ring}, and the "
                             f"platforms known are {others} (or a position: "
                             f"{', '.join(p.name for p in c.positions)})") from None
    return _position_of(plat, period)  # at a time it held no position: name "", its nominal longitude


def __getattr__(name: str):
    if name == "RING":  # the former constant: today's ring of assets/platforms.yaml (use ring_at(when, archive))
        return ring_at()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Slot:
    """One full-disk scan of one satellite: its nominal time, the imager's files, its channels, its cloud tops."""

    platform: str
    time: pd.Timestamp
    paths: tuple[str, ...]
    channels: tuple[str, ...]
    cloud_top: str | None = None  # the NWC SAF CTTH file of the slot, if there is one
    missing_segments: int = 0  # HSD segment files absent (their lines read as no data)

    @property
    def complete(self) -> bool:
        """Every file of every channel present."""
        return self.missing_segments == 0


class MissingSlotError(UserInputError):
    """No slot of a satellite at the time asked for; ``nearest`` is the nearest slot there is (or None)."""

    def __init__(self, message: str, platform: str, time: pd.Timestamp, nearest: pd.Timestamp | None):
        super().__init__(message)
        self.platform = platform
        self.time = time
        self.nearest = nearest


class MissingChannelError(UserInputError):
    """A channel the sensor has but the slot asked for has no file of (answered like a missing slot: 404)."""


# --- times -----------------------------------------------------------------------------------------------------


def _as_time(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def _when(t: pd.Timestamp, ref: pd.Timestamp | None = None) -> str:
    """``15:00`` when on the day of ``ref``, else ``2021-04-11 15:00``."""
    if ref is not None and t.normalize() == ref.normalize():
        return f"{t:%H:%M}"
    return f"{t:%Y-%m-%d %H:%M}"


# --- the archive -----------------------------------------------------------------------------------------------


def _archive(archive):
    from app.data.archive import Archive, get_archive

    return archive if isinstance(archive, Archive) else get_archive(archive)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({"path": pd.Series(dtype=object), "platform": pd.Series(dtype=object),
                         "start": pd.Series(dtype="datetime64[ns]"), "end": pd.Series(dtype="datetime64[ns]")})


def _repeat_of(archive, platform: str) -> int:
    """The full-disk repeat cycle (minutes) of a platform's imager."""
    try:
        sensor = constellation(archive).platform(platform).instrument
    except UserInputError:
        return 10
    return FULL_DISK[sensor].repeat_minutes if sensor in FULL_DISK else _DEFAULT_REPEAT.get(sensor, 10)


def _platform_key(file_id: str) -> str:
    """Our platform id of a file name's platform field (``GOES16`` -> ``G16``), as the granule index gives it."""
    from app.data.geo_bands import geo_platform

    return geo_platform(file_id).key


def _lister(archive, product: str, platform: str | None = None) -> geo_slots.PartitionLister | None:
    """The partition lister of a product whose catalogue entry has ``partition:`` (None: the granule index)."""
    info = archive.product_info(product)
    if not info.partition:
        return None
    repeat = _repeat_of(archive, platform) if (platform and product == CLOUD_TOP_PRODUCT) else None
    if repeat is None:
        sensor = next((k for k, v in IMAGER_PRODUCTS.items() if v == product), "")
        repeat = FULL_DISK[sensor].repeat_minutes if sensor in FULL_DISK else _DEFAULT_REPEAT.get(sensor, 10)
    state = archive_state_dir(archive.root) / f"geo-listings-{product}-{repeat}min.json"
    return geo_slots.lister_for(info, repeat, _platform_key, state)


def folder_id(archive, product: str, platform: str) -> str:
    """A platform's folder id in a product's partition (``{platform}``).

    The key of the product's catalogue ``platforms:`` map that names it (``GOES16: {platform: G16}``), else the
    NWC SAF id for NWC SAF products, else the platform id (``G16``).
    """
    info = archive.product_info(product)
    for key, entry in info.platforms.items():
        target = entry.get("platform") if isinstance(entry, dict) else None
        if str(target or key) == platform:
            return str(key)
    if product == CLOUD_TOP_PRODUCT:
        try:
            return constellation(archive).platform(platform).nwcsaf_id
        except UserInputError:
            return platform
    return platform


def _partition_bounds(lister, folder: str, platform: str, start, end):
    """[start, end) with an open side closed by the oldest / newest file of the platform (None: no file)."""
    if start is None:
        first = lister.earliest_start(folder, platform, None)
        if first is None:
            return None
        start = first
    if end is None:
        last = lister.latest_start(folder, platform, None)
        if last is None:
            return None
        end = last + pd.Timedelta(seconds=1)
    return _as_time(start), _as_time(end)


def _rows(archive, product: str, platform: str, start=None, end=None) -> pd.DataFrame:
    """The files of a product of one platform that overlap [start, end) (``path``, ``platform``, ``start``, ...).

    From the product's partitioned folders (:mod:`app.data.geo_slots`) when it has a ``partition``, else from the
    granule index.
    """
    if product not in archive.products():
        return _empty_rows()
    lister = _lister(archive, product, platform)
    if lister is not None:
        folder = folder_id(archive, product, platform)
        bounds = _partition_bounds(lister, folder, platform, start, end)
        if bounds is None or bounds[0] >= bounds[1]:
            return _empty_rows()
        return lister.rows(folder, platform, *bounds)
    rows = archive.granules(product, start, end)
    return rows[rows["platform"] == platform]


def _has_files(archive, product: str, platform: str, start=None, end=None) -> bool:
    """Whether a platform has files of a product that start in [start, end) (partitions: a walk, not a listing)."""
    if product not in archive.products():
        return False
    lister = _lister(archive, product, platform)
    if lister is None:
        return not _rows(archive, product, platform, start, end).empty
    found = lister.latest_start(folder_id(archive, product, platform), platform, end, start)
    return found is not None


def _nearest_start(archive, product: str, platform: str, t: pd.Timestamp, cycle: str) -> pd.Timestamp | None:
    """The slot time (``cycle`` floor of a file start) of a product nearest ``t``: a walk both ways from ``t``."""
    lister = _lister(archive, product, platform)
    folder = folder_id(archive, product, platform)
    before = lister.latest_start(folder, platform, t + pd.Timedelta(minutes=1))
    after = lister.earliest_start(folder, platform, t)
    found = [x.floor(cycle) for x in (before, after) if x is not None]
    if not found:
        return None
    return min(found, key=lambda x: abs(x - t))


def _spans(archive, platform, start=None, end=None) -> list[tuple[RingPosition, pd.Timestamp | None,
                                                                    pd.Timestamp | None]]:
    """(holder, start, end) pieces of [start, end): one for a platform; one per holder for a position name."""
    t0 = None if start is None else _as_time(start)
    t1 = None if end is None else _as_time(end)
    if isinstance(platform, RingPosition):
        return [(platform, t0, t1)]
    c = constellation(archive)
    if not c.is_position(str(platform).strip()):
        return [(ring_position(platform, t0, archive), t0, t1)]
    out = []
    for plat, period in c.holders(str(platform).strip()):
        a = period.start if t0 is None else (t0 if period.start is None else max(t0, period.start))
        b = period.until if t1 is None else (t1 if period.until is None else min(t1, period.until))
        if a is None or b is None or a < b:
            out.append((_position_of(plat, period), a, b))
    return out


def _parse_name(sensor: str, path: str) -> dict | None:
    if sensor == "abi":
        from app.data.geo_abi import parse_abi_name

        return parse_abi_name(path)
    if sensor == "ahi":
        from app.data.geo_ahi import parse_hsd_name

        return parse_hsd_name(path)
    return {}  # SEVIRI, FCI: every file holds every channel


def _whole_disk_channels(sensor: str) -> tuple[str, ...]:
    """The channels of a sensor whose every file holds all of them (SEVIRI; FCI once its bands are known)."""
    return generic_channels(sensor) if sensor in SENSOR_BANDS else ()


def _channel_of(sensor: str, info: dict) -> str | None:
    if sensor == "abi":
        from app.data.geo_abi import ABI_GENERIC

        return ABI_GENERIC.get(info["band"])
    from app.data.geo_ahi import AHI_GENERIC

    return AHI_GENERIC.get(info["band"])


def _group(pos: RingPosition, rows: pd.DataFrame, ctth: pd.DataFrame) -> list[Slot]:
    """The slots of some index rows of one platform (imager files) and the CTTH rows of the same platform."""
    cycle = f"{pos.repeat_minutes}min"
    tops: dict[pd.Timestamp, str] = {}
    for path, start in zip(ctth["path"], ctth["start"].dt.floor(cycle), strict=True):
        tops.setdefault(start, str(path))
    out = []
    for time, group in rows.groupby(rows["start"].dt.floor(cycle), sort=True):
        paths = sorted(str(p) for p in group["path"])
        missing = 0
        if pos.sensor in ("seviri", "fci"):
            channels = _whole_disk_channels(pos.sensor)
        else:
            segments: dict[str, set[int]] = {}
            totals: dict[str, int] = {}
            chosen: dict[tuple[str, int], str] = {}
            for path in paths:
                info = _parse_name(pos.sensor, path)
                channel = _channel_of(pos.sensor, info) if info else None
                if channel is None:
                    continue
                segment = info.get("segment", 1)
                # one file per band (and segment): the newest ABI file (its name sorts last by creation time);
                # a plain HSD .DAT before its .DAT.bz2 twin (it sorts first)
                if (channel, segment) not in chosen or pos.sensor == "abi":
                    chosen[(channel, segment)] = path
                segments.setdefault(channel, set()).add(segment)
                totals[channel] = info.get("total_segments", 1)
            paths = sorted(chosen.values())
            order = generic_channels(pos.sensor)
            channels = tuple(c for c in order if c in segments)
            missing = sum(totals[c] - len(segments[c]) for c in channels)
        out.append(Slot(pos.platform, pd.Timestamp(time), tuple(paths), tuple(channels), tops.get(time), missing))
    return out


def _slots(archive, pos: RingPosition, start=None, end=None) -> list[Slot]:
    cycle = pd.Timedelta(minutes=pos.repeat_minutes)
    t0 = None if start is None else _as_time(start)
    t1 = None if end is None else _as_time(end)
    q0 = None if t0 is None else t0 - cycle
    if q0 is not None and pos.product in archive.products() and _lister(archive, pos.product) is not None:
        q0 = t0  # a slot's files start at or after its time: the folders before t0 need no listing
    rows = _rows(archive, pos.product, pos.platform, q0, t1)
    ctth = _rows(archive, CLOUD_TOP_PRODUCT, pos.platform, q0, t1)
    found = _group(pos, rows, ctth)
    return [s for s in found if (t0 is None or s.time >= t0) and (t1 is None or s.time < t1)]


_SLOT_COLUMNS = ["platform", "time", "paths", "channels", "n_files", "cloud_top", "complete"]


def slots(archive, platform, start=None, end=None) -> pd.DataFrame:
    """The slots of a satellite whose nominal time is in [start, end), one row per slot, in time order.

    ``archive``: an :class:`app.data.archive.Archive`, or a catalogue (name, path, None for the default).
    ``platform``: ``G16``, ``GOES-16``, or a position name (``GOES-East``: the slots of each satellite that held
    the position, within the time it held it). Columns: ``platform``, ``time``
    (nominal slot start, UTC), ``paths`` (the imager's files of the slot, a list), ``channels`` (the generic
    channels present, a tuple), ``n_files``, ``cloud_top`` (the CTTH file, or None), ``complete`` (no HSD segment
    missing).
    """
    arch = _archive(archive)
    found = [s for pos, t0, t1 in _spans(arch, platform, start, end) for s in _slots(arch, pos, t0, t1)]
    found.sort(key=lambda s: s.time)
    table = pd.DataFrame(
        {
            "platform": [s.platform for s in found],
            "time": pd.to_datetime([s.time for s in found]).astype("datetime64[ns]"),
            "paths": [list(s.paths) for s in found],
            "channels": [s.channels for s in found],
            "n_files": [len(s.paths) for s in found],
            "cloud_top": [s.cloud_top for s in found],
            "complete": [s.complete for s in found],
        },
        columns=_SLOT_COLUMNS,
    )
    return table


def days(archive, platform) -> list[np.datetime64]:
    """The days (UTC) on which a satellite (or, for a position name, whoever held the position) has slots."""
    arch = _archive(archive)
    out: set = set()
    for pos, t0, t1 in _spans(arch, platform):
        lister = _lister(arch, pos.product, pos.platform) if pos.product in arch.products() else None
        if lister is not None:  # the folder names (year, month, day), no file listing
            found = lister.days(folder_id(arch, pos.product, pos.platform), pos.platform)
            out |= {np.datetime64(d, "D") for d in found
                    if (t0 is None or d + pd.Timedelta(days=1) > t0) and (t1 is None or d < t1)}
            continue
        rows = _rows(arch, pos.product, pos.platform, t0, t1)
        starts = rows["start"]
        if t0 is not None:
            starts = starts[starts >= t0]
        if t1 is not None:
            starts = starts[starts < t1]
        out |= {np.datetime64(d, "D") for d in starts.dt.floor("D")}
    return sorted(out)


def latest_slot(archive, platform, now=None) -> Slot | None:
    """The latest slot of a satellite at or before ``now`` (default: the latest in the archive), or None.

    A position name means the satellite that held it at ``now`` (without ``now``: its latest holder with files).
    """
    arch = _archive(archive)
    t = None if now is None else _as_time(now)
    try:
        pos = ring_position(platform, t, arch)
    except MissingSlotError:  # a position nobody we read held then
        return None
    # a slot's files start a little after its nominal time: look one cycle beyond, keep the slots at or before t
    end = None if t is None else t + pd.Timedelta(minutes=pos.repeat_minutes)
    lister = _lister(arch, pos.product, pos.platform) if pos.product in arch.products() else None
    if lister is not None:  # newest folders first, from t back: only the folders of the latest files are listed
        cycle = pd.Timedelta(minutes=pos.repeat_minutes)
        before = None if t is None else t.floor(cycle) + cycle
        last = lister.latest_start(folder_id(arch, pos.product, pos.platform), pos.platform, before)
        if last is None:
            return None
        last = last.floor(cycle)
        found = _slots(arch, pos, last, last + cycle)
        return found[-1] if found else None
    rows = _rows(arch, pos.product, pos.platform, None, end)
    if rows.empty:
        return None
    cycle = f"{pos.repeat_minutes}min"
    times = rows["start"].dt.floor(cycle)
    if t is not None:
        times = times[times <= t]
    if times.empty:
        return None
    last = times.max()
    found = _slots(arch, pos, last, last + pd.Timedelta(minutes=pos.repeat_minutes))
    return found[-1] if found else None


#: A ring satellite whose latest slot is older than this (before "now") is flagged as stale.
STALE_AFTER = pd.Timedelta(hours=1)


def _newest_slot_time(arch) -> pd.Timestamp | None:
    """The newest slot of any platform of the archive (its "now")."""
    c = constellation(arch)
    newest = None
    for product in dict.fromkeys(IMAGER_PRODUCTS.values()):
        if product not in arch.products():
            continue
        try:
            keys = _platforms_with_files(arch, product)
        except GranuleError as exc:  # a source that cannot be listed: said once, the others give the time
            say_once(f"ring {arch.catalog_source} {product}", f"the ring's latest slots: {exc}", log)
            continue
        for key in keys:
            try:
                c.platform(str(key))
            except UserInputError:
                continue
            slot = _latest_or_none(arch, str(key), product)
            if slot is not None and (newest is None or slot.time > newest):
                newest = slot.time
    return newest


def _latest_or_none(arch, platform: str, product: str) -> Slot | None:
    """:func:`latest_slot`, a source that cannot be listed said once in the log and taken as no slot."""
    try:
        return latest_slot(arch, platform)
    except GranuleError as exc:
        say_once(f"ring {arch.catalog_source} {product}", f"the ring's latest slots: {exc}", log)
        return None


def _platforms_with_files(arch, product: str) -> list[str]:
    """The platform ids that have files of a product (partitions: the platform folders, no file listing)."""
    lister = _lister(arch, product)
    if lister is None:
        return [str(k) for k in arch.granules(product)["platform"].dropna().unique()]
    folders = lister.platform_folders()
    if folders is None:  # one platform per root (NOAA's buckets): the platforms of the newest files
        last = lister.latest_start("", None, None)
        if last is None:
            return []
        return sorted(set(lister.rows("", None, last.floor("D"), last + pd.Timedelta(seconds=1))["platform"]))
    c = constellation(arch)
    out = []
    for name in folders:
        key = next((str(e.get("platform") or k) for k, e in arch.product_info(product).platforms.items()
                    if str(k) == name and isinstance(e, dict)), None)
        if key is None:
            try:
                key = c.platform(name).key
            except UserInputError:
                continue
        out.append(key)
    return out


def ring_latest(archive, now=None, stale_after=STALE_AFTER) -> pd.DataFrame:
    """The latest slot of every ring position at or before ``now``, and whether it is stale.

    The ring is the one of ``now`` (:func:`ring_at`): each position shows the satellite holding it then.
    ``now`` defaults to the newest slot of any satellite (the archive's "now"; for a live archive, pass the
    clock). A satellite is ``stale`` when its latest slot is older than ``now − stale_after``, or it has none.
    Columns: ``name``, ``platform`` (``""`` when nobody we read held the position), ``satellite``, ``sub_lon``,
    ``sensor``, ``time`` (NaT if none), ``age``, ``stale``, ``paths``, ``channels``, ``cloud_top``, ``note`` (why
    a position has no satellite or no slot).
    """
    arch = _archive(archive)
    t = _newest_slot_time(arch) if now is None else _as_time(now)
    ring = ring_at(t, arch)
    latest, problems = {}, {}
    for pos in ring:
        try:
            latest[pos.platform] = latest_slot(arch, pos, t) if pos.platform else None
        except GranuleError as exc:  # one source that cannot be listed: that position says why, the rest served
            say_once(f"ring {arch.catalog_source} {pos.product}", f"the ring's latest slots: {exc}", log)
            latest[pos.platform], problems[pos.platform] = None, str(exc)
    stale_after = pd.Timedelta(stale_after)
    rows = []
    for pos in ring:
        s = latest[pos.platform]
        age = (t - s.time) if (s is not None and t is not None) else pd.NaT
        if not pos.platform:
            note = pos.satellite
        elif pos.platform in problems:
            note = problems[pos.platform]
        elif s is None:
            note = f"the archive has no {pos.satellite} slot" + (f" at or before {t:%Y-%m-%d %H:%M} UTC" if t else "")
        else:
            note = ""
        rows.append({
            "name": pos.name, "platform": pos.platform, "satellite": pos.satellite if pos.platform else "",
            "sub_lon": pos.sub_lon, "sensor": pos.sensor, "time": s.time if s else pd.NaT, "age": age,
            "stale": s is None or bool(age > stale_after),
            "paths": list(s.paths) if s else [], "channels": s.channels if s else (),
            "cloud_top": s.cloud_top if s else None, "note": note,
        })
    table = pd.DataFrame(rows)
    table["time"] = pd.to_datetime(table["time"]).astype("datetime64[ns]")
    table["age"] = pd.Series([r["age"] for r in rows], dtype="timedelta64[ns]", index=table.index)
    return table


def _find_slot(archive, pos: RingPosition, time) -> Slot:
    t = _as_time(time).floor("min")
    found = _slots(archive, pos, t, t + pd.Timedelta(minutes=1))
    if found:
        return found[0]
    nearest = _nearest(archive, pos, t)
    text = f"no {pos.satellite} slot at {t:%Y-%m-%d %H:%M} UTC"
    if nearest is None:
        if pos.product not in archive.products():
            text += f": the catalogue has no {pos.product} product"
        else:
            text += f": the archive has no {pos.satellite}{_held(pos, archive)} slot at all"
    else:
        text += f"; nearest: {_when(nearest, t)}"
    raise MissingSlotError(text, pos.platform, t, nearest)


def _nearest(archive, pos: RingPosition, t: pd.Timestamp) -> pd.Timestamp | None:
    if pos.product in archive.products() and _lister(archive, pos.product, pos.platform) is not None:
        return _nearest_start(archive, pos.product, pos.platform, t, f"{pos.repeat_minutes}min")
    for days_around in (1, 7, None):
        if days_around is None:
            rows = _rows(archive, pos.product, pos.platform)
        else:
            span = pd.Timedelta(days=days_around)
            rows = _rows(archive, pos.product, pos.platform, t - span, t + span)
        if not rows.empty:
            times = rows["start"].dt.floor(f"{pos.repeat_minutes}min").drop_duplicates()
            return pd.Timestamp(times.iloc[int(np.argmin(np.abs((times - t).to_numpy())))])
    return None


# --- reads, cached per process ---------------------------------------------------------------------------------

#: Decoded channels and cloud tops of this process: a quarter of the memory budget (app.core.cache).
_CACHE = bounded_cache("geo-channels", 0.25)
#: Identical reads asked for at the same time (an animation and the API on the same slot) are done once.
_READS = SingleFlight()


def clear_cache() -> None:
    """Forget every cached read of this process."""
    _CACHE.clear()


def _stamp(path: str) -> tuple[str, str, int]:
    """What identifies a file's content: ``(url, version, size)`` from :func:`app.data.storage.stamp`.

    The version is the modification time of a local file, the ETag of an object; a file that cannot be examined
    gets an empty version (the reader says what is wrong with it).
    """
    try:
        return storage.stamp(path)
    except GranuleError:
        return (str(path), "", -1)


def reader_of(archive, product: str):
    """The reader function of ``product``: the catalogue entry's ``reader:`` key, looked up in the registry.

    Each holds HDF_LOCK while inside netCDF-C/HDF5 (HSD segments need none).
    """
    return reader_for(_archive(archive).product_info(product).reader)


def _read(reader, paths: tuple[str, ...], channels: list[str]) -> xr.Dataset:
    return reader(list(paths), channels)


def _files_of(sensor: str, paths: tuple[str, ...], channels: list[str]) -> list[str]:
    """The files of a slot that hold ``channels`` (ABI: one per band; HSD: the band's segments; else all)."""
    if sensor not in ("abi", "ahi"):
        return list(paths)
    out = []
    for path in paths:
        info = _parse_name(sensor, path)
        if info and _channel_of(sensor, info) in channels:
            out.append(path)
    return out or list(paths)


def _as_granule_error(exc: Exception, sensor: str, paths: tuple[str, ...], channels: list[str]) -> GranuleError:
    """What a reader raised, as a GranuleError naming the file (the first of the channels' files) and the reason."""
    if isinstance(exc, GranuleError):
        return exc
    files = _files_of(sensor, paths, channels)
    log.warning("the %s reader failed on %s (%s): %s", sensor, files[0], ", ".join(channels), exc, exc_info=exc)
    text = str(exc).strip() or "no message"
    return GranuleError(files[0], f"cannot be read: {type(exc).__name__}: {text}")


def _read_guarded(reader, sensor: str, paths: tuple[str, ...], channels: list[str]) -> xr.Dataset:
    """:func:`_read`, whatever the reader raises on a file turned into a GranuleError naming it."""
    try:
        return _read(reader, paths, channels)
    except GranuleError:
        raise
    except (UserInputError, CatalogError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a reader on a file is that file's, said with its name
        raise _as_granule_error(exc, sensor, paths, channels) from exc


def _read_channels(reader, sensor: str, paths: tuple[str, ...], channels: list[str], skip_damaged: bool
                   ) -> tuple[dict[str, xr.Dataset], list[GranuleError]]:
    """Each channel as a one-variable Dataset; with ``skip_damaged``, channels whose files fail are left out."""
    try:
        ds = _READS.do(("scene", sensor, paths, tuple(channels)),
                       lambda: _read_guarded(reader, sensor, paths, channels))
        return {c: ds[[c]] for c in channels}, []
    except GranuleError:
        if not skip_damaged or len(channels) < 2:
            raise
    got: dict[str, xr.Dataset] = {}
    failed: list[GranuleError] = []
    for c in channels:  # one at a time: a damaged file spoils only the channels it holds
        try:
            got[c] = _read_guarded(reader, sensor, paths, [c])[[c]]
        except GranuleError as exc:
            failed.append(exc)
    if not got:
        raise failed[0]
    return got, failed


def slot_stamp(archive, platform, time) -> tuple:
    """What identifies the data of a slot: each file's URL, version (mtime or ETag) and size (imager files, CTTH).

    Empty when there is no slot at ``time``. A picture made from the slot is the same as long as this is (the
    API's PNG cache and ETags are keyed by it).
    """
    arch = _archive(archive)
    t = _as_time(time).floor("min")
    try:
        pos = ring_position(platform, t, arch)
    except MissingSlotError:
        return ()
    found = _slots(arch, pos, t, t + pd.Timedelta(minutes=1))
    if not found:
        return ()
    slot = found[0]
    paths = (*slot.paths, *(() if slot.cloud_top is None else (slot.cloud_top,)))
    return tuple(_stamp(p) for p in paths)


def _check_channels(pos: RingPosition, channels: Iterable[str]) -> list[str]:
    names = [channels] if isinstance(channels, str) else list(dict.fromkeys(channels))
    have = generic_channels(pos.sensor)
    unknown = [c for c in names if c not in have]
    if unknown:
        raise UserInputError(f"{pos.satellite} ({pos.sensor.upper()}) has no channel {', '.join(map(repr, unknown))}; "
                             f"its channels are {', '.join(have)}")
    return names


def read_scene(archive, platform, time, channels: Iterable[str] | None = None,
               skip_damaged: bool = False) -> xr.Dataset:
    """The slot of a satellite at ``time`` as a canonical GeoScene (see ``docs/architecture.md``).

    ``time``: the slot's nominal time (to the minute, UTC). ``channels``: generic names (``ir_105``, ``vis_06``
    …); None gives every channel of the slot (SEVIRI: the eleven VIS/IR channels, ``hrv`` on request). No slot
    at that time raises :class:`MissingSlotError` (a :class:`UserInputError`: "no GOES-16 slot at 2021-04-12
    15:10 UTC; nearest: 15:00"); a channel the sensor lacks, :class:`UserInputError`; a channel with no file in
    the slot, or a damaged file, :class:`~app.data.errors.GranuleError` naming the file — unless
    ``skip_damaged``: then the channels whose files cannot be read are left out (if any other can be read) and
    listed in ``attrs['damaged']`` (``[{"channel", "path", "problem"}]``). Whatever a reader raises on a file
    counts as damage (a GranuleError naming the file and the reason). Attrs are the reader's, plus
    ``ring_position`` (the position the satellite held at ``time``; ``""`` if none) and ``slot_time``.
    """
    arch = _archive(archive)
    pos = ring_position(platform, _as_time(time), arch)
    slot = _find_slot(arch, pos, time)
    if channels is None:
        wanted = [c for c in slot.channels if not (pos.sensor == "seviri" and c == "hrv")]
    else:
        wanted = _check_channels(pos, channels)
        absent = [c for c in wanted if c not in slot.channels]
        if absent:
            raise MissingChannelError(f"the {pos.satellite} slot at {slot.time:%Y-%m-%d %H:%M} UTC has no file of "
                                      f"channel {', '.join(absent)}; its channels are {', '.join(slot.channels)}")
    stamps = tuple(_stamp(p) for p in slot.paths)
    keys = {c: ("scene", pos.sensor, stamps, c) for c in wanted}
    have = {c: _CACHE.get(k) for c, k in keys.items()}
    missing = [c for c, v in have.items() if v is None]
    damaged: list[dict] = []
    if missing:
        got, failed = _read_channels(reader_of(arch, pos.product), pos.sensor, slot.paths, missing, skip_damaged)
        for c, one in got.items():
            one[c].values.flags.writeable = False  # shared by every caller: never changed in place
            _CACHE.put(keys[c], one, int(one[c].nbytes))
            have[c] = one
        for c, exc in zip([c for c in missing if c not in got], failed, strict=True):
            damaged.append({"channel": c, "path": exc.path, "problem": exc.problem})
    wanted = [c for c in wanted if have.get(c) is not None]
    parts = [have[c] for c in wanted]
    out = xr.Dataset({c: have[c][c] for c in wanted})
    attrs = dict(parts[0].attrs) if parts else {}
    sources = []
    for part in parts:
        src = part.attrs.get("source", [])
        for s in [src] if isinstance(src, str) else src:
            if s not in sources:
                sources.append(s)
    attrs["source"] = sources
    attrs["ring_position"] = pos.name
    attrs["slot_time"] = f"{slot.time:%Y-%m-%dT%H:%M:%S}Z"
    if damaged:
        attrs["damaged"] = damaged
    out.attrs = attrs
    return out


def _read_ctth(key: tuple, path: str, read_ctth) -> xr.Dataset:
    try:
        ds = read_ctth(path)
    except (GranuleError, UserInputError, CatalogError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the reader on the file is that file's, said with its name
        log.warning("the NWC SAF reader failed on %s: %s", path, exc, exc_info=exc)
        raise GranuleError(path, f"cannot be read: {type(exc).__name__}: {str(exc).strip() or 'no message'}") from exc
    for v in ds.data_vars.values():
        v.values.flags.writeable = False
    _CACHE.put(key, ds, int(sum(v.nbytes for v in ds.data_vars.values())))
    return ds


def read_cloud_top(archive, platform, time) -> xr.Dataset:
    """The NWC SAF CTTH of a satellite's slot at ``time`` as a canonical CloudTop.

    Height (m), temperature (K), pressure (hPa), effective cloudiness, on the imager's grid. No slot, or a slot
    without CTTH, raises :class:`MissingSlotError`; a file the reader fails on (whatever it raises), a
    :class:`~app.data.errors.GranuleError` naming it and the reason.
    """
    arch = _archive(archive)
    t = _as_time(time).floor("min")
    pos = ring_position(platform, t, arch)
    found = _slots(arch, pos, t, t + pd.Timedelta(minutes=1))
    path = found[0].cloud_top if found else None
    if path is None:
        cycle = f"{pos.repeat_minutes}min"
        lister = _lister(arch, CLOUD_TOP_PRODUCT, pos.platform) if CLOUD_TOP_PRODUCT in arch.products() else None
        nearest = None
        times = pd.Series([], dtype="datetime64[ns]")
        if lister is not None:
            nearest = _nearest_start(arch, CLOUD_TOP_PRODUCT, pos.platform, t, cycle)
        else:
            times = _rows(arch, CLOUD_TOP_PRODUCT, pos.platform)["start"].dt.floor(cycle)
        if not times.empty:
            nearest = pd.Timestamp(times.iloc[int(np.argmin(np.abs((times - t).to_numpy())))])
        text = f"no NWC SAF cloud top (CTTH) of {pos.satellite} at {t:%Y-%m-%d %H:%M} UTC"
        text += f"; nearest: {_when(nearest, t)}" if nearest is not None else ": none in the archive"
        raise MissingSlotError(text, pos.platform, t, nearest)
    key = ("ctth", _stamp(path))
    ds = _CACHE.get(key)
    if ds is None:
        ds = _READS.do(key, lambda: _read_ctth(key, path, reader_of(arch, CLOUD_TOP_PRODUCT)))
    out = ds.copy()
    out.attrs = {**ds.attrs, "ring_position": pos.name, "slot_time": f"{t:%Y-%m-%dT%H:%M:%S}Z"}
    return out
