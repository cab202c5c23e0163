"""MTG-I FCI Level 1c FDHSI (Meteosat-12 and later) -> canonical GeoScene, read by satpy's ``fci_l1c_nc`` reader.

The format
----------
A full-disk repeat cycle (10 min) is 40 netCDF4 *body chunks*, chunk 1 the southernmost strip, named
``W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_<processing time>_IDPFI_OPE_
<start>_<end>_N__O_<repeat cycle of the day>_<chunk>.nc`` (pattern ``geo_fci_l1c`` of :mod:`app.data.filenames`).
Each chunk holds the 16 channels in groups ``data/<channel>/measured`` (``effective_radiance`` counts with
``scale_factor``/``add_offset``, the x/y scan angles, the radiance -> brightness temperature or reflectance
coefficients, ``pixel_quality``, ``index_map``), the grid mapping ``data/mtg_geos_projection`` and per-swath
state tables (FCI L1 Product User Guide, EUMETSAT doc 45923; :mod:`app.sample.geo.fci` describes every variable).
The infrared channels are on the 2 km grid (5568²), the solar channels on the 1 km grid (11136²).

Satpy's ``fci_l1c_nc`` reader (the field's maintained code: calibration per the PUG, chunk stacking and padding
of missing chunks, new MTG-I satellites) reads them; :func:`app.data.geo_satpy.load_canonical` turns its Scene
into our GeoScene: north up, solar channels averaged over whole blocks onto the infrared grid, generic names.

Generic channels
----------------
``vis_04`` ``vis_05`` ``vis_06`` ``nir_08`` (vis_08) ``vis_09`` ``nir_13`` ``nir_16`` ``nir_22`` (reflectance, %),
``ir_39`` (ir_38) ``wv_62`` (wv_63) ``wv_73`` ``ir_87`` ``ir_96`` (ir_97) ``ir_105`` ``ir_120`` (ir_123) ``ir_133``
(brightness temperature, K): :data:`app.data.geo_bands.FCI_BANDS`. The longwave window is ``ir_105``.

The canonical GeoScene is that of :mod:`app.data.geo_abi` (dims ``(y, x)``, x/y metres, attrs ``platform``
``Meteosat-12``, ``platform_id`` ``MTI1``, ``sensor`` ``fci``, the nominal slot from the repeat cycle, …).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import xarray as xr

from app.core.locks import HDF_LOCK
from app.data.errors import GranuleError, UserInputError
from app.data.filenames import PATTERNS
from app.data.geo_bands import FCI_BANDS, FULL_DISK
from app.data.geo_satpy import basename, is_remote, load_canonical, localised

__all__ = ["read_fci", "GENERIC_FCI", "FCI_GENERIC", "check_chunk_file", "slot_chunks", "channels_in"]

#: Generic channel -> FCI channel name (satpy's dataset name).
GENERIC_FCI: dict[str, str] = {b.generic: b.band_id for b in FCI_BANDS.values()}
#: FCI channel name -> generic channel.
FCI_GENERIC: dict[str, str] = {v: k for k, v in GENERIC_FCI.items()}
#: Variables every channel group of a chunk has (a subset of satpy's ``required_netcdf_variables``).
_MEASURED = ("effective_radiance", "x", "y", "start_position_row", "end_position_row")
_GLOBAL_VARIABLES = ("data/mtg_geos_projection", "index", "time", "state/celestial/earth_sun_distance")


def _normalise_channels(channels: Iterable[str] | None) -> list[str]:
    if channels is None:
        return list(GENERIC_FCI)
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_FCI]
    if unknown:
        raise UserInputError(f"FCI has no channel {', '.join(unknown)}; its channels are {', '.join(GENERIC_FCI)}")
    return list(dict.fromkeys(names))


def channels_in(path: str | Path) -> list[str]:
    """The generic channels whose groups ``data/<channel>/measured`` one chunk holds, in band order."""
    import netCDF4

    path = Path(path)
    with HDF_LOCK:
        try:
            with netCDF4.Dataset(path, "r") as nc:
                groups = set(nc.groups["data"].groups) if "data" in nc.groups else set()
        except OSError as exc:
            raise GranuleError(path, f"cannot be opened as netCDF4 (truncated or not an FCI L1c file?): "
                                     f"{exc}") from None
    found = [g for g, name in GENERIC_FCI.items() if name in groups]
    if not found:
        raise GranuleError(path, "has no channel group data/<channel>/measured: not an FCI L1c FDHSI chunk")
    return found


def slot_chunks(paths: Sequence[str | Path]) -> dict[tuple, list[Path]]:
    """The chunk files grouped by slot: ``(platform, repeat-cycle start)`` -> paths sorted by chunk number.

    A file whose name is not an FCI L1c FDHSI body chunk raises :class:`GranuleError` naming it.
    """
    pattern = PATTERNS["geo_fci_l1c"]
    slots: dict[tuple, list[tuple[int, Path]]] = {}
    for p in paths:
        f = pattern.parse(p)
        slots.setdefault((f["platform"], f["slot"]), []).append((f["chunk"], p))
    return {k: [p for _, p in sorted(v)] for k, v in slots.items()}


def _check_names(paths: list[Path]) -> None:
    """One slot of one satellite, each chunk once: refused before satpy opens anything."""
    slots = slot_chunks(paths)
    if len(slots) > 1:
        shown = ", ".join(f"{k[0]} {k[1]:%Y-%m-%d %H:%M}" for k in sorted(slots))
        raise GranuleError(paths[0], f"these FCI chunks belong to different slots or satellites ({shown}): read "
                                     "one repeat cycle at a time")
    numbers: dict[int, Path] = {}
    for p in paths:
        n = PATTERNS["geo_fci_l1c"].parse(p)["chunk"]
        if n in numbers:
            raise GranuleError(p, f"is chunk {n} of its repeat cycle, and so is {basename(numbers[n])}: give each "
                                  "chunk once")
        numbers[n] = p


def check_chunk_file(path: str | Path, channels: Iterable[str] = ("ir_105",)) -> None:
    """Open one chunk and check what satpy needs; raise :class:`GranuleError` naming the file and what is wrong."""
    import netCDF4

    path = Path(path)
    with HDF_LOCK:
        try:
            nc = netCDF4.Dataset(path, "r")
        except OSError as exc:
            raise GranuleError(path, f"cannot be opened as netCDF4 (truncated or not an FCI L1c file?): "
                                     f"{exc}") from None
        try:
            if "platform" not in nc.ncattrs():
                raise GranuleError(path, "has no global attribute 'platform': not an FCI L1c file")
            for name in _GLOBAL_VARIABLES:
                _lookup(nc, path, name)
            for generic in channels:
                group = f"data/{GENERIC_FCI[generic]}/measured"
                for name in _MEASURED:
                    var = _lookup(nc, path, f"{group}/{name}")
                    if name == "effective_radiance":
                        _check_radiance(path, group, var)
        finally:
            nc.close()


def _lookup(nc, path: Path, name: str):
    node = nc
    parts = name.split("/")
    try:
        for part in parts[:-1]:
            node = node.groups[part]
        return node.variables[parts[-1]]
    except KeyError:
        raise GranuleError(path, f"has no variable {name}: not a complete FCI L1c FDHSI chunk") from None


def _check_radiance(path: Path, group: str, var) -> None:
    if tuple(var.dimensions) != ("y", "x"):
        raise GranuleError(path, f"variable {group}/effective_radiance has dimensions ({', '.join(var.dimensions)}), "
                                 "expected (y, x)")
    try:
        var.set_auto_maskandscale(False)
        var[:1, :1]
    except (RuntimeError, OSError, IndexError) as exc:
        raise GranuleError(path, f"variable {group}/effective_radiance cannot be read (truncated file?): "
                                 f"{exc}") from None


def read_fci(paths: Sequence[str | Path], channels: Iterable[str] | None = None) -> xr.Dataset:
    """Read the FDHSI body chunks of one FCI repeat cycle into a canonical GeoScene (see the module docstring).

    ``paths``: the chunk files of one slot (all 40, or some: satpy pads the missing ones on the real grids).
    ``channels``: generic names (``ir_105``, ``vis_06`` …); None reads every channel the first chunk holds (all 16
    in the real product). A file that cannot be used raises
    :class:`GranuleError` naming it; so do chunks of different slots or satellites, or the same chunk twice.
    """
    paths = [p if is_remote(p) else Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise UserInputError("read_fci needs at least one FCI L1c chunk file")
    for p in paths:
        if not is_remote(p) and not p.exists():  # remote: satpy's loader asks the storage (FSFile byte ranges)
            raise GranuleError(p, "no such file")
    _check_names(paths)
    if channels is not None:
        wanted = _normalise_channels(channels)
    else:
        with localised(paths[:1]) as (first, _):
            wanted = channels_in(first[0])

    def diagnose(files: list[Path]) -> None:
        for f in files:
            check_chunk_file(f, wanted)

    return load_canonical("fci_l1c_nc", paths, wanted, GENERIC_FCI, sensor="fci",
                          slot_minutes=FULL_DISK["fci"].repeat_minutes, diagnose=diagnose)
