"""Geostationary imagers in the sample archive: the scene model and the writers of format-faithful files.

:mod:`app.sample.geo.scene` turns the scenario into what an imager sees (generic channels, any grid); the writers
pack it into real formats: :mod:`app.sample.geo.abi` (GOES ABI L1b netCDF), :mod:`app.sample.geo.ctth`
(NWC SAF GEO cloud top temperature and height).
"""

from app.sample.geo.scene import (
    CloudTop,
    GeoGrid,
    cloud_top,
    grid_cloud_top,
    scan_angles_to_lonlat,
    simulate_channels,
)

__all__ = ["CloudTop", "GeoGrid", "cloud_top", "grid_cloud_top", "scan_angles_to_lonlat", "simulate_channels"]
