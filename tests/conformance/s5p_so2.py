"""Sentinel-5P TROPOMI L2 SO2 conformance granules, built from a real file and the documented layout.

The start is the real OFFL granule of orbit 12367 (processor 01.01.07) in ``data/``, its data variables stripped
but its global attributes, dimensions and METADATA tree intact (see ``data/README.md``). :func:`build` copies it
and adds the data variables as HARP's S5P L2 ingestion (stcorp/harp, ``libharp/harp-ingest-s5p_l2.c``) and the
product's own attributes describe them:

- ``PRODUCT/time`` (seconds since 2010-01-01: the day of ``time_reference``) and ``PRODUCT/delta_time`` in ms
  since ``time_reference``, per pixel ``(time, scanline, ground_pixel)`` for SO2 (``s5p_delta_time_num_dims`` = 3;
  2, ``(time, scanline)``, for NO2, CO and CH4: ``delta_time_dims=2``);
- ``PRODUCT/latitude``, ``longitude``, ``qa_value`` (uint8 0–100, ``scale_factor`` 0.01, fill 255) and
  ``sulfurdioxide_total_vertical_column`` (+ ``_precision``);
- ``PRODUCT/SUPPORT_DATA/GEOLOCATIONS``: ``solar_zenith_angle``, ``latitude_bounds``/``longitude_bounds``
  ``(…, corner)``;
- ``PRODUCT/SUPPORT_DATA/DETAILED_RESULTS``: ``sulfurdioxide_total_vertical_column_1km``/``_7km``/``_15km``
  (+ ``_precision``) from processor 01.01.01 on, ``_3km`` from 02.08.00, and ``sulfurdioxide_detection_flag``.

Columns are float32 in ``mol m-2`` with ``multiplication_factor_to_convert_to_DU`` = 2241.15 and ``_FillValue``
9.96921e36. The file keeps the real dimensions (4172 scanlines × 450 ground pixels); only a window of
:data:`WINDOW_ROWS` scanlines from :data:`WINDOW_START` holds data (one HDF5 chunk per variable: a few hundred KB,
built in well under a second); elsewhere every variable is its fill value, as HDF5 returns for chunks never written.

Nothing here imports ``app``: the fixtures must not share our writers' mistakes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import numpy as np

DATA = Path(__file__).parent / "data"
REAL_NAME = "S5P_OFFL_L2__SO2____20200303T013547_20200303T031717_12367_01_010107_20200306T144427.nc"
REAL_GRANULE = DATA / REAL_NAME

N_SCANLINES, N_GROUND_PIXELS = 4172, 450  # the real file's PRODUCT dimensions
WINDOW_START, WINDOW_ROWS = 2040, 60  # rows with data (a multiple of the chunk length, so one chunk)
#: ms between scanlines: time_coverage_start to _end (3503 s) over 4171 intervals, rounded.
SCANLINE_MS = 840
#: The real file's time_coverage_start, 01:57:22, in ms since its time_reference (2020-03-03T00:00:00).
START_MS = (1 * 3600 + 57 * 60 + 22) * 1000
FLOAT_FILL = np.float32(9.96921e36)
INT32_FILL = np.int32(-2147483647)
QA_FILL = np.uint8(255)
DU_FACTOR = np.float32(2241.15)
#: The plume's peak pixel (window row, ground pixel) and its 7 km column, mol m-2.
PEAK = (30, 225)
PEAK_7KM = np.float32(4.0e-3)
#: Box column / 7 km column, for each column written (the PBL one is ``sulfurdioxide_total_vertical_column``).
BOX_RATIOS = {"pbl": 2.5, "1km": 1.6, "3km": 1.25, "7km": 1.0, "15km": 0.8}
PRECISION = np.float32(3.0e-4)
#: The ground pixels whose delta_time is fill on the first window row (a per-pixel reader must skip them).
FILL_TIME_PIXELS = 3

_COLUMN = "sulfurdioxide_total_vertical_column"
_CHUNK = (1, WINDOW_ROWS, N_GROUND_PIXELS)


@dataclass
class S5PGranule:
    """A built granule and what was written into its window of scanlines (physical values, NaN for fill)."""

    path: Path
    processor_version: str
    window: slice
    latitude: np.ndarray
    longitude: np.ndarray
    delta_ms: np.ndarray  # (rows, ground_pixel) ms since time_reference, NaN where fill
    time_reference: np.datetime64
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # "pbl", "1km", …: mol m-2
    qa_raw: np.ndarray | None = None  # uint8 as stored
    solar_zenith_angle: np.ndarray | None = None

    def scanline_time(self, row: int) -> np.datetime64:
        """The hand-computed time of window ``row``: time_reference + delta_time of its pixels."""
        return self.time_reference + np.timedelta64(START_MS + (WINDOW_START + row) * SCANLINE_MS, "ms")


def geolocation(rows: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude, longitude (degrees) at fractional scanline ``rows`` × ``pixels``: a swath across the antimeridian.

    Along track the latitude climbs from -85° (scanline 0) to +85° (the last); the track's centre meets 180° at
    scanline 2070, the middle of the window, and the swath spans ±13° of longitude across track.
    """
    r = np.asarray(rows, dtype=np.float64)[:, None]
    p = np.asarray(pixels, dtype=np.float64)[None, :]
    lat = -85.0 + 170.0 * r / (N_SCANLINES - 1) + 0.002 * (p - 224.5)
    lon = 180.0 - 0.05 * (r - 2070.0) + 0.058 * (p - 224.5)
    return lat, (lon + 180.0) % 360.0 - 180.0


def _processor_field(version: str) -> str:
    return "".join(version.split("."))


def _name(processor_version: str) -> str:
    return REAL_NAME.replace("_010107_", f"_{_processor_field(processor_version)}_")


def _var(group, name, dtype, dims, fill, attrs, values=None, chunked=True):
    kw = {"chunksizes": _CHUNK + (4,) * (len(dims) - 3)} if chunked and len(dims) >= 3 else {}
    var = group.createVariable(name, dtype, dims, fill_value=fill, **kw)
    var.set_auto_maskandscale(False)  # values are written as stored (qa_value 0–100, fill values as such)
    for key, value in attrs.items():
        var.setncattr(key, value)
    if values is not None:
        var[(0, slice(WINDOW_START, WINDOW_START + WINDOW_ROWS))] = values
    return var


def _column_attrs(long_name: str, du_attribute: bool) -> dict:
    attrs = {
        "units": "mol m-2",
        "standard_name": "atmosphere_mole_content_of_sulfur_dioxide",
        "long_name": long_name,
        "coordinates": "longitude latitude",
        "multiplication_factor_to_convert_to_molecules_percm2": np.float32(6.02214e19),
    }
    if du_attribute:
        attrs["multiplication_factor_to_convert_to_DU"] = DU_FACTOR
    return attrs


def _plume() -> np.ndarray:
    """The 7 km column over the window (mol m-2): a Gaussian plume peaking at :data:`PEAK`, on 1e-5 background."""
    r = np.arange(WINDOW_ROWS)[:, None] - PEAK[0]
    p = np.arange(N_GROUND_PIXELS)[None, :] - PEAK[1]
    col = (1.0e-5 + (PEAK_7KM - 1.0e-5) * np.exp(-(r**2 + (p / 3.0) ** 2) / 50.0)).astype(np.float32)
    col[PEAK] = PEAK_7KM
    col[0, 0] = np.nan  # an edge pixel without a retrieval: fill
    return col


def build(
    dest: Path,
    *,
    processor_version: str = "01.01.07",
    delta_time_dims: int = 3,
    du_attribute: bool = True,
    blank_time_rows: tuple[int, ...] = (),
) -> S5PGranule:
    """Copy the real granule into folder ``dest`` and add its data variables; return what was written.

    ``processor_version`` decides the box columns: none before 01.01.01, 1/7/15 km from it, 3 km too from
    02.08.00 (it is also written to the ``processor_version``/``id`` attributes and the file name).
    ``delta_time_dims`` 3 is the SO2 layout, 2 the NO2/CO/CH4 one. ``du_attribute=False`` leaves out every
    column's ``multiplication_factor_to_convert_to_DU``. ``blank_time_rows`` (window rows) get a fill delta_time
    on every pixel.
    """
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / _name(processor_version)
    shutil.copyfile(REAL_GRANULE, path)
    path.chmod(0o644)
    version = tuple(int(p) for p in processor_version.split("."))
    boxes = [b for b in ("1km", "3km", "7km", "15km") if version >= ((2, 8, 0) if b == "3km" else (1, 1, 1))]
    rows = np.arange(WINDOW_START, WINDOW_START + WINDOW_ROWS)
    pixels = np.arange(N_GROUND_PIXELS)
    lat, lon = geolocation(rows, pixels)
    plume = _plume()
    columns = {"pbl": plume * np.float32(BOX_RATIOS["pbl"])}
    columns.update({b: plume * np.float32(BOX_RATIOS[b]) for b in boxes})
    qa = np.full((WINDOW_ROWS, N_GROUND_PIXELS), 75, dtype=np.uint8)
    qa[:, -10:] = 40
    qa[0, 0] = QA_FILL
    sza = (20.0 + 0.1 * pixels[None, :] + 0.01 * np.arange(WINDOW_ROWS)[:, None]).astype(np.float32)
    delta = (START_MS + rows[:, None] * SCANLINE_MS + 0 * pixels[None, :]).astype(np.float64)
    delta[0, :FILL_TIME_PIXELS] = np.nan
    for row in blank_time_rows:
        delta[row, :] = np.nan
    with netCDF4.Dataset(path, "a") as nc:
        nc.processor_version = processor_version
        nc.id = path.stem
        reference = str(nc.time_reference)
        _write(nc, lat, lon, delta, delta_time_dims, columns, qa, sza, du_attribute, reference)
    ref = np.datetime64(reference, "ms")
    return S5PGranule(path=path, processor_version=processor_version,
                      window=slice(WINDOW_START, WINDOW_START + WINDOW_ROWS), latitude=lat, longitude=lon,
                      delta_ms=delta, time_reference=ref, columns=columns, qa_raw=qa, solar_zenith_angle=sza)


def _filled(values: np.ndarray, fill) -> np.ndarray:
    """``values`` in the dtype of ``fill``, with ``fill`` where they are NaN."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), values, float(fill)).astype(np.asarray(fill).dtype)


def _write(nc, lat, lon, delta, delta_time_dims, columns, qa, sza, du_attribute, reference) -> None:
    prod = nc["PRODUCT"]
    dims3 = ("time", "scanline", "ground_pixel")
    for name in ("scanline", "ground_pixel", "corner"):
        v = prod.createVariable(name, "i4", (name,))
        v.units = "1"
        v[:] = np.arange(len(prod.dimensions[name]))
    t = prod.createVariable("time", "i4", ("time",))
    t.units, t.standard_name, t.axis = "seconds since 2010-01-01 00:00:00", "time", "T"
    day = dt.datetime.fromisoformat(reference)
    t[:] = [int((day - dt.datetime(2010, 1, 1)).total_seconds())]
    ms = f"milliseconds since {reference.replace('T', ' ')}"
    if delta_time_dims == 3:
        _var(prod, "delta_time", "i4", dims3, INT32_FILL, {"units": ms, "long_name": "offset from reference start "
             "time of measurement"}, _filled(delta, INT32_FILL))
    else:
        per_row = np.fmin.reduce(delta, axis=1)
        v = prod.createVariable("delta_time", "i4", ("time", "scanline"), fill_value=INT32_FILL)
        v.set_auto_maskandscale(False)
        v.units = ms
        v[0, WINDOW_START:WINDOW_START + WINDOW_ROWS] = _filled(per_row, INT32_FILL)
    for name, values, units in (("latitude", lat, "degrees_north"), ("longitude", lon, "degrees_east")):
        _var(prod, name, "f4", dims3, FLOAT_FILL, {"units": units, "standard_name": name,
             "bounds": f"/PRODUCT/SUPPORT_DATA/GEOLOCATIONS/{name}_bounds"}, _filled(values, FLOAT_FILL))
    _var(prod, "qa_value", "u1", dims3, QA_FILL, {"units": "1", "scale_factor": np.float32(0.01),
         "add_offset": np.float32(0.0), "valid_min": np.uint8(0), "valid_max": np.uint8(100),
         "long_name": "data quality value"}, qa)
    _var(prod, _COLUMN, "f4", dims3, FLOAT_FILL,
         _column_attrs("total vertical column of sulfur dioxide for the polluted scenario derived from the total "
                       "slant column", du_attribute), _filled(columns["pbl"], FLOAT_FILL))
    _var(prod, f"{_COLUMN}_precision", "f4", dims3, FLOAT_FILL, _column_attrs("standard error", du_attribute),
         np.full(qa.shape, PRECISION, dtype=np.float32))
    support = prod.createGroup("SUPPORT_DATA")
    geo = support.createGroup("GEOLOCATIONS")
    _var(geo, "solar_zenith_angle", "f4", dims3, FLOAT_FILL, {"units": "degree",
         "standard_name": "solar_zenith_angle"}, sza)
    rows = np.arange(WINDOW_START, WINDOW_START + WINDOW_ROWS, dtype=np.float64)
    pixels = np.arange(N_GROUND_PIXELS, dtype=np.float64)
    corners = [(-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5)]  # bottom-left, bottom-right, top-right, top-left
    lat_b = np.stack([geolocation(rows + dr, pixels + dp)[0] for dr, dp in corners], axis=-1).astype(np.float32)
    lon_b = np.stack([geolocation(rows + dr, pixels + dp)[1] for dr, dp in corners], axis=-1).astype(np.float32)
    for name, values in (("latitude_bounds", lat_b), ("longitude_bounds", lon_b)):
        _var(geo, name, "f4", dims3 + ("corner",), FLOAT_FILL, {"units": "degrees_north" if "lat" in name else
             "degrees_east"}, values)
    det = support.createGroup("DETAILED_RESULTS")
    for box, values in columns.items():
        if box == "pbl":
            continue
        _var(det, f"{_COLUMN}_{box}", "f4", dims3, FLOAT_FILL,
             _column_attrs(f"total vertical column of sulfur dioxide for a {box[:-2]} km box profile", du_attribute),
             _filled(values, FLOAT_FILL))
        _var(det, f"{_COLUMN}_{box}_precision", "f4", dims3, FLOAT_FILL,
             _column_attrs("standard error", du_attribute), np.full(qa.shape, PRECISION, dtype=np.float32))
    flag = (columns["pbl"] > 1e-3).astype(np.uint8)
    _var(det, "sulfurdioxide_detection_flag", "u1", dims3, np.uint8(255), {"units": "1"}, flag)
    support.createGroup("INPUT_DATA")
