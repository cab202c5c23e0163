"""Sample NWC SAF GEO cloud top temperature and height (CTTH) files, on an imager's fixed grid.

``S_NWC_CTTH_{platform}_{region}_{YYYYmmddTHHMMSS}Z.nc`` (platform as NWC SAF names it: ``GOES16``, ``GOES17``,
``MSG4``, ``MSG1``, ``HIMAWARI8``; region e.g. ``FULL-DISK``), under ``out_root/nwcsaf_ctth/{platform}/YYYY/MM/DD/``.
The cloud tops are the scene model's (:func:`app.sample.geo.scene.grid_cloud_top`), the same the imager's infrared
channels see on the same grid: height above sea level, the standard-atmosphere temperature and pressure there, and
the effective cloudiness (fraction × emissivity). Clear and off-disk pixels hold the fill value. See
:mod:`app.data.nwcsaf` for the format as satpy's ``nwcsaf-geo`` reader reads it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from app.data.filenames import nwcsaf_ctth_filename
from app.data.geo_bands import FULL_DISK, geo_platform
from app.data.nwcsaf import CTTH_ENCODING, ctth_flag_meanings
from app.sample.geo.scene import GeoGrid, grid_cloud_top

__all__ = ["write_ctth_slot", "ctth_dir", "DEMO_GRID_RESOLUTION_KM", "NWCSAF_VERSIONS", "nwcsaf_version_for"]

#: Demo full-disk grids per sensor (whole factors of the real ones): ABI 16 km (678²), AHI 20 km (550²),
#: SEVIRI 12 km (928²), FCI 16 km (696²).
DEMO_GRID_RESOLUTION_KM = {"abi": 16.0, "ahi": 20.0, "seviri": 12.0, "fci": 16.0}

#: NWC/GEO software versions whose product layout the writer knows: v2018 variables are ``(ny, nx)``; v2025
#: puts a leading ``time`` dimension of length 1 on every variable and drops ``nominal_product_time``.
NWCSAF_VERSIONS = ("v2018", "v2025")


def nwcsaf_version_for(time) -> str:
    """The NWC/GEO version of a slot's product: v2025 for slots from 2025 on, v2018 before."""
    return "v2025" if _as_datetime(time).year >= 2025 else "v2018"

#: Opaque clouds (effective cloudiness at least this) are retrieved by the "opaque cloud" method.
OPAQUE_EFFECTIVE_CLOUDINESS = 0.9


def _as_datetime(time) -> dt.datetime:
    return np.datetime64(time, "s").astype(dt.datetime)


def ctth_dir(out_root, nwcsaf_platform: str, time) -> Path:
    """The folder of a CTTH file: ``out_root/nwcsaf_ctth/{platform}/YYYY/MM/DD``."""
    t = _as_datetime(time)
    return Path(out_root) / "nwcsaf_ctth" / nwcsaf_platform / f"{t:%Y}" / f"{t:%m}" / f"{t:%d}"


def _palette(n: int) -> np.ndarray:
    """A rainbow of n RGB colours (dark blue -> red), uint8."""
    x = np.linspace(0.0, 1.0, n)
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.stack([r, g, b], axis=1) * 255).round().astype(np.uint8)


def _gdal_projection(grid: GeoGrid) -> str:
    p = grid.projection
    text = f"+proj=geos +a={p.a:.3f} +b={p.b:.5f} +lon_0={p.lon_0:.6f} +h={p.h:.3f}"
    return text + (" +sweep=x" if p.sweep == "x" else "")


def _encode(name: str, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    enc = CTTH_ENCODING[name]
    stored = np.rint((np.where(valid, values, 0.0) - enc["add_offset"]) / enc["scale_factor"])
    stored = np.clip(stored, *enc["valid_range"])
    return np.where(valid, stored, enc["_FillValue"]).astype(enc["dtype"])


def _illumination(lat, lon, time) -> np.ndarray:
    """1 night, 2 day, 3 twilight (solar zenith angle ≥ 95°, < 80°, between)."""
    from pyorbital.astronomy import sun_zenith_angle

    sza = sun_zenith_angle(_as_datetime(time), np.nan_to_num(lon), np.nan_to_num(lat))
    return np.where(sza < 80.0, 2, np.where(sza >= 95.0, 1, 3))


def _create_variables(nc, grid: GeoGrid, version: str = "v2018") -> None:
    ny, nx = grid.shape
    timed = version == "v2025"
    if timed:
        nc.createDimension("time", 1)
    dims = ("time", "ny", "nx") if timed else ("ny", "nx")
    nc.createDimension("nx", nx)
    nc.createDimension("ny", ny)
    nc.createDimension("pal_colors_250", 250)
    nc.createDimension("pal_rgb", 3)
    for name, values, axis in (("nx", grid.x_m, "X"), ("ny", grid.y_m, "Y")):
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts({"long_name": f"{axis} Georeferenced Coordinate for each pixel count",
                     "standard_name": f"projection_{axis.lower()}_coordinate", "units": "m", "axis": axis})
        v[:] = values
    chunk = (1,) * timed + (min(ny, 256), min(nx, 256))
    for name, enc in CTTH_ENCODING.items():
        v = nc.createVariable(name, enc["dtype"], dims, zlib=True, complevel=4, shuffle=True,
                              chunksizes=chunk, fill_value=np.array(enc["_FillValue"], dtype=enc["dtype"]))
        v.set_auto_maskandscale(False)
        attrs = {k: enc[k] for k in ("long_name", "standard_name", "units") if k in enc}
        if "scale_factor" in enc and enc.get("scaled", True):
            attrs["scale_factor"] = np.float32(enc["scale_factor"])
            attrs["add_offset"] = np.float32(enc["add_offset"])
        attrs["valid_range"] = np.array(enc["valid_range"], dtype=enc["dtype"])
        flags = ctth_flag_meanings(name)
        if flags is not None:
            key, values, meanings = flags
            attrs[key] = np.array(values, dtype=enc["dtype"])
            attrs["flag_meanings"] = " ".join(meanings)
        attrs["coordinates"] = "ny nx"
        if name in ("ctth_alti", "ctth_pres", "ctth_tempe", "ctth_effectiv"):
            attrs["ancillary_variables"] = "ctth_status_flag ctth_conditions ctth_quality"
        v.setncatts(attrs)
        if name in ("ctth_alti", "ctth_pres", "ctth_tempe", "ctth_effectiv"):
            pal = nc.createVariable(f"{name}_pal", "u1", ("pal_colors_250", "pal_rgb"))
            lo, hi = enc["valid_range"]
            pal.setncatts({
                "long_name": f"RGB Palette for {name}",
                "palette_meanings": " ".join(str(int(round(m))) for m in np.linspace(lo, hi, 250)),
                "fill_value_color": np.array([0, 0, 0], dtype=np.uint8),
            })
            pal[:] = _palette(250)


def write_ctth_slot(scenario, platform: str, time, out_root, grid: GeoGrid | None = None, *,
                    region: str | None = None, max_block_pixels: int = 1_000_000,
                    version: str | None = None) -> Path:
    """Write one NWC SAF GEO CTTH file for a slot; return its path.

    ``version``: the NWC/GEO product layout, ``v2018`` or ``v2025`` (a leading ``time`` dimension, no
    ``nominal_product_time``); default :func:`nwcsaf_version_for` the slot.

    ``platform``: our key (``G16``) or NWC SAF's id (``GOES16``, ``MSG4``, ``MSG1``, ``HIMAWARI8``). ``grid``: the
    imager's grid (default: the platform's full disk at the demo resolution of :data:`DEMO_GRID_RESOLUTION_KM`,
    the grid the sample imager files use). ``region`` names it in the file name (default: the grid's name,
    ``FULL-DISK``).
    """
    import netCDF4

    p = geo_platform(platform)
    version = version or nwcsaf_version_for(time)
    if version not in NWCSAF_VERSIONS:
        raise ValueError(f"unknown NWC/GEO version {version!r}; known: {', '.join(NWCSAF_VERSIONS)}")
    if grid is None:
        grid = GeoGrid.full_disk(p.key, DEMO_GRID_RESOLUTION_KM[p.sensor])
    if grid.platform != p.key:
        raise ValueError(f"the grid is {grid.platform}'s, not {p.key}'s")
    region = region or grid.name
    slot = _as_datetime(time)
    repeat = FULL_DISK[p.sensor].repeat_minutes
    path = ctth_dir(out_root, p.nwcsaf_id, slot) / nwcsaf_ctth_filename(slot, p.nwcsaf_id, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        _create_variables(nc, grid, version)
        slot64 = np.datetime64(slot)
        for rows in grid.row_blocks(max_block_pixels):
            ct = grid_cloud_top(scenario, grid, slot64, rows)
            lat, lon = grid.lonlat(rows)
            _write_rows(nc, (0, rows) if version == "v2025" else (rows,), ct, lat, lon, slot64)
        x0, y0, x1, y1 = grid.area_extent_m
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        nc.setncatts({
            "Conventions": "CF-1.6",
            "title": "NWC GEO Cloud Top Temperature and Height",
            "institution": "Fumarole sample archive (synthetic; the format of EUMETSAT NWC SAF)",
            "source": "NWC/GEO version v2025.1" if version == "v2025" else "NWC/GEO version v2018",
            "comment": "Synthetic cloud tops from a scenario model, not real data.",
            "product_name": "CTTH",
            "product_version": "6.0" if version == "v2025" else "4.0",
            "satellite_identifier": p.nwcsaf_id,
            "sub-satellite_longitude": np.float32(p.sub_lon),
            "region_name": region,
            "spatial_resolution": f"{grid.resolution_km:.1f}",
            "nominal_product_time": slot.strftime(fmt),
            "time_coverage_start": (slot + dt.timedelta(seconds=20)).strftime(fmt),
            "time_coverage_end": (slot + dt.timedelta(minutes=repeat, seconds=-9)).strftime(fmt),
            "gdal_projection": _gdal_projection(grid),
            "gdal_xgeo_up_left": x0,
            "gdal_ygeo_up_left": y1,
            "gdal_xgeo_low_right": x1,
            "gdal_ygeo_low_right": y0,
        })
        if version == "v2025":
            nc.delncattr("nominal_product_time")  # v2025 files carry the slot in the file name only
    except BaseException:
        nc.close()
        path.unlink(missing_ok=True)
        raise
    nc.close()
    return path


def _write_rows(nc, rows: tuple, ct, lat, lon, time) -> None:
    """Write one block of rows; ``rows`` is the index before the columns (``(slice,)`` or ``(0, slice)``)."""
    on_disk = np.isfinite(lat)
    cloudy = ct.cloudy & on_disk
    eff = ct.effective_cloudiness
    opaque = eff >= OPAQUE_EFFECTIVE_CLOUDINESS
    nc.variables["ctth_alti"][(*rows, slice(None))] = _encode("ctth_alti", ct.height_km * 1000.0, cloudy)
    nc.variables["ctth_pres"][(*rows, slice(None))] = _encode("ctth_pres", ct.pressure_hpa * 100.0, cloudy)
    nc.variables["ctth_tempe"][(*rows, slice(None))] = _encode("ctth_tempe", ct.temperature_k, cloudy)
    nc.variables["ctth_effectiv"][(*rows, slice(None))] = _encode("ctth_effectiv", eff, cloudy)
    method = np.where(cloudy, np.where(opaque, 1, 3), 0)
    nc.variables["ctth_method"][(*rows, slice(None))] = _encode("ctth_method", method, on_disk)
    illumination = _illumination(lat, lon, time)
    conditions = illumination | (1 << 4) | (1 << 6)  # satellite data and NWP data both available
    nc.variables["ctth_conditions"][(*rows, slice(None))] = _encode("ctth_conditions", conditions, on_disk)
    quality = np.where(cloudy, np.where(opaque, 1, 2), 0)  # processing: 1 good, 2 questionable; 0 not processed
    nc.variables["ctth_quality"][(*rows, slice(None))] = _encode("ctth_quality", quality, on_disk)
    status = np.where(cloudy, 1 | np.where(opaque, 0, 2), 0)  # bit 0 height retrieved, bit 1 semi-transparent
    nc.variables["ctth_status_flag"][(*rows, slice(None))] = _encode("ctth_status_flag", status, on_disk)
