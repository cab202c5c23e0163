"""Damaged GEO files: every reader (ABI L1b netCDF, AHI HSD, SEVIRI netCDF, NWC SAF CTTH) turns a truncated,
zero-byte, garbage, foreign (a valid netCDF with other variables) or transposed copy of a real sample file into a
GranuleError naming the file and the reason — never another exception, never a hang — and the rest of the slot is
still served where it can be."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
from conftest import archive_over

from app.data import geo
from app.data.errors import GranuleError
from app.data.geo_abi import read_abi
from app.data.geo_ahi import read_ahi
from app.data.geo_seviri import read_seviri
from app.data.nwcsaf import read_ctth
from app.render import geo as render
from app.services import geo as services

T15 = pd.Timestamp("2021-04-12T15:00")
DAMAGES = ("truncated", "zero_bytes", "garbage", "wrong_variables", "transposed")
_POOL = ThreadPoolExecutor(1, thread_name_prefix="damaged-read")


def _bounded(fn, *args, timeout: float = 60.0):
    """``fn(*args)`` in a thread: a hang fails the test instead of blocking it."""
    return _POOL.submit(fn, *args).result(timeout=timeout)


def _raises_granule_error(fn, *args) -> GranuleError:
    try:
        _bounded(fn, *args)
    except GranuleError as exc:
        return exc
    raise AssertionError(f"{fn.__name__} read a damaged file without a GranuleError")


# --- making damaged copies -------------------------------------------------------------------------------------


def _copy_nc(src: Path, dst: Path, transpose: bool) -> None:
    """A netCDF copy: the same file, or with every 2-D variable of the image transposed (its dims reversed)."""
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w", format=a.data_model) as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        for name, dim in a.dimensions.items():
            b.createDimension(name, None if dim.isunlimited() else len(dim))
        for name, var in a.variables.items():
            var.set_auto_maskandscale(False)
            dims = var.dimensions
            image = transpose and len(dims) == 2 and len(a.dimensions[dims[0]]) > 50 \
                and len(a.dimensions[dims[1]]) > 50
            attrs = {k: var.getncattr(k) for k in var.ncattrs()}
            fill = attrs.pop("_FillValue", None)
            out = b.createVariable(name, var.datatype, dims[::-1] if image else dims, fill_value=fill)
            out.set_auto_maskandscale(False)
            out.setncatts(attrs)
            values = var[...]
            out[...] = np.asarray(values).T if image else values


def _foreign_nc(src: Path, dst: Path) -> None:
    """A valid netCDF file with the source's global attributes but other variables."""
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w") as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        b.createDimension("time", 3)
        b.createVariable("temperature", "f4", ("time",))[:] = [280.0, 281.5, 279.0]


def _damage_nc(src: Path, dst: Path, kind: str) -> None:
    if src == dst:  # in place: from a copy of the original
        original = dst.with_name(dst.name + ".orig")
        shutil.move(dst, original)
        _damage_nc(original, dst, kind)
        original.unlink()
        return
    data = src.read_bytes()
    if kind == "truncated":
        dst.write_bytes(data[: len(data) // 2])
    elif kind == "zero_bytes":
        dst.write_bytes(b"")
    elif kind == "garbage":
        dst.write_bytes(np.random.default_rng(7).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif kind == "wrong_variables":
        _foreign_nc(src, dst)
    else:
        _copy_nc(src, dst, transpose=True)


def _one(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    assert found, pattern
    return found[0]


# --- each reader, each damage ----------------------------------------------------------------------------------


def test_an_untouched_copy_reads_back(tiny_archive_path, tmp_path):
    """The copying itself keeps the files readable (so the damage is what the readers refuse)."""
    src = _one("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc", tiny_archive_path)
    dst = tmp_path / src.name
    _copy_nc(src, dst, transpose=False)
    np.testing.assert_array_equal(read_abi([dst], ["ir_105"])["ir_105"].values,
                                  read_abi([src], ["ir_105"])["ir_105"].values)
    ctth = _one("nwcsaf_ctth/GOES16/*/*/*/*T150000Z.nc", tiny_archive_path)
    _copy_nc(ctth, tmp_path / ctth.name, transpose=False)
    np.testing.assert_array_equal(read_ctth(tmp_path / ctth.name)["cloud_top_height"].values,
                                  read_ctth(ctth)["cloud_top_height"].values)


REASONS = {  # what each kind of damage is called (a part of the sentence)
    "truncated": ("truncated", "cannot be", "not a usable", "not a valid"),
    "zero_bytes": ("cannot be", "truncated", "not a valid"),
    "garbage": ("cannot be", "not a valid", "not a usable"),
    "wrong_variables": ("has no variable", "not a SEVIRI Level 1.5 netCDF file"),
    "transposed": ("has dimensions", "transposed"),
}


@pytest.mark.parametrize("kind", DAMAGES)
def test_abi_damaged_band_is_a_granule_error(tiny_archive_path, tmp_path, kind):
    src = _one("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc", tiny_archive_path)
    dst = tmp_path / src.name
    _damage_nc(src, dst, kind)
    exc = _raises_granule_error(read_abi, [dst], ["ir_105"])
    assert exc.path == str(dst) and str(exc).startswith(f"{dst}: ")
    assert any(word in exc.problem for word in REASONS[kind]), exc.problem


@pytest.mark.parametrize("kind", DAMAGES)
def test_seviri_damaged_file_is_a_granule_error(tiny_archive_path, tmp_path, kind):
    src = _one("seviri/MSG4/*/*/*/*MSG4+SEVIRI_C_EUMG_20210412150009.nc", tiny_archive_path)
    dst = tmp_path / src.name
    _damage_nc(src, dst, kind)
    exc = _raises_granule_error(read_seviri, dst, ["ir_108", "vis_06"])
    assert exc.path == str(dst)
    reasons = REASONS[kind] + (("global attribute",) if kind == "wrong_variables" else ())
    assert any(word in exc.problem for word in reasons), exc.problem


@pytest.mark.parametrize("kind", DAMAGES)
def test_ctth_damaged_file_is_a_granule_error(tiny_archive_path, tmp_path, kind):
    src = _one("nwcsaf_ctth/GOES16/*/*/*/*T150000Z.nc", tiny_archive_path)
    dst = tmp_path / src.name
    _damage_nc(src, dst, kind)
    exc = _raises_granule_error(read_ctth, dst)
    assert exc.path == str(dst)
    assert any(word in exc.problem for word in REASONS[kind]), exc.problem


def _hsd_damage(src: Path, dst: Path, kind: str, other_band: Path) -> None:
    import bz2

    raw = bz2.decompress(src.read_bytes())
    if kind == "truncated":
        out = raw[: len(raw) // 2]
    elif kind == "zero_bytes":
        out = b""
    elif kind == "garbage":
        out = np.random.default_rng(11).integers(0, 256, len(raw), dtype=np.uint8).tobytes()
    elif kind == "wrong_variables":  # a whole valid HSD file, of another band, under this band's name
        out = bz2.decompress(other_band.read_bytes())
    else:  # the header's lines and columns swapped (block 2: number, length, bits, columns, lines, …)
        buf = bytearray(raw)
        start = int.from_bytes(buf[1:3], "little")  # block 1's length: block 2 starts there
        cols, lines = slice(start + 5, start + 7), slice(start + 7, start + 9)
        buf[cols], buf[lines] = raw[lines], raw[cols]
        out = bytes(buf)
    dst.write_bytes(bz2.compress(out) if kind != "zero_bytes" else b"")


@pytest.mark.parametrize("kind", DAMAGES)
def test_ahi_damaged_segment_is_a_granule_error(tiny_archive_path, tmp_path, kind):
    folder = _one("ahi/H08/2021/04/12", tiny_archive_path)
    segments = sorted(folder.glob("HS_H08_20210412_1500_B13_FLDK_R20_S*.DAT.bz2"))
    other = _one("HS_H08_20210412_1500_B14_FLDK_R20_S0310.DAT.bz2", folder)
    for seg in segments:
        shutil.copy(seg, tmp_path / seg.name)
    damaged = tmp_path / segments[2].name
    _hsd_damage(segments[2], damaged, kind, other)
    copies = sorted(tmp_path.glob("*.DAT.bz2"))
    exc = _raises_granule_error(read_ahi, copies, ["ir_105"])
    assert exc.path == str(damaged)
    reasons = REASONS[kind] + ("is named as band B13 but its header (block 5) holds band B14",
                               "does not match the other B13 segments", "not a valid HSD file", "truncated")
    assert any(word in exc.problem for word in reasons), exc.problem
    if kind == "wrong_variables":
        assert exc.problem == "is named as band B13 but its header (block 5) holds band B14"
    if kind == "transposed":
        assert "does not match the other B13 segments" in exc.problem


# --- the rest of the slot is still served ------------------------------------------------------------------------




def test_other_channels_and_products_of_a_slot_are_still_served(tiny_copy, tmp_path):
    c13 = _one("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc", tiny_copy)
    _damage_nc(c13, c13, "garbage")
    b13 = _one("ahi/H08/*/*/*/HS_H08_20210412_1500_B13_FLDK_R20_S0510.DAT.bz2", tiny_copy)
    b13.write_bytes(b13.read_bytes()[:500])
    ctth = _one("nwcsaf_ctth/MSG4/*/*/*/*T150000Z.nc", tiny_copy)
    _damage_nc(ctth, ctth, "transposed")
    archive = archive_over(tiny_copy, tmp_path)

    # ABI: the damaged band is named, the eleven others read
    with pytest.raises(GranuleError, match="OR_ABI-L1b-RadF-M6C13_G16"):
        geo.read_scene(archive, "G16", T15)
    scene = geo.read_scene(archive, "G16", T15, skip_damaged=True)
    assert "ir_105" not in scene and len(scene.data_vars) == 11
    assert scene.attrs["damaged"][0]["channel"] == "ir_105" and scene.attrs["damaged"][0]["path"] == str(c13)
    assert 180 < float(np.nanmean(scene["ir_120"].values)) < 320
    # a product that does not need C13 is drawn; one that does names the file
    natural = render.frame(services.load_product(archive, "G16", T15, "natural_color"), "natural_color", width=64)
    assert natural.shape == (64, 64, 4) and (natural.values[..., 3] == 255).any()
    with pytest.raises(GranuleError, match="OR_ABI-L1b-RadF-M6C13_G16"):
        services.load_product(archive, "G16", T15, "ash")

    # AHI: a damaged B13 segment spoils B13 only
    with pytest.raises(GranuleError, match="HS_H08_20210412_1500_B13_FLDK_R20_S0510"):
        geo.read_scene(archive, "H08", T15, ["ir_105"])
    himawari = geo.read_scene(archive, "H08", T15, skip_damaged=True)
    assert "ir_105" not in himawari and "ir_120" in himawari and len(himawari.attrs["damaged"]) == 1

    # SEVIRI with a transposed CTTH: the imagery is whole, the cloud top is named
    meteosat = geo.read_scene(archive, "MSG4", T15, ["ir_108"])
    assert 180 < float(np.nanmean(meteosat["ir_108"].values)) < 320
    with pytest.raises(GranuleError, match=r"S_NWC_CTTH_MSG4_FULL-DISK_20210412T150000Z.nc: variable 'ctth_alti' "
                                           r"has dimensions \(nx, ny\), expected \(ny, nx\)"):
        geo.read_cloud_top(archive, "MSG4", T15)
    # and the other slot of the same satellite is untouched
    assert geo.read_cloud_top(archive, "MSG4", "2021-04-12T12:00")["cloud_top_height"].shape == (232, 232)


# --- whatever a reader raises is a skipped file, named with its reason -----------------------------------------------


def test_any_reader_exception_is_a_granule_error_naming_the_file(tiny_copy, tmp_path, monkeypatch):
    """A reader that fails with something other than a GranuleError (a bug of the layout it met, a library's
    ValueError) costs only the files it was reading: named relative to the archive root, the rest served."""
    import app.data.geo_abi as geo_abi
    import app.data.nwcsaf as nwcsaf

    real_abi = geo_abi.read_abi

    def abi_failing_on_c13(paths, channels):
        if "ir_105" in channels:
            raise ValueError("conflicting sizes for dimension 'y'")
        return real_abi(paths, channels)

    def ctth_failing(path):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(geo_abi, "read_abi", abi_failing_on_c13)
    monkeypatch.setattr(nwcsaf, "read_ctth", ctth_failing)
    geo.clear_cache()
    archive = archive_over(tiny_copy, tmp_path)
    c13 = _one("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc", tiny_copy)

    with pytest.raises(GranuleError) as caught:
        geo.read_scene(archive, "G16", T15, ["ir_105", "ir_120"])
    assert caught.value.path == str(c13)
    assert caught.value.problem == "cannot be read: ValueError: conflicting sizes for dimension 'y'"
    assert archive.describe(caught.value) == (f"{c13.relative_to(tiny_copy)}: cannot be read: ValueError: "
                                              "conflicting sizes for dimension 'y'")
    scene = geo.read_scene(archive, "G16", T15, skip_damaged=True)
    assert "ir_105" not in scene and len(scene.data_vars) == 11
    assert scene.attrs["damaged"] == [{"channel": "ir_105", "path": str(c13),
                                       "problem": "cannot be read: ValueError: conflicting sizes for dimension 'y'"}]
    assert 180 < float(np.nanmean(scene["ir_120"].values)) < 320

    ctth = _one("nwcsaf_ctth/GOES16/*/*/*/*T150000Z.nc", tiny_copy)
    with pytest.raises(GranuleError) as caught:
        geo.read_cloud_top(archive, "G16", T15)
    assert caught.value.path == str(ctth)
    assert caught.value.problem == "cannot be read: IndexError: tuple index out of range"
    geo.clear_cache()
