"""Geostationary imagers in the sample archive: the scene model and the writers of format-faithful files.

:mod:`app.sample.geo.scene` turns the scenario into what an imager sees (generic channels, any grid); the writers
pack it into real formats: :mod:`app.sample.geo.abi` (GOES ABI L1b netCDF), :mod:`app.sample.geo.ahi` (Himawari
Standard Data), :mod:`app.sample.geo.seviri` (Meteosat SEVIRI Level 1.5 netCDF), :mod:`app.sample.geo.fci`
(MTG-I FCI L1c FDHSI, 40 netCDF4 body chunks per slot), :mod:`app.sample.geo.ctth` (NWC SAF GEO cloud top
temperature and height, v2018 layout before 2025 and v2025 from 2025). The imager and the CTTH product of one
slot share the cloud tops of :func:`~app.sample.geo.scene.grid_cloud_top` on the imager's grid;
:mod:`app.sample.archive` writes the ring.
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
