"""NWC SAF GEO cloud top temperature and height (CTTH) conformance files: v2018, v2021 and v2025 layouts.

Built as satpy's own NWC SAF tests build theirs (``satpy/tests/reader_tests/test_nwcsaf_nc.py``: h5netcdf, the
global attributes ``source``, ``satellite_identifier``, ``sub-satellite_longitude``, ``time_coverage_start``/``_end``,
``nominal_product_time`` for v2021 GEO products, the ``gdal_projection`` PROJ string in metres or, in older files,
in km, the ``gdal_xgeo_up_left`` … outer corners; v2025 files put a leading ``time`` dimension of length 1 on every
variable, chunked ``(1, 256, 256)``, and carry no ``nominal_product_time``), with the CTTH variables encoded as the
NWC/GEO product user manual describes them:

=============  =======  =====  ======  ========  ===========
variable       dtype    scale  offset  fill      valid range
=============  =======  =====  ======  ========  ===========
ctth_alti      uint16   1      -2000   65535     0 … 27000 (m)
ctth_pres      uint16   10     0       65535     0 … 11000 (Pa)
ctth_tempe     uint16   0.01   130     65535     0 … 20000 (K)
ctth_effectiv  uint8    0.01   0       255       0 … 100
=============  =======  =====  ======  ========  ===========

The stored values are a small known table (:data:`STORED`): a test decodes them by hand. Nothing here imports
``app``: the fixtures must not share our writers' mistakes.
"""

from __future__ import annotations

from pathlib import Path

import h5netcdf
import numpy as np

#: Grid: a 3 km SEVIRI-like (or 2 km FCI-like) window of NY × NX pixels near the sub-satellite point.
NY, NX = 6, 8
#: CTTH variable -> (dtype, scale_factor, add_offset, _FillValue, valid_range, units).
ENCODING = {
    "ctth_alti": (np.uint16, 1.0, -2000.0, 65535, (0, 27000), "m"),
    "ctth_pres": (np.uint16, 10.0, 0.0, 65535, (0, 11000), "Pa"),
    "ctth_tempe": (np.uint16, 0.01, 130.0, 65535, (0, 20000), "K"),
    "ctth_effectiv": (np.uint8, 0.01, 0.0, 255, (0, 100), "1"),
}
#: Stored values of row 0, columns 0..3 of each variable: a cloud at 10 km, one at 1 km, a fill, an out-of-range.
#: The rest of the grid repeats row 0 shifted by its row number (stored + ROW_STEP × row; fills stay fills).
STORED = {
    "ctth_alti": [12000, 3000, 65535, 30000],
    "ctth_pres": [2650, 8990, 65535, 12000],
    "ctth_tempe": [9320, 15200, 65535, 25000],
    "ctth_effectiv": [95, 40, 255, 120],
}
ROW_STEP = {"ctth_alti": 10, "ctth_pres": 10, "ctth_tempe": 10, "ctth_effectiv": 1}
FLAGS = {"ctth_status_flag": (np.uint16, 1), "ctth_quality": (np.uint16, 1), "ctth_conditions": (np.uint16, 81),
         "ctth_method": (np.uint8, 1)}

#: Meteosat Second Generation geometry (metres; the older files write km), and the MTG-I FCI one (FCI L1 PUG).
MSG_PROJ = "+proj=geos +a=6378137.000 +b=6356752.300 +lon_0=0.000000 +h=35785863.000"
MSG_PROJ_KM = "+proj=geos +a=6378.137000 +b=6356.752300 +lon_0=0.000000 +h=35785.863000"
MTG_PROJ = "+proj=geos +a=6378137.000 +b=6356752.314 +lon_0=0.000000 +h=35786400.000"

VERSIONS = ("v2018", "v2021", "v2025")


def stored_array(name: str) -> np.ndarray:
    """The stored (packed) values of one CTTH variable on the NY × NX grid."""
    dtype, _, _, fill, _, _ = ENCODING[name]
    row = np.resize(np.array(STORED[name], dtype=np.int64), NX)
    out = np.empty((NY, NX), dtype=np.int64)
    for j in range(NY):
        out[j] = np.where(row == fill, fill, row + ROW_STEP[name] * j)
    return out.astype(dtype)


def _attrs(version: str, pixel_m: float) -> dict:
    x0, y1 = -NX / 2 * pixel_m, 1_500_000.0 + NY * pixel_m
    corners = {"gdal_xgeo_up_left": x0, "gdal_ygeo_up_left": y1,
               "gdal_xgeo_low_right": x0 + NX * pixel_m, "gdal_ygeo_low_right": y1 - NY * pixel_m}
    if version == "v2025":
        return {"source": "NWC/GEO version v2025.1", "satellite_identifier": "MTI1",
                "sub-satellite_longitude": 0.0, "time_coverage_start": "2025-07-07T12:00:12Z",
                "time_coverage_end": "2025-07-07T12:09:29Z", "gdal_projection": MTG_PROJ, **corners}
    return {"source": f"NWC/GEO version {version}.1", "satellite_identifier": "MSG4",
            "sub-satellite_longitude": 0.0, "nominal_product_time": "2021-04-12T12:00:00Z",
            "time_coverage_start": "2021-04-12T12:00:09Z", "time_coverage_end": "2021-04-12T12:12:43Z",
            "gdal_projection": MSG_PROJ_KM if version == "v2018" else MSG_PROJ, **corners}


def file_name(version: str) -> str:
    """The real file name of the product of a version's fixture."""
    if version == "v2025":
        return "S_NWC_CTTH_MTI1_MSG-N-NR_20250707T120000Z.nc"
    return "S_NWC_CTTH_MSG4_MSG-N-VISIR_20210412T120000Z.nc"


def pixel_size(version: str) -> float:
    """Pixel size (m) of a version's grid: FCI's 2 km for v2025 (MTG-I1), SEVIRI's 3 km before."""
    return 2000.0 if version == "v2025" else 3000.0


def build(directory, version: str = "v2021", *, n_times: int = 1, dims: tuple[str, ...] | None = None) -> Path:
    """Write one CTTH file of ``version`` into ``directory``; return its path.

    ``n_times`` (v2025 only) and ``dims`` (the variables' dimension names, to build a broken file) are for tests of
    refusals; the default is the product as it is.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}")
    path = Path(directory) / file_name(version)
    v2025 = version == "v2025"
    if dims is None:
        dims = ("time", "ny", "nx") if v2025 else ("ny", "nx")
    with h5netcdf.File(path, mode="w") as nc:
        nc.attrs.update(_attrs(version, pixel_size(version)))
        sizes = {"ny": NY, "nx": NX, "pal_colors_250": 250, "pal_rgb": 3}
        if "time" in dims:
            sizes["time"] = n_times
        for extra in dims:
            sizes.setdefault(extra, NY)
        nc.dimensions = sizes
        lead = tuple(sizes[d] for d in dims[:-2])
        chunks = (1,) * len(lead) + (min(NY, 256), min(NX, 256))
        for name, (dtype, scale, offset, fill, valid, units) in ENCODING.items():
            var = nc.create_variable(name, dims, dtype, chunks=chunks, fillvalue=dtype(fill))
            var[...] = np.broadcast_to(stored_array(name), lead + (NY, NX))
            var.attrs.update({"scale_factor": np.float32(scale), "add_offset": np.float32(offset),
                              "valid_range": np.array(valid, dtype=dtype), "units": units,
                              "ancillary_variables": "ctth_status_flag ctth_conditions ctth_quality"})
            pal = nc.create_variable(f"{name}_pal", ("pal_colors_250", "pal_rgb"), np.uint8)
            pal[:] = np.tile(np.arange(250, dtype=np.uint8)[:, None], (1, 3))
            pal.attrs["palette_meanings"] = " ".join(str(v) for v in np.linspace(valid[0], valid[1], 250).astype(int))
        for name, (dtype, value) in FLAGS.items():
            var = nc.create_variable(name, dims, dtype, chunks=chunks, fillvalue=dtype(np.iinfo(dtype).max))
            var[...] = np.full(lead + (NY, NX), value, dtype=dtype)
    return path
