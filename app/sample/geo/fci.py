"""Sample MTG-I FCI Level 1c FDHSI files: the scene model packed into the real chunked netCDF4 format.

The format (FCI L1 Product User Guide, EUMETSAT doc 45923; the layout satpy's ``fci_l1c_nc`` reader requires)
------------------------------------------------------------------------------------------------------------
A full-disk repeat cycle (10 min) is 40 *body chunks* (files), chunk 1 the southernmost strip, each named
``W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_<processing>_IDPFI_OPE_
<chunk start>_<chunk end>_N__O_<repeat cycle of the day>_<chunk>.nc`` (:func:`app.data.filenames.fci_l1c_filename`).
Every chunk holds all 16 channels, each in its group ``data/<channel>/measured``:

- ``effective_radiance (y, x)`` uint16 counts, radiance = counts × ``scale_factor`` + ``add_offset`` in
  mW m⁻² sr⁻¹ (cm⁻¹)⁻¹, ``valid_range`` [0, 4095], ``_FillValue`` 65535 off the Earth disk, ``warm_scale_factor``/
  ``warm_add_offset`` (used by ir_38 for counts above 4095), ``ancillary_variables`` ``pixel_quality``;
- ``x (x)``, ``y (y)`` uint16 pixel numbers (1-based over the full disk) with ``scale_factor``/``add_offset``
  giving the pixel-centre scan angles in radians: x is the azimuth, positive towards the west (negative scale),
  y the elevation, positive towards the north; rows run south to north (the image is "upside down");
- ``start_position_row``/``end_position_row``/``_column``: where the chunk sits in the full disk (1-based);
- the calibration: ``radiance_to_bt_conversion_coefficient_wavenumber``/``_a``/``_b`` and
  ``radiance_to_bt_conversion_constant_c1``/``_c2`` (``BT = c2 ν / (a ln(1 + c1 ν³ / L)) − b / a``) for the IR
  channels, ``channel_effective_solar_irradiance`` (reflectance ``100 π L d² / cesi``) for the solar ones, the other
  kind being the fill value; ``radiance_unit_conversion_coefficient``;
- ``pixel_quality`` and ``index_map (y, x)``: each pixel's quality flag and the index of its scan swath in the
  chunk's per-swath tables below.

Outside the channel groups: the global attribute ``platform`` (``MTI1``), ``data/mtg_geos_projection`` (the grid
mapping: ``semi_major_axis`` 6378137 m, ``inverse_flattening`` 298.257223563, ``perspective_point_height``
35786400 m, ``longitude_of_projection_origin``, ``sweep_angle_axis`` y), and per swath (dimension ``index``):
``index``, ``time`` (s since 2000-01-01), ``data/swath_number``, ``data/swath_direction``,
``state/platform/subsatellite_latitude``/``_longitude``/``platform_altitude``,
``state/celestial/earth_sun_distance`` (km), ``subsolar_latitude``/``_longitude``, ``sun_satellite_distance``.

The sample
----------
The real FDHSI grid is 5568² at 2 km (infrared) and 11136² at 1 km (solar channels). A sample slot is written on
one grid coarser by a whole factor (``resolution_km``: 16 km gives 696², 48 km 232²) for every channel, with the
x/y ``scale_factor``/``add_offset`` adjusted together so the scan angles are those of the coarse pixel centres.
Satpy stacks the 40 chunks of a slot; it can pad missing chunks only on the real grid widths, so a sample slot is
always the 40 chunks (at least 40 rows). Radiances come from the scene model (:mod:`app.sample.geo.scene`) by
the inverse of the formulas above, with the nominal coefficients of :data:`app.data.geo_bands.FCI_BANDS`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from app.data.filenames import fci_l1c_filename
from app.data.geo_bands import FCI_BANDS, FULL_DISK, Band, geo_platform
from app.sample.geo.scene import GeoGrid, grid_cloud_top, simulate_channels

__all__ = ["write_fci_slot", "fci_slot_dir", "fci_grid", "fci_chunk_rows", "DEMO_RESOLUTION_KM", "N_CHUNKS",
           "radiance_from_bt", "radiance_from_reflectance", "C1", "C2"]

#: Pixel size of a demo slot at the sub-satellite point (696 × 696 for the full disk).
DEMO_RESOLUTION_KM = 16.0
#: Body chunks of a full-disk repeat cycle.
N_CHUNKS = 40
#: Radiation constants of the BT conversion as the files store them (mW m⁻² sr⁻¹ (cm⁻¹)⁻⁴ and K cm):
#: c1 = 2 h c² × 10¹¹, c2 = h c / k × 10² (CODATA 2018).
C1 = 2 * 6.62607015e-34 * 299792458.0**2 * 1e11
C2 = 6.62607015e-34 * 299792458.0 / 1.380649e-23 * 1e2
#: The scan: chunk 1 starts ~7 s after the slot, the 40 chunks take ~14 s each (FD scan ~9 min 20 s).
SCAN_START_S = 7.0
CHUNK_S = 14.0
#: Processing: a chunk's file is made ~4 min after its end.
PROCESSING_S = 240.0
#: Swaths (scan lines of the detector arrays) per chunk in the per-swath tables.
SWATHS_PER_CHUNK = 2
COUNT_FILL = 65535
COUNT_MAX = 4095
AU_KM = 149597870.7
_F32_FILL = np.float32(9.96921e36)
RADIANCE_UNITS = "mW.m-2.sr-1.(cm-1)-1"
#: pixel_quality values (FCI L1 PUG): 0 good, 3 not an Earth pixel (space).
QUALITY_GOOD, QUALITY_SPACE = 0, 3


def _as_datetime(time) -> dt.datetime:
    return np.datetime64(time, "us").astype(dt.datetime)


def fci_slot_dir(out_root, platform: str, time) -> Path:
    """The folder of a slot's chunks: ``out_root/fci/{platform}/YYYY/MM/DD``."""
    t = _as_datetime(time)
    return Path(out_root) / "fci" / platform / f"{t:%Y}" / f"{t:%m}" / f"{t:%d}"


def fci_grid(platform: str = "MTI1", resolution_km: float | None = DEMO_RESOLUTION_KM) -> GeoGrid:
    """The full-disk grid of a sample slot (the 2 km FDHSI grid coarsened by a whole factor; None: 2 km)."""
    return GeoGrid.full_disk(platform, resolution_km)


def fci_chunk_rows(n_rows: int, n_chunks: int = N_CHUNKS) -> list[tuple[int, int]]:
    """The (first, last) full-disk rows, 1-based from the south, of each chunk: as even as whole rows allow."""
    if n_rows < n_chunks:
        raise ValueError(f"a full disk of {n_rows} rows cannot be cut into {n_chunks} chunks of at least one row")
    edges = [round(i * n_rows / n_chunks) for i in range(n_chunks + 1)]
    return [(edges[i] + 1, edges[i + 1]) for i in range(n_chunks)]


def radiance_from_bt(bt_k, band: Band) -> np.ndarray:
    """Effective radiance (mW m⁻² sr⁻¹ (cm⁻¹)⁻¹) of a brightness temperature: the inverse of the PUG's formula."""
    cal = band.calibration
    nu, a, b = cal["wavenumber"], cal["a"], cal["b"]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return C1 * nu**3 / np.expm1(C2 * nu / (a * np.asarray(bt_k, dtype=np.float64) + b))


def radiance_from_reflectance(refl_pct, band: Band, earth_sun_au: float) -> np.ndarray:
    """Effective radiance of a reflectance (%): ``L = R/100 · cesi / (π d²)``."""
    cesi = band.calibration["channel_effective_solar_irradiance"]
    return np.asarray(refl_pct, dtype=np.float64) / 100.0 * cesi / (np.pi * earth_sun_au**2)


def _to_counts(radiance: np.ndarray, band: Band) -> np.ndarray:
    cal = band.calibration
    scale, offset = np.float32(cal["scale_factor"]), np.float32(cal["add_offset"])
    counts = np.rint((radiance - float(offset)) / float(scale))
    counts = np.clip(np.nan_to_num(counts, nan=0.0, posinf=COUNT_MAX, neginf=0.0), 0, COUNT_MAX)
    return np.where(np.isfinite(radiance), counts, COUNT_FILL).astype(np.uint16)


def _times(time) -> dict:
    slot = _as_datetime(time).replace(second=0, microsecond=0)
    starts = [slot + dt.timedelta(seconds=SCAN_START_S + CHUNK_S * i) for i in range(N_CHUNKS)]
    return {"slot": slot, "starts": starts, "ends": [s + dt.timedelta(seconds=CHUNK_S) for s in starts],
            "repeat_cycle": (slot.hour * 60 + slot.minute) // 10 + 1}


def _earth_sun_distance_au(t: dt.datetime) -> float:
    from pyorbital.astronomy import sun_earth_distance_correction

    return float(sun_earth_distance_correction(t))


def _subsolar(t: dt.datetime) -> tuple[float, float]:
    """Subsolar latitude and longitude (degrees) at ``t``."""
    from pyorbital.astronomy import jdays2000, sun_ra_dec

    ra, dec = sun_ra_dec(t)
    gmst = np.deg2rad((280.46061837 + 360.98564736629 * jdays2000(t)) % 360.0)
    lon = (np.rad2deg(ra - gmst) + 180.0) % 360.0 - 180.0
    return float(np.rad2deg(dec)), float(lon)


def write_fci_slot(
    scenario,
    platform: str,
    time,
    out_root,
    *,
    resolution_km: float | None = DEMO_RESOLUTION_KM,
    folder: Path | None = None,
) -> list[Path]:
    """Write one full-disk FDHSI repeat cycle (40 body chunks) of FCI L1c files; return their paths, chunk 1 first.

    ``platform`` is ``MTI1`` (Meteosat-12); ``time`` the slot (``2025-07-07T12:00``; the repeat cycle of the
    10-minute slot it falls in). ``resolution_km`` is the pixel size at the sub-satellite point of every channel's
    grid (a whole multiple of 2 km; None: the 2 km infrared grid). Every chunk holds all 16 channels, as the real
    files do (satpy's reader refuses a chunk without one of them). ``folder`` defaults to :func:`fci_slot_dir`.
    """
    p = geo_platform(platform)
    if p.sensor != "fci":
        raise ValueError(f"{platform} carries {p.sensor.upper()}, not FCI")
    bands = list(FCI_BANDS.values())
    grid = fci_grid(p.key, resolution_km)
    times = _times(time)
    folder = Path(folder) if folder is not None else fci_slot_dir(out_root, p.key, times["slot"])
    folder.mkdir(parents=True, exist_ok=True)
    esd = _earth_sun_distance_au(times["slot"])
    slot64 = np.datetime64(times["slot"])
    n = grid.n_rows
    chunks = fci_chunk_rows(n)
    paths: list[Path] = []
    try:
        for c, (first, last) in enumerate(chunks, start=1):
            # full-disk rows first..last (1-based from the south) are GeoGrid rows n-last .. n-first (north first)
            rows = slice(n - last, n - first + 1)
            lat, lon = grid.lonlat(rows)
            clouds = grid_cloud_top(scenario, grid, slot64, rows)
            values = simulate_channels(scenario, lat, lon, slot64, p.sub_lon, [b.generic for b in bands],
                                       sat_height_m=p.projection.h, cloud_tops=clouds)
            end = times["ends"][c - 1]
            name = fci_l1c_filename(times["starts"][c - 1], end, c, times["repeat_cycle"], platform=p.key,
                                    created=end + dt.timedelta(seconds=PROCESSING_S))
            path = folder / name
            paths.append(path)
            _write_chunk(path, p, grid, bands, c, (first, last), {k: v[::-1] for k, v in values.items()},
                         np.isfinite(lat[::-1]), times, esd)
    except BaseException:
        for path in paths:  # no half-written slot may look like a real one
            path.unlink(missing_ok=True)
        raise
    return paths


def _scalar(group, name: str, value, dtype="f4", **attrs) -> None:
    fill = _F32_FILL if dtype == "f4" else None
    v = group.createVariable(name, dtype, (), fill_value=fill)
    v.setncatts(attrs)
    v[...] = value


def _write_chunk(path: Path, p, grid: GeoGrid, bands: list[Band], chunk: int, rows: tuple[int, int],
                 values: dict[str, np.ndarray], on_disk: np.ndarray, times: dict, esd: float) -> None:
    import netCDF4

    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        _write_globals(nc, p, chunk, times)
        _write_projection(nc, p)
        swath_of_row = _write_swath_tables(nc, p, chunk, rows, times, esd)
        for band in bands:
            _write_channel(nc, grid, band, rows, values[band.generic], on_disk, swath_of_row, esd)
    except BaseException:
        nc.close()
        path.unlink(missing_ok=True)
        raise
    nc.close()


def _write_globals(nc, p, chunk: int, times: dict) -> None:
    fmt = "%Y-%m-%dT%H:%M:%S"
    nc.setncatts({
        "Conventions": "CF-1.7",
        "title": "FCI L1c Radiances",
        "institution": "Fumarole sample archive (synthetic; the format of EUMETSAT FCI L1c FDHSI)",
        "comment": "Synthetic radiances from a scenario model, not real data.",
        "platform": p.key,
        "data_source": "FCI",
        "processing_level": "1C",
        "type": "FDHSI",
        "coverage": "FD",
        "repeat_cycle_in_day": np.int32(times["repeat_cycle"]),
        "count_in_repeat_cycle": np.int32(chunk),
        "time_coverage_start": times["starts"][chunk - 1].strftime(fmt),
        "time_coverage_end": times["ends"][chunk - 1].strftime(fmt),
    })


def _write_projection(nc, p) -> None:
    data = nc.createGroup("data")
    proj = data.createVariable("mtg_geos_projection", "i4", ())
    a, b = p.projection.a, p.projection.b
    proj.setncatts({
        "grid_mapping_name": "geostationary",
        "long_name": "MTG geostationary projection",
        "semi_major_axis": np.float64(a),
        "semi_minor_axis": np.float64(b),
        "inverse_flattening": np.float64(a / (a - b)),
        "perspective_point_height": np.float64(p.projection.h),
        "longitude_of_projection_origin": np.float64(p.projection.lon_0),
        "sweep_angle_axis": p.projection.sweep,
    })
    proj[...] = -2147483647


def _write_swath_tables(nc, p, chunk: int, rows: tuple[int, int], times: dict, esd: float) -> np.ndarray:
    """The per-swath tables (dimension ``index``); returns each chunk row's swath index."""
    n_rows = rows[1] - rows[0] + 1
    k = min(SWATHS_PER_CHUNK, n_rows)
    index = (chunk - 1) * SWATHS_PER_CHUNK + np.arange(k) + 1
    nc.createDimension("index", k)
    v = nc.createVariable("index", "u2", ("index",))
    v.setncatts({"long_name": "index of the swath, referred to by each channel's index_map"})
    v[:] = index
    start = times["starts"][chunk - 1]
    t = np.array([(start - dt.datetime(2000, 1, 1)).total_seconds() + CHUNK_S * (i + 0.5) / k for i in range(k)])
    tv = nc.createVariable("time", "f8", ("index",), fill_value=np.float64(9.969209968386869e36))
    tv.setncatts({"units": "seconds since 2000-01-01 00:00:00.0", "long_name": "time of the swath"})
    tv[:] = t
    data = nc["data"]
    for name, value, dtype in (("swath_number", index, "u2"), ("swath_direction", np.arange(k) % 2, "u1")):
        var = data.createVariable(name, dtype, ("index",))
        var[:] = value
    sub_lat, sub_lon = _subsolar(start)
    state = nc.createGroup("state")
    tables = {
        "platform": {"subsatellite_latitude": (0.0, "degrees_north"), "subsatellite_longitude": (p.sub_lon,
                                                                                                 "degrees_east"),
                     "platform_altitude": (p.projection.h + p.projection.a, "m")},
        "celestial": {"earth_sun_distance": (esd * AU_KM, "km"), "subsolar_latitude": (sub_lat, "degrees_north"),
                      "subsolar_longitude": (sub_lon, "degrees_east"),
                      "sun_satellite_distance": (esd * AU_KM, "km")},
    }
    for group_name, variables in tables.items():
        g = state.createGroup(group_name)
        for name, (value, units) in variables.items():
            var = g.createVariable(name, "f8" if units in ("km", "m") else "f4", ("index",),
                                   fill_value=np.float64(9.969209968386869e36) if units in ("km", "m")
                                   else _F32_FILL)
            var.setncatts({"units": units})
            var[:] = np.full(k, value)
    # the rows of the chunk, south first, split evenly among its swaths
    return index[np.minimum(np.arange(n_rows) * k // n_rows, k - 1)]


def _xy_packing(grid: GeoGrid) -> tuple[float, float]:
    """(step, offset) of the pixel numbers 1..N: angle = offset − step·i (x, west positive) or −offset + step·i."""
    step = abs(grid.dx_rad)
    return step, step * (grid.n_cols + 1) / 2


def _write_channel(nc, grid: GeoGrid, band: Band, rows: tuple[int, int], values: np.ndarray,
                   on_disk: np.ndarray, swath_of_row: np.ndarray, esd: float) -> None:
    first, last = rows
    n_rows, n_cols = last - first + 1, grid.n_cols
    g = nc["data"].createGroup(band.band_id).createGroup("measured")
    g.createDimension("y", n_rows)
    g.createDimension("x", n_cols)
    step, offset = _xy_packing(grid)
    for axis, numbers, scale, add in (("x", np.arange(1, n_cols + 1), -step, offset),
                                      ("y", np.arange(first, last + 1), step, -offset)):
        v = g.createVariable(axis, "u2", (axis,))
        v.set_auto_scale(False)
        v.setncatts({"scale_factor": np.float64(scale), "add_offset": np.float64(add), "units": "radian",
                     "axis": axis.upper(), "long_name": ("azimuth angle, positive towards West" if axis == "x"
                                                         else "elevation angle, positive towards North")})
        v[:] = numbers.astype(np.uint16)
    for name, value in (("start_position_row", first), ("end_position_row", last),
                        ("start_position_column", 1), ("end_position_column", n_cols)):
        _scalar(g, name, np.int32(value), dtype="i4")
    cal = band.calibration
    solar = band.is_solar
    _scalar(g, "radiance_to_bt_conversion_coefficient_wavenumber", _F32_FILL if solar else cal["wavenumber"],
            units="cm-1")
    _scalar(g, "radiance_to_bt_conversion_coefficient_a", _F32_FILL if solar else cal["a"], units="1")
    _scalar(g, "radiance_to_bt_conversion_coefficient_b", _F32_FILL if solar else cal["b"], units="K")
    _scalar(g, "radiance_to_bt_conversion_constant_c1", _F32_FILL if solar else C1, units="mW.m-2.sr-1.(cm-1)-4")
    _scalar(g, "radiance_to_bt_conversion_constant_c2", _F32_FILL if solar else C2, units="K.cm")
    _scalar(g, "channel_effective_solar_irradiance",
            cal["channel_effective_solar_irradiance"] if solar else _F32_FILL, units="mW.m-2.(cm-1)-1")
    _scalar(g, "radiance_unit_conversion_coefficient", cal["radiance_unit_conversion_coefficient"],
            units="cm-1.um-1")
    radiance = (radiance_from_reflectance(values, band, esd) if solar else radiance_from_bt(values, band))
    radiance = np.where(on_disk, radiance, np.nan)
    chunking = (n_rows, min(n_cols, 1024))
    er = g.createVariable("effective_radiance", "u2", ("y", "x"), zlib=True, complevel=4, shuffle=True,
                          chunksizes=chunking, fill_value=np.uint16(COUNT_FILL))
    er.set_auto_maskandscale(False)
    er.setncatts({"scale_factor": np.float32(cal["scale_factor"]), "add_offset": np.float32(cal["add_offset"]),
                  "warm_scale_factor": np.float32(cal["scale_factor"]),
                  "warm_add_offset": np.float32(cal["add_offset"]),
                  "valid_range": np.array([0, COUNT_MAX], dtype=np.uint16), "long_name": "Effective Radiance",
                  "units": RADIANCE_UNITS, "ancillary_variables": "pixel_quality"})
    er[:] = _to_counts(radiance, band)
    pq = g.createVariable("pixel_quality", "u1", ("y", "x"), zlib=True, complevel=4, chunksizes=chunking,
                          fill_value=np.uint8(255))
    pq.setncatts({"long_name": "pixel quality", "flag_values": np.array([0, 1, 2, 3, 4], dtype=np.uint8),
                  "flag_meanings": "good invalid_due_to_missing_data invalid_due_to_saturation space not_processed"})
    pq[:] = np.where(on_disk, QUALITY_GOOD, QUALITY_SPACE).astype(np.uint8)
    im = g.createVariable("index_map", "u2", ("y", "x"), zlib=True, complevel=4, chunksizes=chunking,
                          fill_value=np.uint16(65535))
    im.set_auto_maskandscale(False)
    im.setncatts({"long_name": "index of the swath of each pixel in the chunk's per-swath tables"})
    im[:] = np.where(on_disk, swath_of_row[:, None], 65535).astype(np.uint16)


#: The full-disk repeat cycle (minutes), for the archive's slot lists.
REPEAT_MINUTES = FULL_DISK["fci"].repeat_minutes
