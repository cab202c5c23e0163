"""One satpy-backed loader shared by every GEO imager reader: satpy reads the format, we keep the canonical GeoScene.

Satpy (pytroll) maintains the readers of the field — ``abi_l1b``, ``ahi_hsd``, ``seviri_l1b_nc``/``_native``/
``_hrit``, ``fci_l1c_nc`` … — so new platforms, format revisions and remote files come with it. What it returns
is a ``Scene`` of dask-backed DataArrays named by the sensor's own bands on the sensor's own areas; what
everything above ``app/data`` wants is one small ``xarray.Dataset`` per slot (the canonical GeoScene of
``docs/architecture.md``). :func:`load_canonical` does the translation once for every sensor:

1. every file must exist; the caller's ``check`` (cheap structural checks: names, headers) runs first;
2. ``satpy.Scene(filenames=…, reader=…)`` and ``Scene.load`` of the satpy dataset of each generic channel, with
   the calibration the channel's quantity calls for (``reflectance`` in %, ``brightness_temperature`` in K);
3. the arrays are computed with dask's synchronous scheduler while holding :data:`app.core.locks.HDF_LOCK`
   (netCDF-C/HDF5 are not thread-safe; the synchronous scheduler keeps every read on the calling thread, so the
   lock really covers them — and on a full-disk slot it is as fast as dask's threads: docs/benchmarks.md);
4. the result is oriented north-up/west-left, bands on finer grids are averaged over whole blocks onto the
   coarsest grid asked for (their area extents must agree to 5 % of a coarse pixel), cast to float32, and
   given x/y in metres from satpy's ``AreaDefinition`` and the canonical attributes.

Errors: anything satpy or the file libraries raise, a file satpy does not take, a channel it cannot load, is a
:class:`~app.data.errors.GranuleError` naming the file(s) by name and the reason. When satpy fails the caller's
``diagnose`` runs first: it re-checks the files one by one with the format's own rules so that the error names
the one damaged file ("… is truncated: …") rather than the slot.

Platforms: satpy's ``platform_name`` (``GOES-18``, ``Himawari-9``, ``Meteosat-12`` …) is mapped to our platform
key through :data:`app.data.geo_bands.GEO_PLATFORMS` (by ``name``), read at call time so an edit of the platform
table reaches every reader; a platform the table lacks keeps satpy's short name (or its full name) as key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.core.timefmt import iso_utc
from app.data.errors import GranuleError

__all__ = ["load_canonical", "platform_key", "SCHEDULER", "localised", "basename", "is_remote"]

log = logging.getLogger(__name__)

#: The dask scheduler satpy's arrays are computed with ("sync": on the calling thread, inside the lock).
SCHEDULER = "sync"
#: How far (fraction of a coarse pixel) a finer band's area extent may be from the coarse one to be averaged onto it.
NEST_TOLERANCE = 0.05

Check = Callable[[list[Path]], None]


def is_remote(path: str | os.PathLike) -> bool:
    """Whether a file is a URL read through fsspec (:mod:`app.data.storage`), not a local path."""
    from app.data import storage

    return storage.is_remote(os.fspath(path))


def basename(path: str | os.PathLike) -> str:
    """The file name of a local path or a URL (``Path`` would fold a URL's ``//``)."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def _renamed(exc: GranuleError, back: Mapping[str, str]) -> GranuleError:
    """A GranuleError about a local copy, said of the URL it is a copy of (its reason's mentions too)."""
    path = str(exc.path)
    url = back.get(path)
    if url is None:
        return exc
    problem = exc.problem.replace(path, url)
    for local, remote in back.items():
        problem = problem.replace(local, remote)
    out = GranuleError(url, problem)
    out.__cause__ = exc.__cause__
    return out


@contextlib.contextmanager
def localised(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[list[Path], dict[str, str]]]:
    """Local paths of a slot's files, for readers that need a path (HSD ``.DAT.bz2``, SEVIRI native/HRIT/netCDF).

    Local files are given as they are. Remote ones (URLs) are copied by :func:`app.data.storage.local_copy` into
    the per-user cache (kept, bounded, reused: a second read transfers nothing) and shown under their own file
    names in a temporary folder of links (satpy chooses its readers' files by name). Yields the local paths and
    the map local path -> URL; a :class:`GranuleError` raised inside about a local copy is re-raised about its URL.
    """
    from app.data import storage

    names = [os.fspath(p) for p in paths]
    if not any(storage.is_remote(n) for n in names):
        yield [Path(n) for n in names], {}
        return
    with contextlib.ExitStack() as stack:
        links = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fumarole-slot-")))
        local: list[Path] = []
        back: dict[str, str] = {}
        for name in names:
            if not storage.is_remote(name):
                local.append(Path(name))
                continue
            copy = stack.enter_context(storage.local_copy(name))
            link = links / basename(name)
            link.symlink_to(copy)
            local.append(link)
            back[str(link)] = name
            back[str(copy)] = name
        try:
            yield local, back
        except GranuleError as exc:
            raise _renamed(exc, back) from exc.__cause__


def _read_scalars_through_h5netcdf() -> None:
    """Let satpy's netCDF handlers read scalar variables of files opened with h5netcdf (every ``FSFile``).

    satpy 0.60's ``NetCDF4FileHandler.get_and_cache_npxr`` reads a variable with ``v[:]`` and handles a scalar only
    by the ``IndexError`` netCDF4 raises; h5py raises ``ValueError("Illegal slicing argument for scalar
    dataspace")`` instead. So the FCI L1c reader fails on a remote file (its
    ``measured/radiance_unit_conversion_coefficient`` is a scalar), found by ``tests/test_geo_fci.py``. This wraps
    the method once: on that very error the scalar is read with ``v[()]`` and cached as satpy would; anything else
    is raised as before. (satpy's own ``_get_data`` helper already catches both errors.)
    """
    from satpy.readers.core import netcdf as satpy_netcdf

    cls = satpy_netcdf.NetCDF4FileHandler
    original = cls.get_and_cache_npxr
    if getattr(original, "_fumarole_scalars", False):
        return

    def get_and_cache_npxr(self, var_name):
        try:
            return original(self, var_name)
        except ValueError as exc:
            if "scalar dataspace" not in str(exc):
                raise
            v = self.file_content[var_name]
            val = xr.DataArray(np.asarray(v[()]), dims=(), attrs=self.accessor.get_object_attrs(v), name=var_name)
            self.cached_file_content[var_name] = val
            return val

    get_and_cache_npxr._fumarole_scalars = True
    cls.get_and_cache_npxr = get_and_cache_npxr


def _storage_file(url: str, stack: contextlib.ExitStack):
    """A satpy ``FSFile`` of a URL whose ``open()`` is :func:`app.data.storage.open_binary`.

    Byte ranges through a bounded block cache, counted in the transfer statistics; closed with ``stack``.
    """
    from satpy.readers.core.remote import FSFile

    from app.data import storage

    _read_scalars_through_h5netcdf()

    class _StorageFile(FSFile):
        def open(self, *args, **kwargs):  # noqa: A003 - satpy's name
            return stack.enter_context(storage.open_binary(url))

    return _StorageFile(url)


def platform_key(platform_name: str, short_name: str | None = None) -> str:
    """Our platform key (``G18``, ``H09``, ``MSG4`` …) of satpy's ``platform_name``; else its short name."""
    from app.data import geo_bands  # at call time: the platform table is data and may be extended

    for platform in geo_bands.GEO_PLATFORMS.values():
        if platform.name.lower() == str(platform_name).lower():
            return platform.key
    if short_name and short_name in geo_bands.GEO_PLATFORMS:
        return short_name
    return short_name or str(platform_name)


def _platform_name(key: str, fallback: str) -> str:
    from app.data import geo_bands

    p = geo_bands.GEO_PLATFORMS.get(key)
    return p.name if p is not None else fallback


def _names(paths: Sequence[Path], limit: int = 4) -> str:
    shown = ", ".join(basename(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _fail(paths: list[Path], reader: str, reason: str) -> GranuleError:
    if len(paths) == 1:
        return GranuleError(paths[0], f"cannot be read by satpy's {reader} reader: {reason}")
    return GranuleError(paths[0], f"this slot's files ({_names(paths)}) cannot be read by satpy's {reader} "
                                  f"reader: {reason}")


def _diagnosed(diagnose: Check | None, paths: list[Path], reader: str, reason: str) -> GranuleError:
    """The caller's precise error for ``paths`` if its checks find one, else a sentence with satpy's reason."""
    if diagnose is not None:
        try:
            diagnose(paths)
        except GranuleError as exc:
            return exc
        except Exception as exc:  # a diagnosis that itself fails must not hide the first reason
            log.debug("diagnosis of %s failed: %s", _names(paths), exc)
    return _fail(paths, reader, reason)


def _files_without_handler(scene, paths: list[Path]) -> list[Path]:
    """The files satpy made no file handler for (names it does not match, or filtered out by their metadata)."""
    handlers = [fh for r in scene._readers.values()  # satpy has no public list of its file handlers
                for fhs in r.file_handlers.values() for fh in fhs]
    if len(handlers) >= len(paths):
        return []
    handled = {basename(str(fh.filename)) for fh in handlers}  # compressed files are handled from a copy
    orphans = [p for p in paths if basename(p) not in handled and basename(p).removesuffix(".bz2") not in handled]
    return orphans or paths


def _query(name: str, quantity: str):
    from satpy.dataset.dataid import DataQuery

    return DataQuery(name=name, calibration=quantity)


def _load_arrays(reader: str, paths: list[Path], queries: dict, reader_kwargs: dict | None,
                 diagnose: Check | None) -> dict[str, tuple[np.ndarray, dict]]:
    """Scene -> {generic: (numpy values, satpy attrs)}; called under the lock with warnings silenced."""
    import dask
    import satpy

    with contextlib.ExitStack() as stack:  # remote files: satpy FSFiles reading byte ranges, closed at the end
        files = [_storage_file(os.fspath(p), stack) if is_remote(p) else str(p) for p in paths]
        scene = satpy.Scene(filenames=files, reader=reader, reader_kwargs=reader_kwargs or {})
        return _scene_arrays(scene, reader, paths, queries, diagnose, dask)


def _scene_arrays(scene, reader: str, paths: list, queries: dict, diagnose: Check | None, dask
                  ) -> dict[str, tuple[np.ndarray, dict]]:
    orphans = _files_without_handler(scene, paths)
    if orphans:
        raise _diagnosed(diagnose, orphans, reader, "satpy does not recognise it as one of this reader's files "
                                                    "(wrong name, damaged header or another format)")
    scene.load(list(queries.values()))
    missing = [g for g, q in queries.items() if q not in scene]
    if missing:
        raise _diagnosed(diagnose, paths, reader, f"channel {', '.join(missing)} could not be loaded from them "
                                                  "(see the log for satpy's reason)")
    arrays = {g: scene[q] for g, q in queries.items()}
    with dask.config.set(scheduler=SCHEDULER):
        values = dask.compute(*[a.data for a in arrays.values()])
    return {g: (np.asarray(v), {**a.attrs, "_dims": a.dims}) for (g, a), v in zip(arrays.items(), values,
                                                                                 strict=True)}


def _north_up(values: np.ndarray, area) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values with row 0 at the north and column 0 at the west, and the x, y vectors (m) of their centres."""
    x, y = (np.asarray(v, dtype=np.float64) for v in area.get_proj_vectors())
    if x.size > 1 and x[1] < x[0]:
        values, x = values[:, ::-1], x[::-1]
    if y.size > 1 and y[1] > y[0]:
        values, y = values[::-1], y[::-1]
    return values, x, y


def _block_mean(data: np.ndarray, k: int) -> np.ndarray:
    ny, nx = data.shape
    return data.reshape(ny // k, k, nx // k, k).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def _onto(values: np.ndarray, area, coarse_area, coarse_shape, path: Path, band: str, coarse_band: str):
    """A finer band averaged over whole blocks onto the coarse grid (its area must cover the same extent)."""
    ny, nx = coarse_shape
    k = values.shape[1] // nx
    step = abs(coarse_area.pixel_size_x)
    extent_error = np.max(np.abs(np.subtract(area.area_extent, coarse_area.area_extent)))
    if k < 2 or values.shape != (ny * k, nx * k) or extent_error > NEST_TOLERANCE * step:
        raise GranuleError(path, f"{band} is on a {values.shape[0]} × {values.shape[1]} grid whose pixels do not "
                                 f"nest in the {ny} × {nx} grid of {coarse_band}")
    return _block_mean(values, k)


def _times(attrs: dict, slot_minutes: int) -> dict[str, str]:
    tp = attrs.get("time_parameters") or {}
    obs_start = tp.get("observation_start_time") or attrs["start_time"]
    obs_end = tp.get("observation_end_time") or attrs["end_time"]
    nominal = tp.get("nominal_start_time")
    if nominal is None:
        midnight = dt.datetime.combine(obs_start.date(), dt.time())
        step = dt.timedelta(minutes=slot_minutes)
        nominal = midnight + ((obs_start - midnight) // step) * step
    nominal_end = tp.get("nominal_end_time") or nominal + dt.timedelta(minutes=slot_minutes)
    return {"start_time": iso_utc(nominal), "end_time": iso_utc(nominal_end),
            "observation_start_time": iso_utc(obs_start), "observation_end_time": iso_utc(obs_end)}


def _projection(area) -> dict:
    with warnings.catch_warnings():  # pyproj warns that a PROJ dict loses information: we want only h, lon_0, sweep
        warnings.simplefilter("ignore")
        params = area.crs.to_dict()
    ellipsoid = area.crs.ellipsoid
    a, b = round(float(ellipsoid.semi_major_metre), 4), round(float(ellipsoid.semi_minor_metre), 5)
    h, lon_0, sweep = float(params["h"]), float(params.get("lon_0", 0.0)), str(params.get("sweep", "y"))
    return {"projection": "geos", "h": h, "a": a, "b": b, "lon_0": lon_0, "sweep": sweep,
            "crs_proj4": (f"+proj=geos +lon_0={lon_0:g} +h={h:.3f} +a={a:.3f} +b={b:.5f} +sweep={sweep} "
                          "+units=m +no_defs")}


def _sub_lon(attrs: dict, lon_0: float) -> float:
    orbit = attrs.get("orbital_parameters") or {}
    for name in ("satellite_nominal_longitude", "projection_longitude"):
        if orbit.get(name) is not None and np.isfinite(orbit[name]):
            return round(float(orbit[name]), 6)
    return lon_0


def _variable_attrs(sensor: str, band: str, generic: str, attrs: dict) -> dict:
    from app.data.geo_bands import GENERIC_CHANNELS

    solar = GENERIC_CHANNELS[generic].is_solar
    wavelength = attrs.get("wavelength")
    out = {
        "units": "%" if solar else "K",
        "standard_name": "toa_bidirectional_reflectance" if solar else "toa_brightness_temperature",
        "long_name": f"{sensor.upper()} {band} {'reflectance' if solar else 'brightness temperature'}",
        "band": band,
        "generic_wavelength_um": GENERIC_CHANNELS[generic].wavelength_um,
    }
    if wavelength is not None:
        out["central_wavelength_um"] = float(getattr(wavelength, "central", wavelength[1]))
    return out


def load_canonical(reader: str, paths: Sequence[str | Path], channels: Sequence[str], band_of: Mapping[str, str],
                   platform_key_of: Callable[[dict], str] | None = None, *, sensor: str, slot_minutes: int = 10,
                   reader_kwargs: dict | None = None, check: Check | None = None, diagnose: Check | None = None,
                   lock: bool = True) -> xr.Dataset:
    """Read ``channels`` (generic names, in this order) of one slot's ``paths`` with satpy's ``reader``.

    ``band_of`` maps each generic channel to the satpy dataset name (``ir_105`` -> ``C13``); reflective
    channels are loaded as ``reflectance`` (%), the others as ``brightness_temperature`` (K).
    ``platform_key_of(attrs)`` gives our platform key from the coarsest channel's satpy attributes (default:
    :func:`platform_key` of ``platform_name``, else satpy's ``platform_shortname``). ``slot_minutes`` is the
    repeat cycle used to round the scan start down to the nominal slot when the reader gives no nominal time;
    ``reader_kwargs`` go to satpy's reader. ``check(paths)`` runs before satpy and
    ``diagnose(paths)`` after a satpy failure; both raise :class:`GranuleError` naming the file at fault.
    ``lock`` holds :data:`~app.core.locks.HDF_LOCK` around satpy's load and compute (netCDF/HDF5 formats).

    Returns the canonical GeoScene (module docstring of :mod:`app.data.geo_abi`): dims (y, x), float32
    variables, x/y metres of the projection at pixel centres (row 0 north, x growing east) and the attributes
    ``platform``, ``platform_id``, ``sensor``, ``sub_lon``, ``start_time``/``end_time`` (nominal slot),
    ``observation_start_time``/``observation_end_time``, ``projection``, ``h``, ``a``, ``b``, ``lon_0``,
    ``sweep``, ``crs_proj4`` and ``source`` (the paths read).
    """
    from app.data import storage
    from app.data.geo_bands import GENERIC_CHANNELS

    paths = [os.fspath(p) if is_remote(p) else Path(p) for p in paths]
    for p in paths:
        if is_remote(p):
            storage.stamp(p)  # a missing object, bucket or wrong credentials: a GranuleError naming the URL
        elif not p.exists():
            raise GranuleError(p, "no such file")
    if any(is_remote(p) for p in paths):  # the checks read the files: on local copies, after a failure only
        check = None
        diagnose = _remote_diagnosis(diagnose)
    if check is not None:
        check(paths)
    queries = {g: _query(band_of[g], GENERIC_CHANNELS[g].quantity) for g in channels}
    try:
        with (HDF_LOCK if lock else contextlib.nullcontext()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = _load_arrays(reader, paths, queries, reader_kwargs, diagnose)
    except GranuleError:
        raise
    except Exception as exc:  # satpy and the file libraries raise anything: it is this file's fault, said so
        raise _diagnosed(diagnose, paths, reader, f"{type(exc).__name__}: {exc}") from None
    for generic, (values, attrs) in loaded.items():
        if values.ndim != 2 or attrs["_dims"] != ("y", "x"):
            raise _diagnosed(diagnose, paths, reader, f"channel {generic} ({band_of[generic]}) has dimensions "
                                                      f"{attrs['_dims']}, expected (y, x): transposed file?")
    return _to_dataset(loaded, list(channels), band_of, platform_key_of, sensor, slot_minutes, paths)


def _remote_diagnosis(diagnose: Check | None) -> Check | None:
    """``diagnose`` run on local copies of remote files (its error said of the URL)."""
    if diagnose is None:
        return None

    def run(paths: list) -> None:
        with localised(paths) as (local, _):
            diagnose(local)

    return run


def _to_dataset(loaded: dict, order: list[str], band_of: Mapping[str, str], platform_key_of, sensor: str,
                slot_minutes: int, paths: list[Path]) -> xr.Dataset:
    coarse = min(order, key=lambda g: loaded[g][0].shape[1])
    coarse_values, coarse_attrs = loaded[coarse]
    coarse_area = coarse_attrs["area"]
    _, x, y = _north_up(coarse_values[:1, :1], coarse_area)
    data_vars = {}
    for generic in order:
        values, attrs = loaded[generic]
        values, _, _ = _north_up(values, attrs["area"])
        if values.shape != coarse_values.shape:
            values = _onto(values, attrs["area"], coarse_area, coarse_values.shape, paths[0], band_of[generic],
                           band_of[coarse])
        data_vars[generic] = (("y", "x"), np.ascontiguousarray(values, dtype=np.float32),
                              _variable_attrs(sensor, band_of[generic], generic, attrs))
    projection = _projection(coarse_area)
    name = str(coarse_attrs.get("platform_name", ""))
    key = (platform_key_of(coarse_attrs) if platform_key_of
           else platform_key(name, coarse_attrs.get("platform_shortname")))
    attrs = {
        "platform": _platform_name(key, name),
        "platform_id": key,
        "sensor": sensor,
        "sub_lon": _sub_lon(coarse_attrs, projection["lon_0"]),
        **_times(coarse_attrs, slot_minutes),
        **projection,
        "source": [str(p) for p in paths],
        "reader": f"satpy {coarse_attrs.get('reader', '')}".strip(),
    }
    coords = {
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate",
                       "long_name": "geostationary projection x (scan angle × h)"}),
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate",
                       "long_name": "geostationary projection y (scan angle × h)"}),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
