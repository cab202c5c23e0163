"""MTG-I FCI L1c FDHSI conformance chunks, built from the Product User Guide and satpy's own reader tests.

Layout (FCI L1 PUG, EUMETSAT doc 45923, as satpy's ``test_fci_l1c_nc.py`` fakes it and its ``fci_l1c_nc.yaml``
``required_netcdf_variables`` list it): a repeat cycle is 40 body chunks, chunk 1 the southernmost, named
``W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_<proc>_IDPFI_OPE_<start>_<end>
_N__O_<repeat cycle>_<chunk>.nc``; global attribute ``platform``; ``data/mtg_geos_projection`` (``semi_major_axis``
6378137, ``inverse_flattening`` 298.257223563, ``perspective_point_height`` 35786400, ``longitude_of_projection_
origin``, ``sweep_angle_axis`` y); per channel ``data/<ch>/measured/``: ``effective_radiance (y, x)`` uint16 with
``scale_factor``/``add_offset``/``valid_range``/``_FillValue`` 65535/``warm_*``/``ancillary_variables``,
``x``/``y`` pixel numbers (1-based over the disk) whose ``scale_factor``/``add_offset`` give radians (x: negative
scale, azimuth positive west; y: positive scale, elevation positive north — satpy's test values for the 2 km and
1 km grids are ``scale_factor`` 5.58871526031607e-05 / 2.79435763233999e-05 and ``add_offset``
0.155617776423501 / 0.155603804756852, i.e. ``step × (N + 1) / 2``), ``start/end_position_row/column``, the BT
coefficients (``_wavenumber``, ``_a``, ``_b``, constants ``c1`` = 2hc²·10¹¹, ``c2`` = hc/k·10²), the
``channel_effective_solar_irradiance``, ``radiance_unit_conversion_coefficient``, ``pixel_quality``, ``index_map``;
per swath (dimension ``index``): ``index``, ``time``, ``data/swath_number``, ``data/swath_direction``,
``state/platform/*``, ``state/celestial/*`` (``earth_sun_distance`` in km).

Here the two grids are the real 2 km and 1 km ones coarsened 48 times (116² infrared, 232² solar): satpy stacks the
40 chunks as it does the real ones (it can pad missing chunks only on the real widths). Counts are a known function
of the full-disk row and column (:func:`counts`), with a fill value at the western end of each row; the calibration
numbers are those of satpy's tests (ν 955 cm⁻¹, a 1, b 0.4; irradiance 50; d = 1 AU). Written with netCDF4.
Nothing here imports ``app``: the fixtures must not share our writers' mistakes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np

FACTOR = 48
IR_STEP = 5.58871526031607e-05 * FACTOR
N_IR = 5568 // FACTOR  # 116
N_VIS = 2 * N_IR  # 232
N_CHUNKS = 40
#: Every chunk holds all 16 channels (satpy's reader refuses a file without one of their groups).
SOLAR = ("vis_04", "vis_05", "vis_06", "vis_08", "vis_09", "nir_13", "nir_16", "nir_22")
TERRAN = ("ir_38", "wv_63", "wv_73", "ir_87", "ir_97", "ir_105", "ir_123", "ir_133")
CHANNELS = SOLAR + TERRAN
SCALE, OFFSET = np.float32(0.05), np.float32(-1.0)
WAVENUMBER, A, B = np.float32(955.0), np.float32(1.0), np.float32(0.4)
H, C, K = 6.62607015e-34, 299792458.0, 1.380649e-23
C1, C2 = np.float32(1e11 * 2 * H * C**2), np.float32(1e2 * H * C / K)
CESI = np.float32(50.0)
AU_KM = 149597870.7
FILL = 65535
SLOT = dt.datetime(2025, 7, 7, 12, 0)
REPEAT_CYCLE = 73  # 12:00 is the 73rd 10-minute cycle of the day


def n_of(channel: str) -> int:
    """Grid size (pixels per side) of a channel: 232 for the solar channels, 116 for the infrared ones."""
    return N_VIS if channel in SOLAR else N_IR


def counts(channel: str, row, col) -> np.ndarray:
    """Stored counts at full-disk row (1-based from the south) and column (1-based from the west)."""
    row, col = np.asarray(row), np.asarray(col)
    base = 200 + 12 * row + 3 * col + 20 * CHANNELS.index(channel)
    return np.where(col == 1, FILL, base).astype(np.uint16)


def chunk_rows(n: int) -> list[tuple[int, int]]:
    """(first, last) rows (1-based from the south) of each chunk on an n-row grid."""
    edges = [i * n // N_CHUNKS for i in range(N_CHUNKS + 1)]
    return [(edges[i] + 1, edges[i + 1]) for i in range(N_CHUNKS)]


def file_name(chunk: int) -> str:
    """The real FDHSI body chunk name of a chunk of the fixture's slot."""
    start = SLOT + dt.timedelta(seconds=7 + 14 * (chunk - 1))
    end = start + dt.timedelta(seconds=14)
    proc = end + dt.timedelta(minutes=4)
    return ("W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_"
            f"{proc:%Y%m%d%H%M%S}_IDPFI_OPE_{start:%Y%m%d%H%M%S}_{end:%Y%m%d%H%M%S}_N__O_{REPEAT_CYCLE:04d}"
            f"_{chunk:04d}.nc")


def _scalar(group, name, value, dtype=np.float32):
    v = group.createVariable(name, dtype, ())
    v[...] = dtype(value)


def _channel(data, channel: str, chunk: int, index_values: np.ndarray) -> None:
    n = n_of(channel)
    first, last = chunk_rows(n)[chunk - 1]
    g = data.createGroup(channel).createGroup("measured")
    g.createDimension("y", last - first + 1)
    g.createDimension("x", n)
    step = IR_STEP / (2 if channel in SOLAR else 1)
    offset = step * (n + 1) / 2
    for axis, numbers, scale, add in (("x", np.arange(1, n + 1), -step, offset),
                                      ("y", np.arange(first, last + 1), step, -offset)):
        v = g.createVariable(axis, np.uint16, (axis,))
        v.set_auto_maskandscale(False)
        v.setncatts({"scale_factor": np.float64(scale), "add_offset": np.float64(add), "units": "radian"})
        v[:] = numbers.astype(np.uint16)
    for name, value in (("start_position_row", first), ("end_position_row", last), ("start_position_column", 1),
                        ("end_position_column", n)):
        _scalar(g, name, value, np.int32)
    fill32 = np.float32(9.96921e36)
    ir = channel in TERRAN
    for name, value in (("radiance_to_bt_conversion_coefficient_wavenumber", WAVENUMBER),
                        ("radiance_to_bt_conversion_coefficient_a", A),
                        ("radiance_to_bt_conversion_coefficient_b", B),
                        ("radiance_to_bt_conversion_constant_c1", C1),
                        ("radiance_to_bt_conversion_constant_c2", C2)):
        _scalar(g, name, value if ir else fill32)
    _scalar(g, "channel_effective_solar_irradiance", fill32 if ir else CESI)
    _scalar(g, "radiance_unit_conversion_coefficient", 1234.56)
    rows, cols = np.meshgrid(np.arange(first, last + 1), np.arange(1, n + 1), indexing="ij")
    er = g.createVariable("effective_radiance", np.uint16, ("y", "x"), fill_value=np.uint16(FILL), zlib=True)
    er.set_auto_maskandscale(False)
    er[:] = counts(channel, rows, cols)
    er.setncatts({"scale_factor": SCALE, "add_offset": OFFSET, "valid_range": np.array([0, 4095], np.uint16),
                     "warm_scale_factor": SCALE, "warm_add_offset": OFFSET, "long_name": "Effective Radiance",
                     "units": "mW.m-2.sr-1.(cm-1)-1", "ancillary_variables": "pixel_quality"})
    pq = g.createVariable("pixel_quality", np.uint8, ("y", "x"))
    pq[:] = np.zeros(rows.shape, np.uint8)
    im = g.createVariable("index_map", np.uint16, ("y", "x"))
    im[:] = np.full(rows.shape, index_values[0], np.uint16)


def build_chunk(directory, chunk: int) -> Path:
    """Write one body chunk of the fixture's slot; return its path."""
    path = Path(directory) / file_name(chunk)
    index_values = np.array([chunk * 10, chunk * 10 + 1], dtype=np.uint16)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncattr("platform", "MTI1")
        nc.createDimension("index", 2)
        data = nc.createGroup("data")
        proj = data.createVariable("mtg_geos_projection", np.int32, ())
        proj.setncatts({"grid_mapping_name": "geostationary", "semi_major_axis": 6378137.0,
                           "inverse_flattening": 298.257223563, "perspective_point_height": 35786400.0,
                           "longitude_of_projection_origin": 0.0, "sweep_angle_axis": "y"})
        idx = nc.createVariable("index", np.uint16, ("index",))
        idx[:] = index_values
        t = nc.createVariable("time", np.float64, ("index",))
        t[:] = (SLOT - dt.datetime(2000, 1, 1)).total_seconds() + 14.0 * chunk + np.array([3.0, 10.0])
        for name, value in (("swath_number", index_values), ("swath_direction", np.array([0, 1]))):
            v = data.createVariable(name, np.uint16, ("index",))
            v[:] = value
        state = nc.createGroup("state")
        for group, variables in (("platform", {"subsatellite_latitude": 0.01, "subsatellite_longitude": -0.02,
                                               "platform_altitude": 42164000.0}),
                                 ("celestial", {"earth_sun_distance": AU_KM, "subsolar_latitude": 22.5,
                                                "subsolar_longitude": -1.0, "sun_satellite_distance": AU_KM})):
            g = state.createGroup(group)
            for name, value in variables.items():
                v = g.createVariable(name, np.float64, ("index",))
                v[:] = np.full(2, value)
        for channel in CHANNELS:
            _channel(data, channel, chunk, index_values)
    return path


def build(directory, chunks=range(1, N_CHUNKS + 1)) -> list[Path]:
    """Write the body chunks (default: all 40) of the fixture's slot into ``directory``; return their paths."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [build_chunk(directory, c) for c in chunks]


def expected_bt(counts_: np.ndarray) -> np.ndarray:
    """Brightness temperature (K) of stored infrared counts, by the PUG's formula (NaN for fill)."""
    radiance = np.where(counts_ == FILL, np.nan, counts_.astype(np.float64) * SCALE + OFFSET)
    return C2 * WAVENUMBER / (A * np.log1p(C1 * WAVENUMBER**3 / radiance)) - B / A


def expected_reflectance(counts_: np.ndarray) -> np.ndarray:
    """Reflectance (%) of stored solar counts at 1 AU: ``100 π L / cesi`` (NaN for fill)."""
    radiance = np.where(counts_ == FILL, np.nan, counts_.astype(np.float64) * SCALE + OFFSET)
    return 100.0 * np.pi * radiance / CESI
