"""GEO imagery from object storage: the tiny archive on a local S3 server (moto) and over HTTP, read through the
catalogue a user would write, against the same archive on the local file system in the same run.

Slots come from listings of the asked day's prefixes (app.data.geo_slots); ABI files are read by byte ranges
(satpy FSFile on app.data.storage.open_binary), HSD segments and SEVIRI files through the kept local copies
(app.data.storage.local_copy), NWC SAF by byte ranges (h5netcdf). Bytes are counted by app.data.storage.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.remote_servers")

from app.data import geo, geo_slots, storage  # noqa: E402
from app.data.archive import Archive  # noqa: E402
from app.data.errors import GranuleError  # noqa: E402
from app.science import rgb  # noqa: E402
from app.services import geo as geo_service  # noqa: E402
from tests.remote_servers import KEY_ENV, SECRET_ENV, write_remote_catalog  # noqa: E402

pytest_plugins = ["tests.remote_servers"]

DAY = ("2021-04-12", "2021-04-13")
SLOT = "2021-04-12 15:00"
TIMES: dict[str, float] = {}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private per-user cache of local copies (so that 'the second read transfers nothing' is this test's)."""
    monkeypatch.setenv("FUMAROLE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def s3_archive(s3_tiny_archive, tmp_path, monkeypatch, cache_dir) -> Archive:
    """The S3 copy of the tiny archive through a catalogue written as a user would (credentials from the env)."""
    monkeypatch.setenv(KEY_ENV, s3_tiny_archive.storage_options["key"])
    monkeypatch.setenv(SECRET_ENV, s3_tiny_archive.storage_options["secret"])
    path = write_remote_catalog(tmp_path, s3_tiny_archive.root, s3_tiny_archive.storage_options)
    geo.clear_cache()
    geo_slots.clear()
    return Archive(str(path))


@pytest.fixture
def local_archive(tiny_archive_path) -> Archive:
    """The tiny archive on the local file system (the catalogue of the repository)."""
    from app.data.catalog import CATALOGS_DIR

    return Archive(str(CATALOGS_DIR / "tiny.yaml"))


def _relative(paths, root: str) -> list[str]:
    return [str(p)[len(root):].lstrip("/") for p in paths]


def _bytes() -> int:
    return sum(storage.transfer_stats().values())


def test_slots_of_one_platform_and_day_come_from_its_prefixes(s3_archive, s3_tiny_archive, local_archive):
    remote = geo.slots(s3_archive, "G17", *DAY)
    local = geo.slots(local_archive, "G17", *DAY)
    assert list(remote["time"]) == list(local["time"]) and len(remote) == 2
    assert [r for p in remote["paths"] for r in _relative(p, s3_tiny_archive.root)] == \
        [r for p in local["paths"] for r in _relative(p, local_archive.root)]
    assert remote["paths"].iloc[0][0].startswith("s3://fumarole-tiny/archive/abi/G17/2021/04/12/OR_ABI-L1b-RadF-M6C")
    assert remote["cloud_top"].iloc[1] == ("s3://fumarole-tiny/archive/nwcsaf_ctth/GOES17/2021/04/12/"
                                           "S_NWC_CTTH_GOES17_FULL-DISK_20210412T150000Z.nc")
    abi = geo._lister(s3_archive, "geo_abi_l1b")
    assert abi.listed == ["G17/2021/04/12"]
    assert geo.days(s3_archive, "G17") == geo.days(local_archive, "G17")


def _ash(archive, platform):
    scene = geo_service.load_product(archive, platform, SLOT, "ash")
    return scene, rgb.compose(scene, "ash", geo.ring_position(platform, SLOT, archive).sensor)


@pytest.mark.parametrize("platform", ["G17", "H08"])
def test_an_ash_rgb_frame_from_s3_equals_the_local_one(platform, s3_archive, local_archive):
    t0 = time.perf_counter()
    local_scene, local_rgb = _ash(local_archive, platform)
    TIMES[f"{platform} local"] = time.perf_counter() - t0
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    scene, remote_rgb = _ash(s3_archive, platform)
    TIMES[f"{platform} s3"] = time.perf_counter() - t0
    first = _bytes()
    np.testing.assert_array_equal(np.asarray(remote_rgb), np.asarray(local_rgb))
    assert np.isfinite(np.asarray(remote_rgb)).mean() > 0.3
    assert sorted(scene.data_vars) == sorted(local_scene.data_vars)
    assert all(s.startswith("s3://fumarole-tiny/archive/") for s in scene.attrs["source"])
    sizes = {u: storage.stamp(u)[2] for u in storage.transfer_stats()}
    assert first > 0 and set(sizes) <= set(scene.attrs["source"])
    if platform == "G17":  # by byte ranges: only the files of the recipe's channels (one ABI file per band)
        assert len(sizes) == len(scene.data_vars) and first <= sum(sizes.values())
    # read again without the decoded channels: HSD segments from the kept copies (nothing fetched); ABI ranges
    # at most once more (storage's block cache may hold them)
    geo.clear_cache()
    storage.reset_transfer_stats()
    _, again = _ash(s3_archive, platform)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(local_rgb))
    if platform == "H08":
        assert _bytes() == 0
    else:
        assert _bytes() <= first
    print(f"\n{platform} Ash RGB: local {TIMES[f'{platform} local']:.2f} s, S3 {TIMES[f'{platform} s3']:.2f} s, "
          f"{first} bytes of {sum(sizes.values())} in {len(sizes)} files")


def test_the_cloud_top_height_from_s3_equals_the_local_one(s3_archive, local_archive):
    storage.reset_transfer_stats()
    remote = geo.read_cloud_top(s3_archive, "G17", SLOT)
    local = geo.read_cloud_top(local_archive, "G17", SLOT)
    np.testing.assert_array_equal(remote["cloud_top_height"].values, local["cloud_top_height"].values)
    assert np.nanmax(remote["cloud_top_height"].values) > 5000.0
    assert remote.attrs["source"].startswith("s3://fumarole-tiny/archive/nwcsaf_ctth/GOES17/")
    (url, sent), = storage.transfer_stats().items()
    assert url == remote.attrs["source"] and 0 < sent <= storage.stamp(url)[2]


def test_the_rings_latest_from_s3(s3_archive, local_archive):
    remote, local = geo.ring_latest(s3_archive), geo.ring_latest(local_archive)
    assert list(remote["time"]) == list(local["time"])
    assert list(remote["platform"]) == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert all(p.startswith("s3://") for paths in remote["paths"] for p in paths)


def test_a_frame_over_http(http_tiny_archive, tmp_path, cache_dir, local_archive):
    path = write_remote_catalog(tmp_path, http_tiny_archive.root, {})
    geo.clear_cache()
    arch = Archive(str(path))
    found = geo.slots(arch, "G16", *DAY)
    assert len(found) == 2 and found["paths"].iloc[1][0].startswith(f"{http_tiny_archive.root}/abi/G16/2021/04/12/")
    _, remote_rgb = _ash(arch, "G16")
    _, local_rgb = _ash(local_archive, "G16")
    np.testing.assert_array_equal(np.asarray(remote_rgb), np.asarray(local_rgb))
    served = {k: v for k, v in http_tiny_archive.bytes_served.items() if k.endswith(".nc")}
    assert served and all("/abi/G16/" in k or "/nwcsaf_ctth/" in k for k in served)


def test_a_missing_object_is_said_and_the_other_slots_served(s3_archive, s3_tiny_archive):
    fs = s3_tiny_archive.server.filesystem()
    slot = geo.slots(s3_archive, "G16", *DAY)
    c13 = next(p for p in slot["paths"].iloc[1] if "M6C13_" in p)
    key = c13[len("s3://"):]
    data = fs.cat_file(key)
    fs.rm_file(key)
    storage.forget_stamps()
    try:
        geo.clear_cache()
        with pytest.raises(GranuleError) as exc:
            geo.read_scene(s3_archive, "G16", SLOT, ["ir_105"])
        assert str(exc.value).startswith(c13) and "no such object" in str(exc.value)
        other = geo.read_scene(s3_archive, "G16", "2021-04-12 12:00", ["ir_105"])
        assert np.isfinite(other["ir_105"].values).any()
        survived = geo.read_scene(s3_archive, "G16", SLOT, ["ir_105", "ir_112"], skip_damaged=True)
        assert list(survived.data_vars) == ["ir_112"]
        assert survived.attrs["damaged"][0]["path"] == c13
    finally:
        fs.pipe_file(key, data)
        storage.forget_stamps()


def test_bad_credentials_or_a_missing_bucket_name_the_source(s3_tiny_archive, tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    monkeypatch.setenv(SECRET_ENV, "not-a-secret")
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))  # no listing kept from the tests above
    path = write_remote_catalog(tmp_path, s3_tiny_archive.root, s3_tiny_archive.storage_options, name="bad.yaml")
    geo_slots.clear()
    arch = Archive(str(path))
    with pytest.raises(GranuleError) as exc:
        geo.slots(arch, "G16", *DAY)
    assert str(exc.value).startswith("s3://fumarole-tiny/archive/abi/G16/2021/04/12")
    assert "cannot be listed" in str(exc.value)
    monkeypatch.setenv(KEY_ENV, s3_tiny_archive.storage_options["key"])
    monkeypatch.setenv(SECRET_ENV, s3_tiny_archive.storage_options["secret"])
    gone = write_remote_catalog(tmp_path, "s3://fumarole-no-such-bucket/archive", s3_tiny_archive.storage_options,
                                name="gone.yaml")
    arch = Archive(str(gone))
    with pytest.raises(GranuleError) as exc:
        geo.slots(arch, "G16", *DAY)
    assert str(exc.value).startswith("s3://fumarole-no-such-bucket/archive/abi/G16/2021/04/12: cannot be listed: "
                                     "the bucket does not exist")


def test_the_ring_is_served_when_one_source_cannot_be_listed(s3_tiny_archive, tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv(KEY_ENV, s3_tiny_archive.storage_options["key"])
    monkeypatch.setenv(SECRET_ENV, s3_tiny_archive.storage_options["secret"])
    path = write_remote_catalog(tmp_path, s3_tiny_archive.root, s3_tiny_archive.storage_options, name="ring.yaml")
    text = path.read_text().replace(f"{s3_tiny_archive.root}/ahi/", "s3://fumarole-no-such-bucket/ahi/")
    assert "s3://fumarole-no-such-bucket/ahi/" in text
    path.write_text(text)
    geo_slots.clear()
    ring = geo.ring_latest(Archive(str(path))).set_index("platform")
    assert ring.loc["G17", "time"] == np.datetime64("2021-04-12T15:00") and not ring.loc["G17", "note"]
    assert ring.loc["MSG4", "time"] == np.datetime64("2021-04-12T15:00")
    assert pd.isna(ring.loc["H08", "time"]) and ring.loc["H08", "stale"]
    assert ring.loc["H08", "note"].startswith("s3://fumarole-no-such-bucket/ahi/")
    assert "the bucket does not exist" in ring.loc["H08", "note"]
