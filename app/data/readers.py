"""The reader registry: a catalogue entry's ``reader:`` key names the Fumarole reader of its files.

Each reader turns the files of one product into one of our canonical xarray datasets (docs/architecture.md,
"Canonical data"). A catalogue names a reader by its registry key (``tropomi_l2_so2``, ``abi_l1b`` …); the older
``module:function`` spelling of our own readers is accepted for the catalogues written before the registry. Only
the readers registered here can be named: a catalogue cannot make the server import arbitrary code.

Readers are imported when first asked for, so a server that shows only TROPOMI never imports satpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from app.data.errors import UserInputError

__all__ = ["READERS", "Reader", "reader_for", "register_reader"]


@dataclass(frozen=True)
class Reader:
    """One registered reader: its key, where the function lives, the canonical form it returns, and the formats."""

    key: str
    target: str  # "module:function"
    canonical: str  # swath, curtain, geo_scene, cloud_top, wind
    formats: str  # what files it reads, in words

    def load(self) -> Callable:
        """The reader function (imported on first use)."""
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


#: Registry key -> :class:`Reader`.
READERS: dict[str, Reader] = {}


def register_reader(key: str, target: str, canonical: str, formats: str) -> Reader:
    """Register the reader ``target`` (``module:function`` inside ``app``) under ``key``."""
    if not target.startswith("app.") or ":" not in target:
        raise ValueError(f"a reader must be a function of the app package as module:function, got {target!r}")
    READERS[key] = Reader(key, target, canonical, formats)
    return READERS[key]


register_reader("tropomi_l2_so2", "app.data.tropomi:read_swath", "swath", "Sentinel-5P TROPOMI L2 SO2 (netCDF4)")
register_reader("caliop_l1b", "app.data.caliop:read_curtain", "curtain", "CALIPSO CALIOP L1B profiles (HDF4)")
register_reader("abi_l1b", "app.data.geo_abi:read_abi", "geo_scene", "GOES-R ABI L1b radiances (netCDF4)")
register_reader("ahi_hsd", "app.data.geo_ahi:read_ahi", "geo_scene", "Himawari AHI Standard Data segments")
register_reader("seviri_l1b", "app.data.geo_seviri:read_seviri", "geo_scene",
                "Meteosat SEVIRI level 1.5 (netCDF, native, HRIT)")
register_reader("fci_l1c_nc", "app.data.geo_fci:read_fci", "geo_scene", "MTG FCI L1c FDHSI chunks (netCDF4)")
register_reader("nwcsaf_geo", "app.data.nwcsaf:read_ctth", "cloud_top", "NWC SAF GEO CTTH (netCDF4)")


def reader_for(name: str) -> Callable:
    """The reader function a catalogue's ``reader:`` value names (a registry key, or one of our ``module:function``).

    An unknown name is a :class:`UserInputError` listing the registered keys.
    """
    text = str(name).strip()
    if text in READERS:
        return READERS[text].load()
    for reader in READERS.values():
        if reader.target == text:
            return reader.load()
    raise UserInputError(f"unknown reader {name!r} in the catalogue; the registered readers are "
                         f"{', '.join(sorted(READERS))}")
