"""The granule index: one row per file, so that every query skips the files that cannot matter without opening them.

A row holds what the file name says (product, platform, orbit, start, end, ...) and what cheap reads of the file
say: the latitude/longitude bounds and the **footprint**, the set of 5°×5° lat/lon cells the granule touches,
packed as a 2592-bit mask (324 bytes). A whole daylit orbit's bounding box is nearly the whole globe, so the
footprint, not the box, is what makes a zone query selective.

The footprint comes from strided reads of the geolocation (every ``stride``-th scanline and ground pixel, plus the
swath edges), each sample widened by half the distance to its neighbours so that the cells between samples are
not missed. Files with few scanlines are read whole (the stride shrinks so that at least ~256 samples lie along
the track and ~32 across it).

Remote archives (any fsspec URL; options from the catalogue through :mod:`app.data.storage`) are never downloaded
to be indexed: a remote TROPOMI granule's footprint comes from its own outline, the GML ``posList`` of
``METADATA/EOP_METADATA`` (:func:`outline_footprint`: a few byte ranges, under 1 % of a real granule), and the
strided read only when a file has no outline; CALIOP (HDF4: pyhdf needs a path) is read from a copy kept in the
per-user cache. Listings are fresh at each refresh (the file system's listing cache is dropped). A product with a
``partition`` layout can be refreshed by its newest folders only (:meth:`GranuleIndex.refresh_recent`, for the
live products of :class:`app.data.archive.Archive`).

The index is a Parquet file in the user's state folder, keyed by the archive (:func:`index_path`; never inside
the archive, which may be read-only and shared; an old ``.fumarole-index.parquet`` left in an archive is ignored),
refreshed incrementally: only files that are new, or whose size or modification time changed, are read; vanished
files are dropped; files that cannot be read (damaged, badly named, a symbolic link out of the archive or to
nothing) are skipped and reported with their name relative to the archive root (:class:`IndexReport`), never
abort the build. A state folder that cannot be written is said once; the index then lives in memory.

Every HDF5 (h5netcdf) and HDF4 read holds :data:`app.core.locks.HDF_LOCK`; a damaged or unreachable file is a
GranuleError.

Queries are pure pandas/numpy on the in-memory table (:meth:`GranuleIndex.query`,
:meth:`GranuleIndex.orbits_for_day`).

Geostationary full disks (GOES ABI, Himawari AHI, Meteosat SEVIRI, NWC SAF GEO products) are not read at all: the
file name gives the platform and the slot, and the footprint is the platform's disk (the cells within
:data:`GEO_DISK_RADIUS_DEG` of the sub-satellite point, :func:`geo_disk`). A slot of ABI (one file per band) or
HSD (one per band and segment) is several rows; :mod:`app.data.geo` groups them into slots.

Adding a product: register its file-name pattern in :mod:`app.data.filenames` and one geolocation function here
with :func:`register_geolocator` (it returns a :class:`Geolocation` of sampled latitudes/longitudes).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import fsspec
import numpy as np
import pandas as pd

from app.core.locks import HDF_LOCK
from app.core.lonlat import wrap_lon
from app.core.state import archive_state_dir, write_state
from app.data import storage
from app.data.errors import GranuleError, UserInputError
from app.data.filenames import PATTERNS, FilenamePattern
from app.data.geo_slots import listing_reason

__all__ = [
    "CELL_DEG",
    "COLUMNS",
    "GEOLOCATORS",
    "GEO_DISK_RADIUS_DEG",
    "INDEX_FILENAME",
    "LEGACY_INDEX_FILENAME",
    "GranuleIndex",
    "Geolocation",
    "IndexReport",
    "bbox_cells",
    "footprint_cells",
    "geo_disk",
    "index_path",
    "open_index",
    "pack_cells",
    "register_geolocator",
    "relative_name",
    "unpack_cells",
    "without_root",
]

logger = logging.getLogger(__name__)

#: The index's file name in the archive's state folder (:func:`index_path`).
INDEX_FILENAME = "index.parquet"
#: Where older versions kept the index, inside the archive: ignored now (never read, written or deleted).
LEGACY_INDEX_FILENAME = ".fumarole-index.parquet"
INDEX_VERSION = "1"
CELL_DEG = 5.0
N_LAT = int(180 / CELL_DEG)  # 36 rows, from -90
N_LON = int(360 / CELL_DEG)  # 72 columns, from -180
N_CELLS = N_LAT * N_LON  # 2592
FOOTPRINT_BYTES = N_CELLS // 8  # 324

COLUMNS = [
    "path",
    "product",
    "platform",
    "orbit",
    "start",
    "end",
    "lat_min",
    "lat_max",
    "lon_min",
    "lon_max",
    "crosses_antimeridian",
    "footprint",
    "size",
    "mtime",
    "mode",
    "collection",
    "processor",
    "day_night",
]
_INT_COLUMNS = ("orbit", "collection", "processor")
_STR_COLUMNS = ("path", "product", "platform", "mode", "day_night")


# --- geolocation readers (one per product) -------------------------------------------------------------------


@dataclass
class Geolocation:
    """Sampled geolocation of a granule, and what else the file says cheaply.

    ``latitude``/``longitude`` are 2-D samples (along track × across track; a lidar track is ``(n, 1)``), in
    degrees, NaN where missing. ``start``/``end`` (naive UTC) and ``orbit`` fill in what the file name lacks;
    ``duration_s`` gives the end from the start when the file only holds relative times. ``platform`` replaces
    the platform of the file name, ``footprint`` (a boolean mask of the 2592 cells) the footprint the index would
    compute from the samples.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    duration_s: float | None = None
    orbit: int | None = None
    platform: str | None = None  # overrides the file name's (e.g. NWC SAF's GOES16 -> our G16)
    footprint: np.ndarray | None = None  # the 2592-cell mask, when the geolocator knows it better than samples


#: product id -> function(local path, stride) -> Geolocation.
GEOLOCATORS: dict[str, Callable[[str, int], Geolocation]] = {}


def register_geolocator(product: str, reads_file: bool = True, needs_local_path: bool = False):
    """Decorator: register the geolocation reader of a product for the index.

    ``reads_file=False`` says the function needs only the file's name (e.g. a geostationary full disk, whose
    footprint is the satellite's disk). The index passes the path or URL as listed, except to a reader that
    ``needs_local_path`` (a library that cannot read a file object, e.g. pyhdf): it gets a local copy of a remote
    file, kept in the per-user cache (:func:`app.data.storage.local_copy`).
    """

    def wrap(func):
        func.reads_file = reads_file
        func.needs_local_path = needs_local_path and reads_file
        GEOLOCATORS[product] = func
        return func

    return wrap


# Every netCDF4/HDF5 and HDF4 read of the index holds the one lock of the file libraries (app.core.locks.HDF_LOCK).


def _stride(n: int, stride: int, minimum_samples: int) -> int:
    return max(1, min(stride, n // minimum_samples))


def _sampled(var, shape: tuple[int, ...], row_stride: int, col_stride: int, decode=None) -> np.ndarray:
    """Every row_stride-th row and col_stride-th column of the last two dims of ``var``, plus the last ones.

    ``shape`` is the variable's shape; leading dims (e.g. TROPOMI's ``time`` = 1) take index 0. Works on h5netcdf
    variables and pyhdf SDS; ``decode`` (raw array -> float array with NaN for fill values) is applied to each read.
    """
    lead = (0,) * (len(shape) - 2)
    n_rows, n_cols = shape[-2:]
    rows = slice(None, None, row_stride)
    cols = slice(None, None, col_stride)
    extra_row = (n_rows - 1) % row_stride != 0
    extra_col = (n_cols - 1) % col_stride != 0

    def read(r, c):
        a = var[(*lead, r, c)]
        if decode is not None:
            a = decode(np.asarray(a))
        return np.ma.filled(np.ma.asarray(a, dtype=np.float64), np.nan).reshape(
            (len(range(n_rows)[r]), len(range(n_cols)[c]))
        )

    grid = read(rows, cols)
    if extra_col:
        grid = np.hstack([grid, read(rows, slice(n_cols - 1, n_cols))])
    if extra_row:
        last = read(slice(n_rows - 1, n_rows), cols)
        if extra_col:
            last = np.hstack([last, read(slice(n_rows - 1, n_rows), slice(n_cols - 1, n_cols))])
        grid = np.vstack([grid, last])
    return grid


def _tropomi_pixel_variables(path: str, ds) -> tuple:
    """PRODUCT/latitude and longitude of an open TROPOMI file, their dimensions and shapes checked (no data read)."""
    from app.data import tropomi

    if "PRODUCT" not in ds.groups:
        raise GranuleError(path, "has no PRODUCT group: not a TROPOMI L2 file")
    group = ds.groups["PRODUCT"]
    for name in ("latitude", "longitude"):
        if name not in group.variables:
            raise GranuleError(path, f"has no PRODUCT/{name} variable")
    lat_var, lon_var = group.variables["latitude"], group.variables["longitude"]
    for name, var in (("latitude", lat_var), ("longitude", lon_var)):
        tropomi.check_dimensions(path, var, f"PRODUCT/{name}")
        if var.ndim != 3 or var.shape != lat_var.shape:
            raise GranuleError(path, f"variable PRODUCT/{name} has shape {var.shape}, expected (1, scanline, "
                                     f"ground_pixel) like PRODUCT/latitude {lat_var.shape}")
    n_rows, n_cols = lat_var.shape[-2:]
    if n_rows == 0 or n_cols == 0:
        raise GranuleError(path, f"has no pixel (PRODUCT/latitude has shape {lat_var.shape})")
    return lat_var, lon_var


def _tropomi_orbit(ds) -> int | None:
    from app.data import tropomi

    orbit = tropomi.attr(ds, "orbit")
    return int(np.asarray(orbit).ravel()[0]) if orbit is not None else None


def tropomi_geolocation(path: str, stride: int = 16) -> Geolocation:
    """Sampled ``PRODUCT/latitude``/``longitude`` and the root ``orbit`` of a TROPOMI L2 file (netCDF-4).

    ``path`` is a local path or a URL (read by byte ranges). Read under :data:`~app.core.locks.HDF_LOCK`; anything
    wrong with the file is a GranuleError naming it.
    """
    from app.data import tropomi

    with tropomi.open_granule(path) as ds:  # holds HDF_LOCK; a netCDF/HDF5 or decoding failure -> GranuleError
        lat_var, lon_var = _tropomi_pixel_variables(path, ds)
        n_rows, n_cols = lat_var.shape[-2:]
        rs, cs = _stride(n_rows, stride, 256), _stride(n_cols, stride, 32)

        def decoder(var, where):
            return lambda raw: tropomi.decode(path, var, raw, where)  # fill values -> NaN

        lat = _sampled(lat_var, lat_var.shape, rs, cs, decoder(lat_var, "PRODUCT/latitude"))
        lon = _sampled(lon_var, lat_var.shape, rs, cs, decoder(lon_var, "PRODUCT/longitude"))
        orbit = _tropomi_orbit(ds)
    return Geolocation(lat, lon, orbit=orbit)


@register_geolocator("tropomi_so2")
def tropomi_outline_geolocation(path: str, stride: int = 16) -> Geolocation:
    """A remote TROPOMI granule's footprint from its own outline (the GML ``posList``) and root attributes.

    These are a few byte ranges of ``METADATA/EOP_METADATA`` and the root, not the pixels. A local file is read
    by :func:`tropomi_geolocation` (its strided pixels: cheap on a local disk, and exact for a file whose pixels
    cover only part of its outline).

    The outline ring, densified along great circles, gives the cells it crosses; the cells whose centres it
    encloses are added (a spherical winding number, so that a swath over a pole or across ±180° is right). A file
    without the outline falls back to the strided latitude/longitude read (:func:`tropomi_geolocation`).
    """
    from app.data import tropomi

    if not storage.is_remote(path):  # on a local disk the strided pixels are cheap, and exact for partial files
        return tropomi_geolocation(path, stride)
    with tropomi.open_granule(path) as ds:  # holds HDF_LOCK; a netCDF/HDF5 or decoding failure -> GranuleError
        _tropomi_pixel_variables(path, ds)  # a file whose pixels could not be read is not indexed
        ring = tropomi.footprint_of(ds)
        orbit = _tropomi_orbit(ds)
    if ring is None or len(ring) < 3 or not np.isfinite(ring).all():
        return tropomi_geolocation(path, stride)
    lat, lon, mask = outline_footprint(ring[:, 0], ring[:, 1])
    return Geolocation(lat, lon, orbit=orbit, footprint=mask)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _densified(v: np.ndarray, step_deg: float) -> np.ndarray:
    """The closed ring of unit vectors ``v`` with points every ``step_deg`` at most along each great-circle arc."""
    out = []
    for a, b in zip(v, np.roll(v, -1, axis=0), strict=True):
        angle = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
        n = max(1, int(np.ceil(np.degrees(angle) / step_deg)))
        if angle < 1e-9:
            out.append(a[None])
            continue
        t = np.arange(n)[:, None] / n
        out.append((np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle))
    return np.concatenate(out)


def _winding(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """How many times the closed ring (unit vectors) winds around each point (unit vectors).

    Both are projected stereographically from the point farthest from the ring (outside it: a swath is narrow,
    its outside wide), where a closed curve has a plain planar winding number.
    """
    i_far = int(np.argmin((points @ ring.T).max(axis=1)))  # the largest smallest angle to the ring
    far = points[i_far]

    def project(v):  # stereographic projection from ``far`` onto the plane through the origin
        e1 = np.cross(far, [1.0, 0.0, 0.0] if abs(far[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(far, e1)
        denom = np.maximum(1.0 - v @ far, 1e-12)
        return np.stack([(v @ e1) / denom, (v @ e2) / denom], axis=-1)

    p, r = project(points), project(ring)
    a = r[None] - p[:, None]
    b = np.roll(r, -1, axis=0)[None] - p[:, None]
    angles = np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0], (a * b).sum(-1))
    out = np.rint(angles.sum(axis=1) / (2 * np.pi)).astype(int)
    out[i_far] = 0  # the centre of projection itself is outside
    return out


def _cell_centres() -> tuple[np.ndarray, np.ndarray]:
    lat = -90.0 + CELL_DEG * (np.arange(N_LAT) + 0.5)
    lon = -180.0 + CELL_DEG * (np.arange(N_LON) + 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return la.ravel(), lo.ravel()


def outline_footprint(lat: np.ndarray, lon: np.ndarray, step_deg: float = 0.5
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples ``(n, 1)`` of an outline ring (lat, lon in degrees) and the mask of the 2592 cells it touches.

    The ring is densified along great circles (``step_deg``); the cells it crosses are marked as for a lidar track
    (:func:`footprint_cells`), and so are the cells whose centres lie inside it (:func:`_winding`: on a sphere
    "inside" is the narrow side of a swath's outline). A pole inside the ring adds a circle of samples at that
    pole, so the row's latitude and longitude bounds take it in.
    """
    v = _unit_vectors(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))
    keep = np.r_[True, np.linalg.norm(np.diff(v, axis=0), axis=1) > 1e-12]
    v = v[keep]
    if len(v) > 1 and np.linalg.norm(v[0] - v[-1]) < 1e-12:
        v = v[:-1]  # the ring is closed by repeating its first point
    dense = _densified(v, step_deg)
    d_lat = np.degrees(np.arcsin(np.clip(dense[:, 2], -1.0, 1.0)))
    d_lon = np.degrees(np.arctan2(dense[:, 1], dense[:, 0]))
    mask = footprint_cells(d_lat[:, None], d_lon[:, None])
    c_lat, c_lon = _cell_centres()
    poles = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    winding = _winding(np.vstack([_unit_vectors(c_lat, c_lon), poles]), _densified(v, 2.0))
    outside = 0
    mask |= winding[:-2] != outside
    samples_lat, samples_lon = [d_lat], [d_lon]
    for pole_lat, w in zip((90.0, -90.0), winding[-2:], strict=True):
        if w != outside:
            ring_lon = np.arange(-180.0, 180.0, CELL_DEG)
            samples_lat.append(np.full(ring_lon.size, pole_lat))
            samples_lon.append(ring_lon)
    return np.concatenate(samples_lat)[:, None], np.concatenate(samples_lon)[:, None], mask


@register_geolocator("caliop_l1b", needs_local_path=True)
def caliop_geolocation(path: str, stride: int = 16) -> Geolocation:
    """Sampled ``Latitude``/``Longitude`` (n, 1) and the time span (``Profile_Time``) of a CALIOP L1B file (HDF4).

    Read under :data:`~app.core.locks.HDF_LOCK`; anything wrong with the file is a GranuleError naming it.
    """
    from app.data import caliop

    with HDF_LOCK, caliop._Granule(path) as g:  # a pyhdf or decoding failure inside -> GranuleError
        for name in ("Latitude", "Longitude", "Profile_Time"):
            if name not in g.datasets:
                raise GranuleError(path, f"has no {name} data set: not a CALIOP L1B file")
        n = g.n_profiles()  # checks that every per-profile SDS is (n, 1)
        if n == 0:
            raise GranuleError(path, "has no profile (its Latitude data set is empty)")
        shape = (n, 1)
        rs = _stride(n, stride, 256)
        lat_sds, lon_sds = g.sd.select("Latitude"), g.sd.select("Longitude")
        try:
            lat, lon = _sampled(lat_sds, shape, rs, 1), _sampled(lon_sds, shape, rs, 1)
        finally:
            lat_sds.endaccess()
            lon_sds.endaccess()
        times = g.read("Profile_Time", slice(0, n)).reshape(-1).astype(np.float64)
        t0, t1 = float(times[0]), float(times[-1])
    if not (np.isfinite(t0) and np.isfinite(t1) and 0 <= t1 - t0 < 86400):
        raise GranuleError(path, f"its Profile_Time runs from {t0} to {t1} s: not the time span of a granule")
    return Geolocation(lat, lon, duration_s=t1 - t0)


# --- geostationary full disks (the footprint is the disk, from the name alone) -------------------------------

#: Great-circle distance (degrees) from the sub-satellite point within which a geostationary full disk counts as
#: seeing the ground. The limb is at 81.3°; beyond ~75° (viewing zenith angle ~83°) the view is too oblique to use.
GEO_DISK_RADIUS_DEG = 75.0


@functools.lru_cache(maxsize=32)  # one small grid per ring position (a few KB each): constant, not in the budget
def geo_disk(sub_lon: float, radius_deg: float = GEO_DISK_RADIUS_DEG, step_deg: float = 1.0):
    """Samples (lat, lon: 2-D, NaN outside) and the footprint mask of the cap within ``radius_deg`` of (0, sub_lon).

    The samples are a regular grid in latitude × longitude *relative to* ``sub_lon`` (so a disk across ±180° is
    seen to cross it); the footprint holds every 5° cell that has a point within the cap.
    """
    lat1 = np.arange(-radius_deg, radius_deg + step_deg / 2, step_deg)
    dlon1 = np.arange(-radius_deg, radius_deg + step_deg / 2, step_deg)
    lat, dlon = np.meshgrid(lat1, dlon1, indexing="ij")
    inside = np.cos(np.deg2rad(lat)) * np.cos(np.deg2rad(dlon)) >= np.cos(np.deg2rad(radius_deg)) - 1e-12
    lat = np.where(inside, lat, np.nan)
    lon = np.where(inside, _wrap(sub_lon + dlon), np.nan)
    mask = footprint_cells(lat, lon)
    for a in (lat, lon, mask):
        a.flags.writeable = False
    return lat, lon, mask


def _geo_geolocation(path: str, platform_id: str, start: dt.datetime, repeat_min: int | None = None
                     ) -> Geolocation:
    """The disk of a platform, and the slot's start and end (the start plus the sensor's repeat cycle)."""
    from app.data.geo_bands import FULL_DISK, geo_platform

    try:
        p = geo_platform(platform_id)
    except KeyError as e:
        raise GranuleError(path, f"file name: {e.args[0]}") from None
    repeat = repeat_min or FULL_DISK[p.sensor].repeat_minutes
    slot = start.replace(second=0, microsecond=0, minute=start.minute - start.minute % repeat)
    lat, lon, mask = geo_disk(float(p.sub_lon))
    return Geolocation(lat, lon, start=start, end=slot + dt.timedelta(minutes=repeat), platform=p.key,
                       footprint=mask)


def _geo_name_fields(product: str, path: str) -> dict:
    return PATTERNS[product].parse(path)


@register_geolocator("geo_abi_l1b", reads_file=False)
def abi_geolocation(path: str, stride: int = 16) -> Geolocation:
    """A GOES ABI L1b full-disk file: the disk of its platform (from the name), scan start and end (name)."""
    f = _geo_name_fields("geo_abi_l1b", path)
    geo = _geo_geolocation(path, f["platform"], f["start"])
    geo.end = f["end"]
    return geo


@register_geolocator("geo_ahi_hsd", reads_file=False)
def ahi_geolocation(path: str, stride: int = 16) -> Geolocation:
    """A Himawari HSD segment file: its platform's disk (a segment is given the whole disk), the slot (name)."""
    f = _geo_name_fields("geo_ahi_hsd", path)
    return _geo_geolocation(path, f["platform"], f["start"], None if f["area"] == "FLDK" else 2)


@register_geolocator("geo_seviri_nc", reads_file=False)
def seviri_geolocation(path: str, stride: int = 16) -> Geolocation:
    """A SEVIRI Level 1.5 netCDF file: its platform's disk, the repeat cycle's start (name) and nominal end."""
    f = _geo_name_fields("geo_seviri_nc", path)
    return _geo_geolocation(path, f["platform"], f["start"])


@register_geolocator("geo_fci_l1c", reads_file=False)
def fci_geolocation(path: str, stride: int = 16) -> Geolocation:
    """An FCI L1c FDHSI body chunk: its platform's disk and its repeat cycle (the name's start is the slot)."""
    f = _geo_name_fields("geo_fci_l1c", path)
    return _geo_geolocation(path, f["platform"], f["start"])


@register_geolocator("nwcsaf_ctth", reads_file=False)
def nwcsaf_geolocation(path: str, stride: int = 16) -> Geolocation:
    """An NWC SAF GEO product: its platform's disk (NWC SAF's id mapped to ours), the nominal slot (name)."""
    f = _geo_name_fields("nwcsaf_ctth", path)
    return _geo_geolocation(path, f["platform"], f["start"])


# --- footprints ----------------------------------------------------------------------------------------------


def _cell_ids(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    row = _lat_row(lat)
    col = np.floor(((lon + 180.0) % 360.0) / CELL_DEG).astype(np.int64) % N_LON
    return row * N_LON + col


def _wrap(lon):
    return wrap_lon(np.asarray(lon, dtype=np.float64))


def _half_spacing(values: np.ndarray, is_lon: bool) -> np.ndarray:
    """Half the largest distance (degrees) from each sample to its grid neighbours."""
    out = np.zeros_like(values)
    for axis in (0, 1):
        if values.shape[axis] < 2:
            continue
        d = np.abs(np.diff(values, axis=axis))
        if is_lon:
            d = np.abs(_wrap(d))
        d = np.nan_to_num(d, nan=0.0)
        head = out[:-1] if axis == 0 else out[:, :-1]  # views: each sample and its next neighbour
        tail = out[1:] if axis == 0 else out[:, 1:]
        np.maximum(head, d, out=head)
        np.maximum(tail, d, out=tail)
    return out / 2.0


def footprint_cells(lat: np.ndarray, lon: np.ndarray, max_lon_margin: float = 10.0) -> np.ndarray:
    """Boolean mask of the 2592 5°×5° cells touched by a sampled swath (2-D lat/lon sample grids).

    Each sample is widened by half the spacing to its neighbours (plus 0.05°) and the cells of that small
    rectangle are marked, stepping at most 2.5° so that no 5° cell inside it is skipped. Near the poles, where the
    longitude spacing is large, a sample whose longitude margin exceeds ``max_lon_margin`` marks its whole
    latitude band(s).
    """
    lat = np.atleast_2d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_2d(np.asarray(lon, dtype=np.float64))
    mask = np.zeros(N_CELLS, dtype=bool)
    m_lat = _half_spacing(lat, False) + 0.05
    m_lon = _half_spacing(lon, True) + 0.05
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0)
    lat, lon, m_lat, m_lon = lat[ok], lon[ok], m_lat[ok], m_lon[ok]
    if lat.size == 0:
        return mask
    m_lat = np.minimum(m_lat, 10.0)
    polar = m_lon > max_lon_margin
    if polar.any():  # near a pole: the whole latitude band(s) of the sample
        first = _lat_row(lat[polar] - m_lat[polar])
        last = _lat_row(lat[polar] + m_lat[polar])
        for k in range(int((last - first).max()) + 1):
            mask.reshape(N_LAT, N_LON)[np.minimum(first + k, last), :] = True
    lat, lon, m_lat, m_lon = lat[~polar], lon[~polar], m_lat[~polar], m_lon[~polar]
    # steps of at most 2.5° across each sample's rectangle, so that no 5° cell inside it is skipped
    n_steps = np.ceil(np.maximum(m_lat, m_lon) / (CELL_DEG / 2)).astype(int)
    for k in np.unique(n_steps):
        sel = n_steps == k
        steps = np.linspace(-1.0, 1.0, 2 * k + 1)
        la = lat[sel, None] + steps * m_lat[sel, None]  # (samples, steps)
        lo = lon[sel, None] + steps * m_lon[sel, None]
        mask[_cell_ids(la[:, :, None], lo[:, None, :]).ravel()] = True  # every (lat step, lon step) pair
    return mask


def _lat_row(lat: np.ndarray) -> np.ndarray:
    return np.clip(np.floor((np.clip(lat, -90.0, 90.0) + 90.0) / CELL_DEG), 0, N_LAT - 1).astype(np.int64)


def pack_cells(mask: np.ndarray) -> bytes:
    """The 2592-cell mask as 324 bytes (row-major from (-90, -180), big-endian bits)."""
    return np.packbits(np.asarray(mask, dtype=bool)).tobytes()


def unpack_cells(footprint: bytes) -> np.ndarray:
    """The boolean mask (2592,) of a packed footprint."""
    return np.unpackbits(np.frombuffer(footprint, dtype=np.uint8))[:N_CELLS].astype(bool)


def _check_bbox(bbox) -> tuple[float, float, float, float]:
    try:
        lon_min, lat_min, lon_max, lat_max = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise UserInputError(f"bbox must be four numbers (lon_min, lat_min, lon_max, lat_max), got {bbox!r}") from None
    if not (-90.0 <= lat_min <= lat_max <= 90.0):
        raise UserInputError(
            f"bbox latitudes must satisfy -90 <= lat_min <= lat_max <= 90, got lat_min={lat_min}, lat_max={lat_max}"
        )
    if not (-180.0 <= lon_min <= 180.0 and -180.0 <= lon_max <= 180.0):
        raise UserInputError(
            f"bbox longitudes must lie in [-180, 180] (lon_min > lon_max crosses the antimeridian), "
            f"got lon_min={lon_min}, lon_max={lon_max}"
        )
    return lon_min, lat_min, lon_max, lat_max


def _index_range(lo: float, hi: float, origin: float, n: int) -> np.ndarray:
    """Cell indices covering [lo, hi]; an upper edge exactly on a cell boundary does not take the next cell."""
    first = int(np.floor((lo - origin) / CELL_DEG))
    last = int(np.ceil((hi - origin) / CELL_DEG)) - 1
    last = max(first, last)
    return np.arange(max(first, 0), min(last, n - 1) + 1)


def bbox_cells(bbox) -> np.ndarray:
    """Boolean mask (2592,) of the cells that a (lon_min, lat_min, lon_max, lat_max) box overlaps.

    ``lon_min > lon_max`` means the box crosses the antimeridian (e.g. 150 → -150).
    """
    lon_min, lat_min, lon_max, lat_max = _check_bbox(bbox)
    rows = _index_range(lat_min, lat_max, -90.0, N_LAT)
    if lon_min <= lon_max:
        cols = _index_range(lon_min, lon_max, -180.0, N_LON)
    else:
        cols = np.union1d(_index_range(lon_min, 180.0, -180.0, N_LON), _index_range(-180.0, lon_max, -180.0, N_LON))
    mask = np.zeros((N_LAT, N_LON), dtype=bool)
    mask[np.ix_(rows, cols)] = True
    return mask.ravel()


def _lon_interval(lon: np.ndarray) -> tuple[float, float]:
    """The shortest longitude interval covering the samples; lon_min > lon_max when it wraps across ±180."""
    values = np.unique(np.round(_wrap(lon[np.isfinite(lon)]), 4))
    if values.size == 0:
        return np.nan, np.nan
    gaps = np.diff(np.append(values, values[0] + 360.0))
    i = int(np.argmax(gaps))
    if gaps[i] < 2 * CELL_DEG:  # covers (almost) every longitude
        return -180.0, 180.0
    return float(values[(i + 1) % values.size]), float(values[i])


def _crosses_antimeridian(lon: np.ndarray) -> bool:
    for axis in (0, 1):
        if lon.shape[axis] > 1 and np.nanmax(np.abs(np.diff(lon, axis=axis)), initial=0.0) > 180.0:
            return True
    return False


# --- building rows -------------------------------------------------------------------------------------------


class ProductSource(Protocol):
    """What the index needs of a product (``app.data.catalog.ProductInfo`` has it)."""

    product: str
    root_url: str
    glob: str
    storage_options: Any

    def filename_pattern(self) -> FilenamePattern: ...


@dataclass
class IndexReport:
    """What a refresh did: files added, re-read (changed), removed, left unchanged, and skipped with the reason.

    ``added``/``updated``/``removed`` hold the paths as the index stores them. ``skipped`` holds ``(name,
    reason)`` pairs meant for people: the name is relative to the archive root (a folder of the archive is named
    the same way; one outside it, e.g. an unreachable URL, as it is), never an absolute server path. ``empty``
    holds, the same way, the product folders that exist and hold no granule (no file was skipped: a period the
    product does not cover — no CALIOP after 2023 — or a glob that matches nothing, which the sentence shows).
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty: list[tuple[str, str]] = field(default_factory=list)
    root: str | None = None

    def skip(self, path: str, reason: str) -> None:
        """Record a skipped file or folder, named relative to :attr:`root` (also inside the reason)."""
        self.skipped.append((relative_name(path, self.root), without_root(reason, self.root)))

    def note_empty(self, path: str, reason: str) -> None:
        """Record a product folder that holds no granule, named relative to :attr:`root`."""
        self.empty.append((relative_name(path, self.root), without_root(reason, self.root)))

    def __str__(self) -> str:
        text = (
            f"granule index: {len(self.added)} added, {len(self.updated)} re-read, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped"
        )
        return (text + "".join(f"\n  skipped {path}: {reason}" for path, reason in self.skipped)
                + "".join(f"\n  empty {path}: {reason}" for path, reason in self.empty))


def relative_name(path: str | os.PathLike, root: str | os.PathLike | None) -> str:
    """``path`` named relative to the archive ``root`` (what users see); as it is when outside it or no root."""
    text = os.fspath(path)
    if not root:
        return text
    base = os.fspath(root).rstrip("/")
    if text.rstrip("/") == base:  # the root itself: a URL as the catalogue says it, a local folder by its name
        return base if not _is_local(base) else (base.rsplit("/", 1)[-1] or text)
    if text.startswith(base + "/"):
        return text[len(base) + 1 :]
    if _is_local(base) and _is_local(text) and os.path.isabs(text):
        real = os.path.realpath(base)
        if text.startswith(real.rstrip("/") + "/"):
            return text[len(real.rstrip("/")) + 1 :]
    return text


def without_root(text: str, root: str | os.PathLike | None) -> str:
    """``text`` with the archive root's absolute path taken out of it (file names left relative to the root)."""
    if not root:
        return text
    for base in {os.fspath(root).rstrip("/"), os.path.realpath(root).rstrip("/") if _is_local(root) else ""}:
        if base and base != "/":
            text = text.replace(base + "/", "").replace(base, ".")
    return text


def _is_local(url: str) -> bool:
    return "://" not in url and "::" not in url


class _LocalLister:
    """Lists the files of a local product folder that match its glob, following symbolic links with care.

    A link (to a file or a folder) whose target lies inside the archive is followed as if it were what it points
    to; a link pointing outside the archive, or to nothing, is skipped and named in the report. ``**`` matches any
    number of folders (a folder met twice through links is walked once).
    """

    def __init__(self, report: IndexReport, allowed: list[str]):
        self.report = report
        self.allowed = [a.rstrip(os.sep) for a in allowed]
        self.files: dict[str, tuple[int, float]] = {}
        self._said: set[str] = set()
        self._seen: set[str] = set()

    def _skip(self, path: str, reason: str) -> None:
        if path not in self._said:
            self._said.add(path)
            self.report.skip(path, reason)

    def _entries(self, folder: str) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as e:
            why = e.strerror or type(e).__name__
            self._skip(folder, f"this folder cannot be listed ({why}); its files are left out")
            return []

    def _inside(self, real: str) -> bool:
        return any(real == a or real.startswith(a + os.sep) for a in self.allowed)

    def kind(self, entry: os.DirEntry) -> str | None:
        """'file', 'dir', or None (neither, or a link not to be followed: skipped and named)."""
        try:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not os.path.exists(real):
                    self._skip(entry.path, "is a symbolic link whose target does not exist")
                    return None
                if not self._inside(real):
                    self._skip(entry.path, "is a symbolic link to a place outside the archive; not followed")
                    return None
            if entry.is_dir():
                return "dir"
            if entry.is_file():
                return "file"
        except OSError as e:
            self._skip(entry.path, f"cannot be examined ({e.strerror or type(e).__name__})")
        return None

    def walk(self, folder: str, parts: list[str]) -> None:
        """Add the files under ``folder`` matching the glob ``parts`` (one per path level)."""
        if not parts:
            return
        part, rest = parts[0], parts[1:]
        if part == "**":
            real = os.path.realpath(folder)
            if real in self._seen:
                return
            self._seen.add(real)
            self.walk(folder, rest)  # no folder at all
            for entry in self._entries(folder):
                if self._is_dir_quietly(entry):
                    self.walk(entry.path, parts)
            return
        for entry in self._entries(folder):
            if not fnmatch.fnmatchcase(entry.name, part):
                continue
            kind = self.kind(entry)
            if rest and kind == "dir":
                self.walk(entry.path, rest)
            elif not rest and kind == "file":
                try:
                    st = os.stat(entry.path)
                except OSError as e:
                    self._skip(entry.path, f"cannot be examined ({e.strerror or type(e).__name__})")
                    continue
                self.files[entry.path] = (int(st.st_size), float(st.st_mtime))

    def _is_dir_quietly(self, entry: os.DirEntry) -> bool:
        try:
            if entry.is_symlink() and not self._inside(os.path.realpath(entry.path)):
                return False  # named when a glob part matches it, not for every ** step
            return entry.is_dir()
        except OSError:
            return False


def _list_local(source: ProductSource, report: IndexReport) -> dict[str, tuple[int, float]] | None:
    root = source.root_url
    if not os.path.isdir(root):
        if os.path.exists(root) or os.path.islink(root):
            report.skip(root, f"folder of {source.product} is not a folder")
        else:
            report.skip(root, f"folder of {source.product} does not exist")
        return {}
    try:
        os.listdir(root)
    except OSError as e:  # the folder cannot be read now: keep what the index knows of it
        report.skip(root, f"cannot be listed ({e.strerror or type(e).__name__}); its index rows are kept")
        return None
    allowed = [os.path.realpath(root)] + ([os.path.realpath(report.root)] if report.root else [])
    lister = _LocalLister(report, allowed)
    lister.walk(root, [p for p in source.glob.split("/") if p])
    if not lister.files:
        report.note_empty(root, f"no {source.product} granule: no file matches {source.glob} in this folder")
    return lister.files


_TIME_FIELD = re.compile(r"\{time:([^{}]+)\}")


def recent_folders(partition: str, days: int, now=None) -> list[str]:
    """The partition folders (relative) of the last ``days`` days up to ``now`` (UTC), newest first.

    ``{time:<strftime>}`` fields are filled hour by hour (a daily layout gives one folder a day); any other field
    (``{platform}``) becomes ``*``.
    """
    end = _as_time(now if now is not None else pd.Timestamp.now(tz="UTC")).floor("h")
    out: list[str] = []
    for k in range(int(days) * 24):
        t = end - pd.Timedelta(hours=k)
        folder = _TIME_FIELD.sub(lambda m, t=t: t.strftime(m.group(1)), partition)
        folder = re.sub(r"\{[^{}]*\}", "*", folder)
        if folder not in out:
            out.append(folder)
    return out


def _folder_files(fs, where: str, name_glob: str) -> dict[str, dict]:
    """The files directly in a remote folder whose name matches ``name_glob``, with their listing details.

    One ``ls`` of the folder, not a ``glob``: s3fs lists a glob with a name prefix (``Prefix=.../S5P_``), which
    does not fill its listing cache, so every file read afterwards would first ask its size and ETag with a HEAD
    request (one round trip more per new granule; refused by servers that authorise HEAD apart from GET, as moto
    does for anonymous requests). The folder's listing is kept by the file system and answers those questions.
    """
    try:
        entries = fs.ls(where, detail=True)
    except FileNotFoundError as exc:
        if "specified bucket does not exist" in str(exc).lower():  # the whole source is missing, not one day
            raise
        return {}
    return {e["name"]: e for e in entries
            if e.get("type", "file") == "file" and fnmatch.fnmatchcase(e["name"].rsplit("/", 1)[-1], name_glob)}


def _list_recent(source: ProductSource, report: IndexReport, days: int, now=None) -> dict[str, tuple[int, float]]:
    """Map path -> (size, mtime) of the product's files in its newest partition folders (missing folders: none)."""
    partition = getattr(source, "partition", "") or ""
    if not partition:
        return {}
    name_glob = source.glob.rsplit("/", 1)[-1]
    found: dict[str, tuple[int, float]] = {}
    try:
        fs, root = storage.filesystem(source.root_url)
        remote = storage.is_remote(source.root_url)
        for folder in recent_folders(partition, days, now):
            where = f"{root.rstrip('/')}/{folder.rstrip('/')}"
            fs.invalidate_cache(where)
            listed = (_folder_files(fs, where, name_glob) if remote and "*" not in folder
                      else fs.glob(f"{where}/{name_glob}", detail=True))
            for path, info in listed.items():
                if info.get("type", "file") == "file":
                    url = fs.unstrip_protocol(path) if remote else path
                    found[url] = (int(info.get("size") or 0), _mtime(info))
    except Exception as e:  # noqa: BLE001 - an unreachable archive is reported; the index keeps what it has
        report.skip(source.root_url, f"its newest folders cannot be listed: {listing_reason(e)}")
    return found


# --- STAC: footprints, times and files from a STAC API's search, no file opened ------------------------------------

#: Seconds to wait for a STAC API (connect, read): bounded, as every remote request.
STAC_TIMEOUT = (5.0, 30.0)
#: Items asked per page of a search.
STAC_PAGE = 250


def _stac_href(item: dict, stac: dict, pattern: FilenamePattern) -> str | None:
    """The granule file of a STAC item: the asset named by ``stac.asset``, else the one whose name fits the pattern."""
    assets = item.get("assets") or {}
    if stac.get("asset"):
        asset = assets.get(stac["asset"]) or {}
        return asset.get("href")
    glob = pattern.glob
    for asset in assets.values():
        href = str((asset or {}).get("href") or "")
        if fnmatch.fnmatchcase(href.rsplit("/", 1)[-1], glob):
            return href
    return None


def _stac_outline(geometry: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Samples and cell mask of an item's geometry (a Polygon or a MultiPolygon split at ±180°), None without one."""
    if not geometry or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    lats, lons, mask = [], [], None
    for polygon in polygons:
        ring = np.asarray(polygon[0], dtype=np.float64)  # the exterior ring, (lon, lat) pairs
        if ring.ndim != 2 or len(ring) < 3 or not np.isfinite(ring[:, :2]).all():
            return None
        lat, lon, cells = outline_footprint(ring[:, 1], ring[:, 0])
        lats.append(lat)
        lons.append(lon)
        mask = cells if mask is None else mask | cells
    return np.concatenate(lats), np.concatenate(lons), mask


def _stac_time(props: dict, key: str) -> pd.Timestamp | None:
    value = props.get(key)
    if not value:
        return None
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def _stac_row(item: dict, stac: dict, pattern: FilenamePattern) -> dict:
    """One index row from a STAC item (raises GranuleError naming the item when it lacks what the index needs)."""
    where = f"STAC item {item.get('id', '?')} of {stac['url']}"
    href = _stac_href(item, stac, pattern)
    if not href:
        raise GranuleError(where, f"has no asset named {stac['asset']!r}")
    fields = pattern.parse(href)  # a GranuleError for a name that does not fit
    outline = _stac_outline(item.get("geometry"))
    if outline is None:
        raise GranuleError(href, f"its {where} has no footprint polygon")
    lat, lon, mask = outline
    props = item.get("properties") or {}
    start = _stac_time(props, "start_datetime") or fields.get("start") or _stac_time(props, "datetime")
    end = _stac_time(props, "end_datetime") or fields.get("end")
    if start is None or end is None:
        raise GranuleError(href, f"its {where} gives no start or end time")
    asset = next((a for a in (item.get("assets") or {}).values() if (a or {}).get("href") == href), {}) or {}
    updated = _stac_time(props, "updated") or _stac_time(props, "created")
    lon_min, lon_max = _lon_interval(lon)
    return {
        "path": href, "product": pattern.product, "platform": fields.get("platform", ""),
        "orbit": fields.get("orbit", props.get("sat:absolute_orbit")), "start": start, "end": end,
        "lat_min": float(np.nanmin(lat)), "lat_max": float(np.nanmax(lat)), "lon_min": lon_min, "lon_max": lon_max,
        "crosses_antimeridian": _crosses_antimeridian(lon), "footprint": pack_cells(mask),
        "size": int(asset.get("file:size") or 0),
        "mtime": float("nan") if updated is None else updated.timestamp(),
        "mode": fields.get("mode"), "collection": fields.get("collection"), "processor": fields.get("processor"),
        "day_night": fields.get("day_night"),
    }


def _stac_rows(source: ProductSource, report: IndexReport, datetime: str | None = None) -> list[dict] | None:
    """The index rows of a product from its STAC API's search (None: the API cannot be searched, said once).

    ``datetime``: the search's interval (``2026-03-25T00:00:00Z/..``), None for every item of the collection. An
    item that lacks a file, a footprint or times is skipped and named; nothing is opened.
    """
    stac = dict(getattr(source, "stac", None) or {})
    pattern = source.filename_pattern()
    try:
        from pystac_client import Client

        client = Client.open(stac["url"], timeout=STAC_TIMEOUT)
        search = client.search(collections=[stac["collection"]], datetime=datetime, limit=STAC_PAGE)
        items = list(search.items_as_dicts())
    except ImportError as exc:
        report.skip(stac["url"], f"cannot be searched: pystac-client is not installed ({exc}); install "
                                 "fumarole[remote]; its index rows are kept")
        return None
    except Exception as exc:  # noqa: BLE001 - an API that cannot be searched is said once; the rows are kept
        report.skip(stac["url"], f"cannot be searched for {stac['collection']}: {listing_reason(exc)}; its index "
                                 "rows are kept")
        return None
    rows = []
    for item in items:
        if not stac.get("asset") and _stac_href(item, stac, pattern) is None:
            continue  # another product's item (no file of this product's name): passed over, as in a listing
        try:
            rows.append(_stac_row(item, stac, pattern))
        except GranuleError as exc:
            report.skip(str(exc.path), exc.problem)
    if not items:
        report.note_empty(stac["url"], f"no {source.product} granule: its collection {stac['collection']} has no "
                                       "item" + (f" in {datetime}" if datetime else ""))
    return rows


def _mtime(info: dict) -> float:
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        try:
            return pd.Timestamp(value).timestamp()
        except (ValueError, TypeError):
            continue
    return float("nan")


def _read_granule(
    pattern: FilenamePattern, path: str, size: int, mtime: float, storage_options: dict, stride: int
) -> dict:
    """One index row for one file (raises GranuleError or the reader's exception)."""
    fields = pattern.parse(path)
    product = pattern.product
    geolocate = GEOLOCATORS.get(product)
    if geolocate is None:
        raise GranuleError(path, f"product {product!r} has no geolocation reader registered in app.data.index")
    if storage_options and storage.registered_options(path) != dict(storage_options):
        storage.register(path.rsplit("/", 1)[0], storage_options)  # on a worker that has not seen the catalogue
    if getattr(geolocate, "needs_local_path", False):
        with storage.local_copy(path) as local:  # kept in the per-user cache (pyhdf needs a path)
            geo = geolocate(local, stride)
    else:
        geo = geolocate(path, stride)  # a URL: the reader reads byte ranges (or only the name)
    lat, lon = np.atleast_2d(geo.latitude), np.atleast_2d(geo.longitude)
    if not np.isfinite(lat).any():
        raise GranuleError(path, "has no valid latitude/longitude")
    start = fields.get("start") or geo.start
    end = fields.get("end") or geo.end
    if end is None and start is not None and geo.duration_s is not None:
        end = start + dt.timedelta(seconds=geo.duration_s)
    if start is None or end is None:
        raise GranuleError(path, "start or end time is neither in the file name nor in the file")
    lon_min, lon_max = _lon_interval(lon)
    orbit = fields.get("orbit", geo.orbit)
    return {
        "path": path,
        "product": product,
        "platform": geo.platform or fields.get("platform", ""),
        "orbit": orbit,
        "start": start,
        "end": end,
        "lat_min": float(np.nanmin(lat)),
        "lat_max": float(np.nanmax(lat)),
        "lon_min": lon_min,
        "lon_max": lon_max,
        "crosses_antimeridian": _crosses_antimeridian(lon),
        "footprint": pack_cells(geo.footprint if geo.footprint is not None else footprint_cells(lat, lon)),
        "size": int(size),
        "mtime": float(mtime),
        "mode": fields.get("mode"),
        "collection": fields.get("collection"),
        "processor": fields.get("processor"),
        "day_night": fields.get("day_night"),
    }


def _safe_read(pattern, path, size, mtime, storage_options, stride) -> tuple[dict | None, str | None]:
    # A skipped file is reported with its reason; the build goes on (the one place that catches everything).
    try:
        return _read_granule(pattern, path, size, mtime, storage_options, stride), None
    except GranuleError as e:
        return None, e.problem
    except Exception as e:  # noqa: BLE001 - any reader failure skips the file, with its reason
        return None, f"cannot be read ({type(e).__name__}: {e})"


def _empty_table() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=COLUMNS)
    for c in _INT_COLUMNS:
        df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), np.nan)).astype("Int64")
    for c in ("start", "end"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in ("lat_min", "lat_max", "lon_min", "lon_max", "mtime"):
        df[c] = df[c].astype("float64")
    df["size"] = df["size"].astype("int64")
    df["crosses_antimeridian"] = df["crosses_antimeridian"].astype(bool)
    for c in _STR_COLUMNS:
        df[c] = df[c].astype("string")
    df["footprint"] = df["footprint"].astype(object)
    return df.reset_index(drop=True)


def _as_time(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


# --- the index -----------------------------------------------------------------------------------------------


def is_slot_listed(info) -> bool:
    """Whether a catalogue product is listed by :mod:`app.data.geo_slots` rather than indexed file by file.

    That is a GEO product (its reader gives GEO scenes or cloud tops) with a ``partition``.
    """
    from app.data.readers import READERS

    reader = READERS.get(info.reader)
    return bool(info.partition) and reader is not None and reader.canonical in ("geo_scene", "cloud_top")


class GranuleIndex:
    """The table of granules (columns :data:`COLUMNS`), its Parquet file, its refresh and its queries."""

    def __init__(
        self,
        table: pd.DataFrame | None = None,
        path: str | os.PathLike | None = None,
        sources: Iterable[ProductSource] | None = None,
        root: str | os.PathLike | None = None,
    ):
        self._table = _empty_table() if table is None else _typed(table)
        self.path = os.fspath(path) if path is not None else None
        #: the archive root: files are named relative to it in reports, and links are followed within it
        self.root: str | None = os.fspath(root) if root is not None else None
        self._stored = False  # whether the file at self.path holds this table
        #: the products :meth:`refresh` brings up to date when given none
        self.sources: list[ProductSource] = list(sources or [])
        self.last_report: IndexReport | None = None
        self._cache: dict[str, np.ndarray] | None = None

    @classmethod
    def for_catalog(cls, cat=None, path: str | os.PathLike | None = None, products: Iterable[str] | None = None):
        """The stored index of a catalogue's archive (not refreshed), ready to :meth:`refresh` its products.

        ``cat`` is an open catalogue, a catalogue path/URL/name, or None for the default catalogue; ``path``
        defaults to :func:`index_path` of the archive (in the user's state folder, never in the archive). GEO products
        in time-partitioned folders (:func:`is_slot_listed`) are not indexed: :mod:`app.data.geo_slots` lists them.
        """
        from app.data import catalog as catalogs

        if cat is None or isinstance(cat, str | os.PathLike):
            cat = catalogs.open_catalog(cat)
        root = catalogs.archive_root(cat)
        if path is None:
            path = index_path(root)
        index = cls.load(path)
        index.root = root
        infos = [catalogs.product_info(cat, p) for p in (products or catalogs.products(cat))]
        # a GEO product laid out in time-partitioned folders is listed around the times asked for by
        # app.data.geo_slots, never file by file for the whole archive here (a partitioned TROPOMI product is
        # indexed: its partition only says which folders a live refresh lists again)
        slot_listed = {info.product for info in infos if is_slot_listed(info)}
        index.sources = [info for info in infos if info.product not in slot_listed]
        index.drop_products(slot_listed)
        return index

    def drop_products(self, products: set[str]) -> None:
        """Drop the rows of these products (a stored index from before they were time-partitioned)."""
        extra = self._table["product"].isin(list(products))
        if extra.any():
            self._table = self._table[~extra].reset_index(drop=True)
            self._cache = None
            self._stored = False

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        counts = self._table["product"].value_counts().to_dict() if len(self) else {}
        return f"GranuleIndex({len(self)} granules {counts}, path={self.path!r})"

    @property
    def table(self) -> pd.DataFrame:
        """The whole index (a copy)."""
        return self._table.copy()

    # persistence ---------------------------------------------------------------------------------------------

    def summary(self) -> str:
        """A few lines on what the index holds: per product, the granules, their time span and orbits."""
        lines = [f"granule index {self.path or '(not saved)'}: {_count(len(self), 'granule')}"]
        for product, rows in self._table.groupby("product", sort=False):
            text = f"  {product}: {_count(len(rows), 'granule')}, {rows['start'].min():%Y-%m-%d %H:%M} → "
            text += f"{rows['end'].max():%Y-%m-%d %H:%M} UTC"
            if rows["orbit"].notna().any():
                text += f", orbits {rows['orbit'].min()}–{rows['orbit'].max()}"
            lines.append(text)
        return "\n".join(lines)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GranuleIndex:
        """The index stored at ``path``; an empty index if there is none or it is unreadable or outdated."""
        import pyarrow.parquet as pq

        path = os.fspath(path)
        try:
            with fsspec.open(path, "rb") as f:
                table = pq.read_table(f)
        except (FileNotFoundError, NotADirectoryError):  # none yet, or a state folder that cannot exist
            return cls(path=path)
        except Exception as e:  # noqa: BLE001 - a broken index is rebuilt, not fatal
            logger.warning("granule index %s cannot be read (%s: %s); rebuilding it", path, type(e).__name__, e)
            return cls(path=path)
        version = (table.schema.metadata or {}).get(b"fumarole_index_version", b"").decode()
        if version != INDEX_VERSION or set(COLUMNS) - set(table.column_names):
            logger.warning("granule index %s is of another version (%r); rebuilding it", path, version)
            return cls(path=path)
        index = cls(table.to_pandas(), path=path)
        index._stored = True
        return index

    def save(self, path: str | os.PathLike | None = None) -> str | None:
        """Write the index as Parquet (atomically for a local file); returns the path, or None if it cannot be.

        A local file is written through :func:`app.core.state.write_state`: a folder that cannot be made or
        written (read-only, full disk) is said once in the log and the index goes on in memory.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = os.fspath(path) if path is not None else self.path
        if path is None:
            raise ValueError("the granule index has no path: give save() one")
        table = pa.Table.from_pandas(self._table, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"fumarole_index_version": INDEX_VERSION.encode()}
        )
        if _is_local(path):
            if not write_state(path, lambda tmp: pq.write_table(table, tmp), what="granule index"):
                return None
        else:
            try:
                with fsspec.open(path, "wb") as f:
                    pq.write_table(table, f)
            except OSError as e:
                logger.warning("cannot write the granule index to %s (%s); going on in memory", path, e)
                return None
        self.path = path
        self._stored = True
        return path

    # refresh -------------------------------------------------------------------------------------------------

    def refresh(
        self,
        sources: Iterable[ProductSource] | None = None,
        executor=None,
        max_workers: int | None = None,
        stride: int = 16,
        save: bool | None = None,
    ) -> IndexReport:
        """Bring the rows of the given products (default: :attr:`sources`) up to date with their files.

        Lists each product's files (``root_url/glob``), reads the new and changed ones (by size and mtime) with a
        thread pool (or ``executor``: anything with ``submit(fn, *args)`` returning futures with ``result()``,
        such as a ``dask.distributed.Client``), drops the rows of vanished files and keeps the rest. Files that
        cannot be used are skipped and listed in the report (and logged); they are tried again at the next
        refresh. A product whose folder cannot be listed (e.g. storage unreachable) keeps its rows.

        ``save`` (default: when the index has a :attr:`path` and the refresh changed something, or the file
        does not hold it yet) writes the index afterwards; an empty index whose local folder does not exist is
        not written. Skipped files are named relative to :attr:`root` (default: the folder common to the
        products' folders). Nothing is ever written in the archive itself.
        """
        if sources is None:
            if not self.sources:
                raise ValueError("refresh() needs the products: give sources, or make the index with for_catalog()")
            sources = self.sources
        sources = list(sources)
        report = IndexReport(root=self.root or _common_root(sources))
        old = self._table
        keep: list[pd.DataFrame] = []
        tasks: list[tuple] = []
        refreshed: set[str] = set()
        stac_rows: list[dict] = []
        for source in sources:
            if getattr(source, "stac", None):  # the footprints come from a STAC API's search, no file opened
                found = _stac_rows(source, report)
                if found is not None:
                    refreshed.add(source.product)
                    _compare(old[old["product"] == source.product], found, report)
                    stac_rows += found
                continue
            listing = self._list(source, report)
            if listing is None:  # the archive cannot be listed now: keep what the index knows of it
                continue
            refreshed.add(source.product)
            pattern, options = source.filename_pattern(), dict(source.storage_options or {})
            rows = old[old["product"] == source.product]
            known = dict(zip(rows["path"], zip(rows["size"], rows["mtime"], strict=True), strict=True))
            report.removed += sorted(set(known) - set(listing))
            same = []
            for path, (size, mtime) in listing.items():
                if path in known and known[path][0] == size and _same_mtime(known[path][1], mtime):
                    same.append(path)
                else:
                    tasks.append((pattern, path, size, mtime, options, path in known))
            report.unchanged += len(same)
            keep.append(rows[rows["path"].isin(same)])
        keep.append(old[~old["product"].isin(list(refreshed))])
        new_rows = self._read_all(tasks, report, executor, max_workers, stride) + stac_rows
        parts = [k for k in keep if len(k)] + ([pd.DataFrame(new_rows)] if new_rows else [])
        table = pd.concat([_typed(p) for p in parts], ignore_index=True) if parts else _empty_table()
        self._table = _typed(table.sort_values(["product", "start", "path"], kind="stable"))
        self._cache = None
        changed = bool(report.added or report.updated or report.removed)
        self._stored = self._stored and not changed
        for path, reason in report.skipped:  # said by the caller (CLI stderr, the Archive's reporter): once
            logger.debug("granule index: skipped %s: %s", path, reason)
        logger.info("%s", str(report).splitlines()[0])
        self.last_report = report
        if save or (save is None and self.path is not None and not self._stored):
            self._save_unless_pointless()
        return report

    def _save_unless_pointless(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path)) if self.path and _is_local(self.path) else None
        if len(self) or folder is None or os.path.isdir(folder):
            self.save()

    @staticmethod
    def _list(source: ProductSource, report: IndexReport) -> dict[str, tuple[int, float]] | None:
        """Map path -> (size, mtime) of every file of the product (None if it cannot be listed).

        Problems with the folder go to the report. A local archive is walked by :func:`_list_local` (symbolic links
        followed within the archive); a remote one is globbed with fsspec.
        """
        if _is_local(source.root_url):
            return _list_local(source, report)
        storage.register(source.root_url, source.storage_options)
        try:
            fs, root = storage.filesystem(source.root_url)
            fs.invalidate_cache()  # listings cached by the file system (s3fs keeps them) would hide what landed since
            if not fs.exists(root):
                report.skip(source.root_url, f"folder of {source.product} does not exist")
                return {}
            found = fs.glob(f"{root.rstrip('/')}/{source.glob}", detail=True)
        except Exception as e:  # noqa: BLE001 - an unreachable archive is reported, the other products go on
            report.skip(source.root_url, f"cannot be listed: {listing_reason(e)}; its index rows are kept")
            return None
        files = {p: i for p, i in found.items() if i.get("type", "file") == "file"}
        if not files:
            report.note_empty(source.root_url,
                              f"no {source.product} granule: no file matches {source.glob} in this folder")
        return {fs.unstrip_protocol(p): (int(i.get("size") or 0), _mtime(i)) for p, i in files.items()}

    def refresh_recent(self, sources: Iterable[ProductSource], days: int | None = None, now=None,
                       save: bool | None = None) -> IndexReport:
        """Index the granules that landed in the newest partition folders of ``sources`` (live products).

        Only the folders of the last ``days`` days (default: each product's ``live.days``, else 2) up to ``now``
        (UTC) are listed, from the product's ``partition`` template (e.g. ``{time:%Y/%m/%d}/``); files the index
        does not hold yet are read and added. Nothing else changes (a full :meth:`refresh` drops vanished files).
        """
        sources = list(sources)
        report = IndexReport(root=self.root or _common_root(sources))
        known = set(self._table["path"])
        tasks = []
        stac_rows: list[dict] = []
        for source in sources:
            n_days = days if days is not None else int((getattr(source, "live", None) or {}).get("days", 2))
            if getattr(source, "stac", None):  # the newest items of the STAC API's collection
                first = _as_time(now if now is not None else pd.Timestamp.now(tz="UTC")).normalize()
                since = first - pd.Timedelta(days=n_days - 1)
                found = _stac_rows(source, report, f"{since:%Y-%m-%dT%H:%M:%SZ}/..") or []
                stac_rows += [r for r in found if r["path"] not in known]
                report.added += [r["path"] for r in found if r["path"] not in known]
                continue
            listing = _list_recent(source, report, n_days, now)
            pattern, options = source.filename_pattern(), dict(source.storage_options or {})
            tasks += [(pattern, path, size, mtime, options, False) for path, (size, mtime) in listing.items()
                      if path not in known]
        new_rows = self._read_all(tasks, report, None, None, 16) + stac_rows
        if new_rows:
            table = pd.concat([self._table, _typed(pd.DataFrame(new_rows))], ignore_index=True)
            self._table = _typed(table.sort_values(["product", "start", "path"], kind="stable"))
            self._cache = None
            self._stored = False
        for path, reason in report.skipped:  # said by the caller (the Archive's reporter): once
            logger.debug("granule index: skipped %s: %s", path, reason)
        if new_rows and (save or (save is None and self.path is not None)):
            self._save_unless_pointless()
        return report

    @staticmethod
    def _read_all(tasks, report: IndexReport, executor, max_workers, stride) -> list[dict]:
        if not tasks:
            return []
        own = executor is None
        if own:
            executor = ThreadPoolExecutor(max_workers=max_workers or min(8, (os.cpu_count() or 1) + 2))
        try:
            futures = [
                (
                    path,
                    was_known,
                    executor.submit(_safe_read, pattern, path, size, mtime, options, stride),
                )
                for pattern, path, size, mtime, options, was_known in tasks
            ]
            rows = []
            for path, was_known, future in futures:
                try:
                    row, problem = future.result()
                except Exception as e:  # noqa: BLE001 - a task that died where it ran (a worker, a pickling failure)
                    row, problem = None, f"its geolocation task failed ({type(e).__name__}: {e})"
                if row is None:
                    report.skip(path, problem)
                    continue
                rows.append(row)
                (report.updated if was_known else report.added).append(path)
            return rows
        finally:
            if own:
                executor.shutdown()

    # queries -------------------------------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            t = self._table
            fps = t["footprint"].tolist()
            packed = (
                np.frombuffer(b"".join(fps), dtype=np.uint8).reshape(len(fps), FOOTPRINT_BYTES)
                if fps
                else np.zeros((0, FOOTPRINT_BYTES), dtype=np.uint8)
            )
            self._cache = {
                "product": t["product"].to_numpy(dtype=object),
                "start": t["start"].to_numpy(dtype="datetime64[ns]"),
                "end": t["end"].to_numpy(dtype="datetime64[ns]"),
                "lat_min": t["lat_min"].to_numpy(),
                "lat_max": t["lat_max"].to_numpy(),
                "footprint": packed,
            }
        return self._cache

    def query(self, product: str, start=None, end=None, bbox=None) -> pd.DataFrame:
        """Granules of ``product`` that overlap the time range [start, end) and touch the zone ``bbox``.

        ``start``/``end`` are times (naive = UTC; aware ones are converted); either may be None. ``bbox`` is
        ``(lon_min, lat_min, lon_max, lat_max)`` in degrees, ``lon_min > lon_max`` for a zone across the
        antimeridian; a granule matches when its footprint shares a 5° cell with the zone. Rows are sorted by
        start time.
        """
        a = self._arrays()
        keep = a["product"] == product
        if not keep.any() and product not in PATTERNS:
            raise UserInputError(f"unknown product {product!r}; known products: {', '.join(PATTERNS)}")
        if start is not None:
            keep &= a["end"] > np.datetime64(_as_time(start).to_datetime64(), "ns")
        if end is not None:
            keep &= a["start"] < np.datetime64(_as_time(end).to_datetime64(), "ns")
        if bbox is not None:
            lon_min, lat_min, lon_max, lat_max = _check_bbox(bbox)
            keep &= (a["lat_max"] >= lat_min - CELL_DEG) & (a["lat_min"] <= lat_max + CELL_DEG)
            zone = np.packbits(bbox_cells(bbox))
            candidates = np.flatnonzero(keep)
            hits = (a["footprint"][candidates] & zone).any(axis=1)
            keep[:] = False
            keep[candidates[hits]] = True
        return self._table.iloc[np.flatnonzero(keep)].sort_values("start", kind="stable").reset_index(drop=True)

    def orbits_for_day(self, day, bbox=None, product: str = "tropomi_so2") -> pd.DataFrame:
        """The orbits of ``product`` during the UTC day ``day`` that touch ``bbox``, one row per orbit.

        Columns: ``orbit``, ``start``, ``end``, ``label`` ("#18112: 00:30 → 01:21"), ``mode``, ``paths`` (the
        files to read, in time order), ``path`` (the first). When an orbit is in several streams, offline
        (OFFL/RPRO, of the highest collection and processor) wins over near-real-time (NRTI, whose 5-minute
        pieces are then gathered). Granules without an orbit number (CALIOP) are one row each.
        """
        t0 = _as_time(day).normalize()
        rows = self.query(product, t0, t0 + pd.Timedelta(days=1), bbox)
        keys = ["orbit", "start", "end", "mode", "collection", "processor", "path"]
        groups: dict[Any, list[dict]] = {}
        for rec in rows[keys].to_dict("records"):  # a day has a handful of rows: plain Python beats pandas here
            key = rec["path"] if pd.isna(rec["orbit"]) else int(rec["orbit"])
            groups.setdefault(key, []).append(rec)
        out = [_orbit_row(group) for group in groups.values()]
        out.sort(key=lambda r: r["start"])
        columns = ["orbit", "start", "end", "label", "mode", "paths", "path"]
        table = pd.DataFrame({c: [r[c] for r in out] for c in columns})
        table["orbit"] = table["orbit"].astype("Int64")
        return table


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _version(rec: dict) -> tuple:
    def num(v):
        return -1 if pd.isna(v) else int(v)

    return (num(rec["collection"]), num(rec["processor"]))


def _compare(rows: pd.DataFrame, found: list[dict], report: IndexReport) -> None:
    """Note in ``report`` what a product's new rows add, change and remove against its rows in the index."""
    known = dict(zip(rows["path"], zip(rows["size"], rows["mtime"], strict=True), strict=True))
    paths = {r["path"] for r in found}
    report.removed += sorted(set(known) - paths)
    for r in found:
        if r["path"] not in known:
            report.added.append(r["path"])
        elif known[r["path"]][0] == r["size"] and _same_mtime(known[r["path"]][1], r["mtime"]):
            report.unchanged += 1
        else:
            report.updated.append(r["path"])


def _orbit_row(group: list[dict]) -> dict:
    """One orbit from its granules: the best offline file, else every near-real-time piece in time order."""
    offline = [r for r in group if _text(r["mode"]) != "NRTI"]
    chosen = [max(offline, key=_version)] if offline else sorted(group, key=lambda r: r["start"])
    orbit = chosen[0]["orbit"]
    start, end = min(r["start"] for r in chosen), max(r["end"] for r in chosen)
    return {
        "orbit": None if pd.isna(orbit) else int(orbit),
        "start": start,
        "end": end,
        "label": _orbit_label(None if pd.isna(orbit) else int(orbit), start, end),
        "mode": chosen[0]["mode"],
        "paths": [r["path"] for r in chosen],
        "path": chosen[0]["path"],
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _same_mtime(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) < 1e-6


def _orbit_label(orbit: int | None, start: pd.Timestamp, end: pd.Timestamp) -> str:
    times = f"{start:%H:%M} → {end:%H:%M}"
    return times if orbit is None else f"#{orbit}: {times}"


def open_index(
    cat=None,
    path: str | os.PathLike | None = None,
    refresh: bool = True,
    products: Iterable[str] | None = None,
    executor=None,
    max_workers: int | None = None,
) -> GranuleIndex:
    """The granule index of a catalogue (default: :func:`app.data.catalog.open_catalog`), refreshed and saved.

    ``path`` defaults to :func:`index_path` of the archive (the user's state folder). The refresh's
    :class:`IndexReport` is in ``index.last_report``. An empty index of a missing archive folder is not written.
    """
    index = GranuleIndex.for_catalog(cat, path=path, products=products)
    if refresh:
        index.refresh(executor=executor, max_workers=max_workers)
    return index


def index_path(archive_root: str | os.PathLike) -> str:
    """Where the index of the archive at ``archive_root`` is kept: ``<state folder>/archives/<archive>/index.parquet``.

    Never inside the archive (real archives are read-only and shared); see :mod:`app.core.state`.
    """
    return str(archive_state_dir(archive_root) / INDEX_FILENAME)


def _common_root(sources: list) -> str | None:
    roots = [s.root_url.rstrip("/") for s in sources if getattr(s, "root_url", None)]
    if not roots:
        return None
    if all(_is_local(r) for r in roots):
        return os.path.commonpath(roots)
    return None  # remote folders are named by their URLs
