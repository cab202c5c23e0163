"""Geostationary imagery as the views see it: the ring, the slots of each satellite, scenes and cloud tops.

The one entry the GEO views use. Nothing here knows a file format: the granule index (one row per file) says
which files exist, this module groups them into **slots** (one full-disk scan of one satellite: twelve ABI files,
one per band; an HSD file per band and segment; one SEVIRI file) and hands the files of a slot to the reader of
the satellite's sensor (:func:`app.data.geo_abi.read_abi`, :func:`app.data.geo_ahi.read_ahi`,
:func:`app.data.geo_seviri.read_seviri`; :func:`app.data.nwcsaf.read_ctth` for cloud tops).

- :data:`RING`: the five ring positions, west to east (GOES-West, GOES-East, Meteosat, Meteosat IODC, Himawari),
  each with its platform id as the index knows it (``G17``, ``G16``, ``MSG4``, ``MSG1``, ``H08``), satellite name,
  sub-satellite longitude, sensor and catalogue product.
- :func:`slots` (a table of the slots in a time range), :func:`latest_slot`, :func:`ring_latest` (the latest
  slot of every ring position, stale ones flagged), :func:`days`.
- :func:`read_scene` (a canonical GeoScene: generic channels, BT in K, reflectance in %) and
  :func:`read_cloud_top` (a canonical CloudTop); a slot that is not there raises :class:`MissingSlotError`,
  which names the nearest slot there is.

A slot's time is its nominal start (the repeat cycle it belongs to: 10 min for ABI and AHI, 15 min for SEVIRI).
Reads are cached per server process, per channel, keyed by each file's path, size and modification time (a file
written again is read again), in the byte-bounded cache ``geo-channels`` (a quarter of the process's memory budget,
:mod:`app.core.cache`); identical reads asked for at the same time are done once. The readers hold
:data:`app.core.locks.HDF_LOCK` while they are inside netCDF-C/HDF5 (HSD files are plain binary reads, unlocked).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from app.core.cache import SingleFlight, bounded_cache
from app.data.errors import GranuleError, UserInputError
from app.data.geo_bands import FULL_DISK, GEO_PLATFORMS, generic_channels

__all__ = [
    "RING",
    "RingPosition",
    "Slot",
    "MissingSlotError",
    "MissingChannelError",
    "IMAGER_PRODUCTS",
    "CLOUD_TOP_PRODUCT",
    "ring_position",
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

#: The catalogue product of each sensor's imager files, and of the NWC SAF cloud tops.
IMAGER_PRODUCTS = {"abi": "geo_abi_l1b", "ahi": "geo_ahi_hsd", "seviri": "geo_seviri_nc"}
CLOUD_TOP_PRODUCT = "nwcsaf_ctth"


@dataclass(frozen=True)
class RingPosition:
    """One position of the geostationary ring."""

    name: str  # GOES-West
    platform: str  # G17: the platform id of the index and of the sample archive's folders
    satellite: str  # GOES-17
    sub_lon: float  # degrees east, as in 2021
    sensor: str  # abi, ahi, seviri
    product: str  # the catalogue product of its imager files

    @property
    def repeat_minutes(self) -> int:
        """The full-disk repeat cycle: 10 min (ABI mode 6, AHI) or 15 min (SEVIRI)."""
        return FULL_DISK[self.sensor].repeat_minutes


def _position(name: str, key: str) -> RingPosition:
    p = GEO_PLATFORMS[key]
    return RingPosition(name, key, p.name, p.sub_lon, p.sensor, IMAGER_PRODUCTS[p.sensor])


#: The ring, west to east (2021 positions: Meteosat-8 served the Indian Ocean from 41.5° E until 2022).
RING: tuple[RingPosition, ...] = (
    _position("GOES-West", "G17"),
    _position("GOES-East", "G16"),
    _position("Meteosat", "MSG4"),
    _position("Meteosat IODC", "MSG1"),
    _position("Himawari", "H08"),
)


def ring_position(platform: str | RingPosition) -> RingPosition:
    """The ring position of a platform id (``G16``), satellite (``GOES-16``) or position name (``GOES-East``)."""
    if isinstance(platform, RingPosition):
        return platform
    text = str(platform).strip().lower()
    for pos in RING:
        if text in (pos.platform.lower(), pos.satellite.lower(), pos.name.lower()):
            return pos
    known = ", ".join(f"{p.platform} ({p.satellite}, {p.name})" for p in RING)
    raise UserInputError(f"unknown geostationary satellite {platform!r}; the ring has {known}")


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


def _rows(archive, product: str, platform: str, start=None, end=None) -> pd.DataFrame:
    rows = archive.granules(product, start, end)
    return rows[rows["platform"] == platform]


def _parse_name(sensor: str, path: str) -> dict | None:
    if sensor == "abi":
        from app.data.geo_abi import parse_abi_name

        return parse_abi_name(path)
    if sensor == "ahi":
        from app.data.geo_ahi import parse_hsd_name

        return parse_hsd_name(path)
    return {}


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
        if pos.sensor == "seviri":
            channels = generic_channels("seviri")
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
    rows = _rows(archive, pos.product, pos.platform, q0, t1)
    ctth = _rows(archive, CLOUD_TOP_PRODUCT, pos.platform, q0, t1)
    found = _group(pos, rows, ctth)
    return [s for s in found if (t0 is None or s.time >= t0) and (t1 is None or s.time < t1)]


_SLOT_COLUMNS = ["platform", "time", "paths", "channels", "n_files", "cloud_top", "complete"]


def slots(archive, platform, start=None, end=None) -> pd.DataFrame:
    """The slots of a satellite whose nominal time is in [start, end), one row per slot, in time order.

    ``archive``: an :class:`app.data.archive.Archive`, or a catalogue (name, path, None for the default).
    ``platform``: ``G16``, ``GOES-16`` or ``GOES-East`` (see :data:`RING`). Columns: ``platform``, ``time``
    (nominal slot start, UTC), ``paths`` (the imager's files of the slot, a list), ``channels`` (the generic
    channels present, a tuple), ``n_files``, ``cloud_top`` (the CTTH file, or None), ``complete`` (no HSD segment
    missing).
    """
    pos = ring_position(platform)
    found = _slots(_archive(archive), pos, start, end)
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
    """The days (UTC) on which a satellite has slots."""
    pos = ring_position(platform)
    rows = _rows(_archive(archive), pos.product, pos.platform)
    return sorted({np.datetime64(d, "D") for d in rows["start"].dt.floor("D")})


def latest_slot(archive, platform, now=None) -> Slot | None:
    """The latest slot of a satellite at or before ``now`` (default: the latest in the archive), or None."""
    pos = ring_position(platform)
    arch = _archive(archive)
    t = None if now is None else _as_time(now)
    rows = _rows(arch, pos.product, pos.platform, None, None if t is None else t + pd.Timedelta(seconds=1))
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


def ring_latest(archive, now=None, stale_after=STALE_AFTER) -> pd.DataFrame:
    """The latest slot of every ring position at or before ``now``, and whether it is stale.

    ``now`` defaults to the newest slot of any ring satellite (the archive's "now"; for a live archive, pass the
    clock). A satellite is ``stale`` when its latest slot is older than ``now − stale_after``, or it has none.
    Columns: ``name``, ``platform``, ``satellite``, ``sub_lon``, ``sensor``, ``time`` (NaT if none), ``age``,
    ``stale``, ``paths``, ``channels``, ``cloud_top``.
    """
    arch = _archive(archive)
    t = None if now is None else _as_time(now)
    latest = {pos.platform: latest_slot(arch, pos, t) for pos in RING}
    if t is None:
        times = [s.time for s in latest.values() if s is not None]
        t = max(times) if times else None
    stale_after = pd.Timedelta(stale_after)
    rows = []
    for pos in RING:
        s = latest[pos.platform]
        age = (t - s.time) if (s is not None and t is not None) else pd.NaT
        rows.append({
            "name": pos.name, "platform": pos.platform, "satellite": pos.satellite, "sub_lon": pos.sub_lon,
            "sensor": pos.sensor, "time": s.time if s else pd.NaT, "age": age,
            "stale": s is None or bool(age > stale_after),
            "paths": list(s.paths) if s else [], "channels": s.channels if s else (),
            "cloud_top": s.cloud_top if s else None,
        })
    table = pd.DataFrame(rows)
    table["time"] = pd.to_datetime(table["time"]).astype("datetime64[ns]")
    table["age"] = pd.to_timedelta(table["age"])
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
            text += f": the archive has no {pos.satellite} ({pos.name}) slot at all"
    else:
        text += f"; nearest: {_when(nearest, t)}"
    raise MissingSlotError(text, pos.platform, t, nearest)


def _nearest(archive, pos: RingPosition, t: pd.Timestamp) -> pd.Timestamp | None:
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


def _stamp(path: str) -> tuple[str, float, int]:
    try:
        st = os.stat(path)
    except OSError:  # the reader says what is wrong with it
        return (str(path), float("nan"), -1)
    return (str(path), st.st_mtime, st.st_size)


def _read(sensor: str, paths: tuple[str, ...], channels: list[str]) -> xr.Dataset:
    """The reader of the sensor (each holds HDF_LOCK while inside netCDF-C/HDF5; HSD needs no lock)."""
    if sensor == "ahi":
        from app.data.geo_ahi import read_ahi

        return read_ahi(paths, channels)
    if sensor == "abi":
        from app.data.geo_abi import read_abi

        return read_abi(paths, channels)
    from app.data.geo_seviri import read_seviri

    return read_seviri(paths[0], channels)


def _read_channels(sensor: str, paths: tuple[str, ...], channels: list[str], skip_damaged: bool
                   ) -> tuple[dict[str, xr.Dataset], list[GranuleError]]:
    """Each channel as a one-variable Dataset; with ``skip_damaged``, channels whose files fail are left out."""
    try:
        ds = _READS.do(("scene", sensor, paths, tuple(channels)), lambda: _read(sensor, paths, channels))
        return {c: ds[[c]] for c in channels}, []
    except GranuleError:
        if not skip_damaged or len(channels) < 2:
            raise
    got: dict[str, xr.Dataset] = {}
    failed: list[GranuleError] = []
    for c in channels:  # one at a time: a damaged file spoils only the channels it holds
        try:
            got[c] = _read(sensor, paths, [c])[[c]]
        except GranuleError as exc:
            failed.append(exc)
    if not got:
        raise failed[0]
    return got, failed


def slot_stamp(archive, platform, time) -> tuple:
    """What identifies the data of a slot: each file's path, modification time and size (imager files and CTTH).

    Empty when there is no slot at ``time``. A picture made from the slot is the same as long as this is (the
    API's PNG cache and ETags are keyed by it).
    """
    pos = ring_position(platform)
    t = _as_time(time).floor("min")
    found = _slots(_archive(archive), pos, t, t + pd.Timedelta(minutes=1))
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
    listed in ``attrs['damaged']`` (``[{"channel", "path", "problem"}]``). Attrs are the reader's, plus
    ``ring_position`` and ``slot_time``.
    """
    pos = ring_position(platform)
    slot = _find_slot(_archive(archive), pos, time)
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
        got, failed = _read_channels(pos.sensor, slot.paths, missing, skip_damaged)
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


def _read_ctth(key: tuple, path: str) -> xr.Dataset:
    from app.data.nwcsaf import read_ctth  # holds HDF_LOCK while in netCDF-C

    ds = read_ctth(path)
    for v in ds.data_vars.values():
        v.values.flags.writeable = False
    _CACHE.put(key, ds, int(sum(v.nbytes for v in ds.data_vars.values())))
    return ds


def read_cloud_top(archive, platform, time) -> xr.Dataset:
    """The NWC SAF CTTH of a satellite's slot at ``time`` as a canonical CloudTop.

    Height (m), temperature (K), pressure (hPa), effective cloudiness, on the imager's grid. No slot, or a slot
    without CTTH, raises :class:`MissingSlotError`.
    """
    pos = ring_position(platform)
    arch = _archive(archive)
    t = _as_time(time).floor("min")
    found = _slots(arch, pos, t, t + pd.Timedelta(minutes=1))
    path = found[0].cloud_top if found else None
    if path is None:
        rows = _rows(arch, CLOUD_TOP_PRODUCT, pos.platform)
        times = rows["start"].dt.floor(f"{pos.repeat_minutes}min")
        nearest = None
        if not times.empty:
            nearest = pd.Timestamp(times.iloc[int(np.argmin(np.abs((times - t).to_numpy())))])
        text = f"no NWC SAF cloud top (CTTH) of {pos.satellite} at {t:%Y-%m-%d %H:%M} UTC"
        text += f"; nearest: {_when(nearest, t)}" if nearest is not None else ": none in the archive"
        raise MissingSlotError(text, pos.platform, t, nearest)
    key = ("ctth", _stamp(path))
    ds = _CACHE.get(key)
    if ds is None:
        ds = _READS.do(key, lambda: _read_ctth(key, path))
    out = ds.copy()
    out.attrs = {**ds.attrs, "ring_position": pos.name, "slot_time": f"{t:%Y-%m-%dT%H:%M:%S}Z"}
    return out
