"""The scenario's wind as an ERA5-layout netCDF file, the sample archive's wind source for the flux.

The file is laid out as the Copernicus Climate Data Store delivers ERA5 on pressure levels since September 2024
(netCDF-4): ``u`` and ``v`` (float32, m s-1, zlib-compressed) on ``(valid_time, pressure_level, latitude,
longitude)``; ``valid_time`` int64 seconds since 1970-01-01; ``pressure_level`` in hPa, from 1000 hPa up; latitude
descending (north first); longitudes -180..180 as an area request returns them; the CDS global attributes
(``GRIB_centre``, ``Conventions``, ``institution``, ``history``).

The scenario's wind (:class:`app.sample.scenario.Wind`) is uniform in space and varies with height only: each
pressure level gets the wind at that level's standard-atmosphere height (:func:`app.data.wind.height_km_at`), on a
small grid around the volcano, hourly over the scenario's days (and an hour either side). Read back by
:class:`app.data.wind.Era5Wind`, it gives the scenario's wind exactly at the levels' heights and, between them, within
the difference between linear interpolation in height and in ln(p).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.core.locks import HDF_LOCK
from app.data.wind import height_km_at
from app.sample.scenario import Scenario, get_scenario

__all__ = ["PRESSURE_LEVELS_HPA", "WIND_FILE", "write_wind_file"]

#: Where the file goes, relative to the archive root (the sample catalogues' ``wind_file`` entry).
WIND_FILE = "wind/era5_wind.nc"
#: ERA5 pressure levels written (hPa): the lower and middle atmosphere, 1000 to 50 hPa (about 0.1 to 20.6 km).
PRESSURE_LEVELS_HPA = (1000, 975, 950, 925, 900, 850, 800, 700, 600, 500, 400, 300, 250, 200, 150, 100, 70, 50)
GRID_STEP_DEG = 0.5
GRID_HALF_WIDTH_DEG = 5.0


def _scenario(scenario: str | Scenario) -> Scenario:
    return get_scenario(scenario) if isinstance(scenario, str) else scenario


def write_wind_file(scenario: str | Scenario, folder: str | os.PathLike) -> Path:
    """Write the scenario's wind as ``<folder>/wind/era5_wind.nc`` (ERA5 layout) and return its path."""
    import netCDF4

    sc = _scenario(scenario)
    path = Path(folder) / WIND_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    first = np.datetime64(sc.first_day, "h")
    hours = first + np.arange(-1, 24 * sc.n_days + 2)
    seconds = (hours - np.datetime64("1970-01-01T00", "h")).astype("timedelta64[s]").astype(np.int64)
    v = sc.volcano
    step = GRID_STEP_DEG
    lat0 = np.round(v.latitude / step) * step
    lats = np.clip(lat0 + np.arange(GRID_HALF_WIDTH_DEG, -GRID_HALF_WIDTH_DEG - step / 2, -step), -90.0, 90.0)
    lats = np.unique(lats)[::-1]  # north first, no repeat at a pole
    lon0 = np.round(v.longitude / step) * step
    lons = lon0 + np.arange(-GRID_HALF_WIDTH_DEG, GRID_HALF_WIDTH_DEG + step / 2, step)
    lons = (lons + 180.0) % 360.0 - 180.0
    levels = np.asarray(PRESSURE_LEVELS_HPA, dtype=np.float64)
    u_level, v_level = sc.wind.uv(height_km_at(levels))
    shape = (len(seconds), len(levels), len(lats), len(lons))
    u = np.broadcast_to(np.asarray(u_level, np.float32)[None, :, None, None], shape)
    w = np.broadcast_to(np.asarray(v_level, np.float32)[None, :, None, None], shape)
    tmp = path.with_name(f".{path.name}.tmp")
    with HDF_LOCK:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            nc.setncatts({
                "GRIB_centre": "ecmf",
                "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
                "GRIB_subCentre": np.int64(0),
                "Conventions": "CF-1.7",
                "institution": "European Centre for Medium-Range Weather Forecasts",
                "history": f"Fumarole sample: the wind of scenario {sc.name} (uniform in space, varying with height) "
                           "in the ERA5 pressure-level layout of the Copernicus CDS",
            })
            for name, size in (("valid_time", len(seconds)), ("pressure_level", len(levels)),
                               ("latitude", len(lats)), ("longitude", len(lons))):
                nc.createDimension(name, size)
            t = nc.createVariable("valid_time", "i8", ("valid_time",))
            t.setncatts({"long_name": "time", "standard_name": "time", "units": "seconds since 1970-01-01",
                         "calendar": "proleptic_gregorian"})
            t[:] = seconds
            p = nc.createVariable("pressure_level", "f8", ("pressure_level",))
            p.setncatts({"long_name": "pressure", "units": "hPa", "positive": "down",
                         "stored_direction": "decreasing", "standard_name": "air_pressure"})
            p[:] = levels
            la = nc.createVariable("latitude", "f8", ("latitude",))
            la.setncatts({"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude",
                          "stored_direction": "decreasing"})
            la[:] = lats
            lo = nc.createVariable("longitude", "f8", ("longitude",))
            lo.setncatts({"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"})
            lo[:] = lons
            dims = ("valid_time", "pressure_level", "latitude", "longitude")
            for name, data, long_name, std in (("u", u, "U component of wind", "eastward_wind"),
                                               ("v", w, "V component of wind", "northward_wind")):
                var = nc.createVariable(name, "f4", dims, zlib=True, complevel=1, fill_value=np.float32(np.nan),
                                        chunksizes=(1, len(levels), len(lats), len(lons)))
                var.setncatts({"long_name": long_name, "units": "m s**-1", "standard_name": std,
                               "GRIB_paramId": np.int64(131 if name == "u" else 132), "GRIB_shortName": name})
                var[:] = data
        finally:
            nc.close()
    os.replace(tmp, path)
    return path
