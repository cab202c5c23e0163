"""One locking discipline for the non-thread-safe file libraries.

The HDF5 library bundled with the netCDF4, h5py and h5netcdf wheels is built without thread safety, and so is the
HDF4 library under pyhdf: two threads inside either at once can corrupt its state and crash the whole process
(a segfault, not an exception). Every read of a netCDF4/HDF5 or HDF4 file in Fumarole — opening, reading
variables, closing, and xarray loads of such files — therefore runs while holding :data:`HDF_LOCK`:

    from app.core.locks import HDF_LOCK

    with HDF_LOCK, netCDF4.Dataset(path) as ds:
        ...

It is one re-entrant lock for both libraries (a reader that opens a netCDF file from inside another read, or a
helper called under the lock, does not deadlock) and it is the only lock any reader takes. xarray's own backend
locks are taken inside it, always in that order, so no two locks are ever taken in opposite orders. Reads of
plain binary files (Himawari HSD segments) and all computation on loaded arrays run outside it.

A process pool would give parallel reads; on a 2-core machine the reads are short next to the rendering and the
lock costs little (see docs/benchmarks.md, the soak test).
"""

from __future__ import annotations

import threading

__all__ = ["HDF_LOCK"]

#: Held by every call into netCDF-C, HDF5 (netCDF4, h5py, h5netcdf) and HDF4 (pyhdf).
HDF_LOCK = threading.RLock()
