"""The tiny archive read from object storage (a local S3 server) and over HTTP, through a catalogue written as a user
would write it: the index, VolcPlume's map data, the CALIOP curtain and the time series equal the local archive's,
bytes transferred are counted, the archive is never written, and a Dask LocalCluster whose workers get URLs only
computes the time series from S3."""

from __future__ import annotations

import datetime as dt
import shutil
import time

import numpy as np
import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.remote_servers")

from app.data import storage  # noqa: E402
from app.data.archive import Archive, read_swath_cached  # noqa: E402
from app.data.index import unpack_cells  # noqa: E402
from app.services.timeseries import compute_mass_timeseries  # noqa: E402
from tests.remote_servers import KEY_ENV, SECRET_ENV, TINY, write_remote_catalog  # noqa: E402

pytest_plugins = ["tests.remote_servers"]

DAY = dt.date(2021, 4, 12)
VOLCANO = "Soufriere St Vincent"


@pytest.fixture(scope="module")
def env(tmp_path_factory, s3_tiny_archive):
    """The reader's S3 credentials in the environment (the catalogue reads them), a private download cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, s3_tiny_archive.storage_options["key"])
        mp.setenv(SECRET_ENV, s3_tiny_archive.storage_options["secret"])
        mp.setenv("FUMAROLE_CACHE_DIR", str(tmp_path_factory.mktemp("download-cache")))
        yield


@pytest.fixture(scope="module")
def listing_before(s3_tiny_archive):
    return s3_tiny_archive.listing()


@pytest.fixture(scope="module", params=["s3", "http"])
def remote(request, env, listing_before, tmp_path_factory, s3_tiny_archive, http_tiny_archive):
    """(kind, its Archive through a written catalogue, the RemoteArchive)."""
    served = s3_tiny_archive if request.param == "s3" else http_tiny_archive
    folder = tmp_path_factory.mktemp(f"catalogue-{request.param}")
    path = write_remote_catalog(folder, served.root, served.storage_options)
    text = path.read_text()
    assert served.storage_options.get("secret", "no secret") not in text  # never written, only {env(...)}
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    archive = Archive(str(path))
    archive.refresh()
    seconds = time.perf_counter() - t0
    return request.param, archive, served, str(path), seconds, sum(storage.transfer_stats().values())


@pytest.fixture(scope="module")
def local(tiny_archive_path):
    archive = Archive("tiny")
    archive.refresh()
    return archive


def _relative(table: pd.DataFrame, root: str) -> pd.DataFrame:
    t = table.copy()
    t["name"] = [p[len(root.rstrip("/")) + 1:] if p.startswith(root) else p for p in t["path"]]
    return t.set_index("name").sort_index()


def test_index_lists_the_same_granules(remote, local):
    kind, archive, served, _, seconds, fetched = remote
    report = archive.last_report
    # object storage has no empty folders: the tiny archive's empty fci/ is not there on S3
    assert [s for s in report.skipped if s != ("fci", "folder of geo_fci_l1c does not exist")] == []
    for product in ("tropomi_so2", "caliop_l1b"):
        got = _relative(archive.index.table.query("product == @product"), served.root)
        want = _relative(local.index.table.query("product == @product"), str(TINY))
        assert list(got.index) == list(want.index) and len(got) > 5
        assert got["orbit"].equals(want["orbit"]) and got["start"].equals(want["start"])
        for name in got.index:
            remote_cells = unpack_cells(got.at[name, "footprint"])
            local_cells = unpack_cells(want.at[name, "footprint"])
            if product == "caliop_l1b":  # the same file read from its cached copy
                assert (remote_cells == local_cells).all()
            else:  # the outline of the swath: every cell of the pixels' footprint, and a few at its edges
                assert (remote_cells >= local_cells).all() and remote_cells.sum() <= local_cells.sum() * 1.05
    total = sum(f.stat().st_size for f in (TINY / "tropomi").rglob("*.nc"))
    print(f"\n[{kind}] index of tropomi+caliop+geo: {seconds:.2f} s, {fetched} bytes fetched "
          f"(TROPOMI files hold {total} bytes)")


def _plume(archive) -> dict:
    from app.views.volcplume import VolcPlume

    vp = VolcPlume(archive=archive, date=DAY, zone="Caribbean")
    vp.secondary = "CALIOP 532 nm total backscatter"
    return {"counts": vp.pixel_counts(), "layers": {layer.orbit: layer for layer in vp.layers},
            "curtain": vp._current_curtain(), "caliop": vp.caliop_granule, "vp": vp}


def test_volcplume_map_and_curtain_equal_the_local_ones(remote, local):
    kind, archive, *_ = remote
    t0 = time.perf_counter()
    want = _plume(local)
    t_local = time.perf_counter() - t0
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    got = _plume(archive)
    t_remote = time.perf_counter() - t0
    fetched = storage.transfer_stats()
    assert got["counts"] == want["counts"] and sum(got["counts"].values()) > 0
    for orbit, layer in want["layers"].items():
        np.testing.assert_array_equal(got["layers"][orbit].values, layer.values)  # real SO2 values, DU
        np.testing.assert_array_equal(got["layers"][orbit].lat, layer.lat)
    assert got["caliop"] == want["caliop"]
    for name in ("total_attenuated_backscatter_532", "latitude", "altitude"):
        np.testing.assert_array_equal(got["curtain"][name].values, want["curtain"][name].values)
    assert np.nanmax(got["curtain"]["total_attenuated_backscatter_532"].values) > 0
    print(f"\n[{kind}] VolcPlume day + curtain: local {t_local:.2f} s, remote {t_remote:.2f} s, "
          f"{sum(fetched.values())} bytes fetched from {len(fetched)} files")


def test_timeseries_equals_the_local_run(remote, tiny_archive_path):
    kind, _, served, catalogue, *_ = remote
    t0 = time.perf_counter()
    want, _ = compute_mass_timeseries("tiny", VOLCANO, DAY, DAY, cache_dir=False)
    t_local = time.perf_counter() - t0
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    got, report = compute_mass_timeseries(catalogue, VOLCANO, DAY, DAY, cache_dir=False)
    t_remote = time.perf_counter() - t0
    assert report.corrupt == [] and len(got) == len(want) > 0
    np.testing.assert_array_equal(got["mass_t"].to_numpy(), want["mass_t"].to_numpy())
    assert got["mass_t"].max() > 1.0  # tonnes of SO2 near the volcano
    pd.testing.assert_frame_equal(got, want)  # granules named by their file names
    fetched = storage.transfer_stats()
    assert fetched and all(url.startswith(served.root) for url in fetched)
    print(f"\n[{kind}] time series of the day: local {t_local:.2f} s, remote {t_remote:.2f} s, "
          f"{sum(storage.transfer_stats().values())} bytes fetched")


def test_a_missing_granule_is_skipped_and_named(remote):
    kind, archive, served, *_ = remote
    url = served.url("tropomi/2021/04/12/S5P_OFFL_L2__SO2____20210412T000000_20210412T000100_99999_01_020104_"
                     "20210412T000200.nc")
    present = archive.granules("tropomi_so2")["path"].iloc[0]
    result = archive.read_many([present, url], lambda p: read_swath_cached(p, ["so2_7km"]))
    assert len(result.datasets) == 1 and float(result.datasets[0]["so2_7km"].max()) > 0
    assert result.skipped == [(url[len(served.root) + 1:], f"{url[len(served.root) + 1:]}: no such object or file")]


def test_the_archive_is_never_written(remote, s3_tiny_archive, listing_before):
    assert s3_tiny_archive.listing() == listing_before
    assert remote[2].bytes_served is not None  # the HTTP server only answers GET and HEAD


@pytest.mark.distributed
@pytest.mark.slow
def test_local_cluster_computes_the_timeseries_from_s3(env, s3_tiny_archive, tmp_path, tiny_archive_path):
    """Two worker processes that get URLs and storage options only (no path of this machine) read from S3."""
    distributed = pytest.importorskip("distributed")
    # the workers run in their own folder: they have no data/tiny to fall back on, only what the task says
    catalogue = write_remote_catalog(tmp_path, s3_tiny_archive.root, s3_tiny_archive.storage_options)
    want, _ = compute_mass_timeseries("tiny", VOLCANO, DAY, DAY, cache_dir=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  local_directory=str(tmp_path / "workers")) as cluster:
        with distributed.Client(cluster) as client:
            got, report = compute_mass_timeseries(str(catalogue), VOLCANO, DAY, DAY, cache_dir=False,
                                                  scheduler=client)
            fetched_on_workers = client.run(storage.transfer_stats)
    assert report.scheduler.startswith("Dask distributed") and "2 workers" in report.scheduler
    assert report.corrupt == []
    pd.testing.assert_frame_equal(got, want)
    urls = {u for stats in fetched_on_workers.values() for u in stats}
    assert urls and all(u.startswith(s3_tiny_archive.root) for u in urls)  # the workers read S3 themselves
    assert sum(len(stats) > 0 for stats in fetched_on_workers.values()) >= 1


def test_indexing_a_real_size_granule_reads_under_one_percent(s3_server, env, tmp_path, tiny_archive_path):
    """A real-layout granule padded to ~60 MB with a variable the index never reads: its outline costs < 1 %."""
    import netCDF4

    from app.data.index import tropomi_geolocation, tropomi_outline_geolocation

    original = sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))[10]
    big = tmp_path / original.name
    shutil.copy(original, big)
    with netCDF4.Dataset(big, "a") as nc:
        group = nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"]
        group.createDimension("padding", 15 * 2**20)
        pad = group.createVariable("padding_never_read", "f4", ("padding",), zlib=False)
        pad[:] = np.random.default_rng(0).random(15 * 2**20, dtype=np.float32)
    size = big.stat().st_size
    assert size > 60 * 10**6
    fs = s3_server.filesystem()
    if not fs.exists("fumarole-big"):
        fs.mkdir("fumarole-big")
    fs.put_file(str(big), f"fumarole-big/tropomi/{big.name}")
    storage.register("s3://fumarole-big", s3_server.reader_options)
    url = f"s3://fumarole-big/tropomi/{big.name}"

    storage.clear_block_cache()
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    geo = tropomi_outline_geolocation(url)
    seconds = time.perf_counter() - t0
    outline_bytes = storage.transfer_stats()[url]
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    strided = tropomi_geolocation(url)
    strided_bytes = storage.transfer_stats()[url]
    local = tropomi_geolocation(str(original))
    assert geo.orbit == local.orbit == strided.orbit
    from app.data.index import footprint_cells

    assert (geo.footprint >= footprint_cells(local.latitude, local.longitude)).all()
    assert outline_bytes < 0.01 * size
    print(f"\nindexing a {size / 1e6:.0f} MB granule on S3 from its outline: {outline_bytes} bytes "
          f"({100 * outline_bytes / size:.2f} %), {seconds:.2f} s; strided lat/lon instead: {strided_bytes} bytes "
          f"({100 * strided_bytes / size:.2f} %)")


def test_a_live_catalogue_picks_up_new_granules_of_the_newest_folders(s3_server, env, tmp_path, tiny_archive_path):
    """A product marked live re-lists only its newest partition folders, and adds what landed without a restart."""
    import yaml

    fs = s3_server.filesystem()
    bucket = "fumarole-live"
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    granules = sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))
    today = pd.Timestamp.now(tz="UTC")
    day_folder = f"{bucket}/archive/tropomi/{today:%Y/%m/%d}"
    old_folder = f"{bucket}/archive/tropomi/2021/04/12"
    fs.put_file(str(granules[0]), f"{day_folder}/{granules[0].name}")
    fs.put_file(str(granules[1]), f"{old_folder}/{granules[1].name}")
    path = write_remote_catalog(tmp_path, f"s3://{bucket}/archive", s3_server.reader_options)
    cat = yaml.safe_load(path.read_text())
    meta = cat["entries"]["tropomi_so2"]["metadata"]
    meta["partition"] = "{time:%Y/%m/%d}/"
    meta["live"] = {"poll_seconds": 3600, "days": 2}
    path.write_text(yaml.safe_dump(cat, sort_keys=False))

    archive = Archive(str(path))
    assert archive.product_info("tropomi_so2").live == {"poll_seconds": 3600.0, "days": 2}
    names = lambda: sorted(p.rsplit("/", 1)[-1] for p in archive.granules("tropomi_so2")["path"])  # noqa: E731
    assert names() == sorted([granules[0].name, granules[1].name])
    # two granules land: one in today's folder, one in an old folder that a live poll does not list
    fs.put_file(str(granules[2]), f"{day_folder}/{granules[2].name}")
    fs.put_file(str(granules[3]), f"{old_folder}/{granules[3].name}")
    assert archive.poll_live() is None  # polled at the first refresh: not due for an hour
    report = archive.refresh(full=False)  # a poll now (as when poll_seconds has passed)
    assert [p.rsplit("/", 1)[-1] for p in report.added] == [granules[2].name]
    assert names() == sorted(g.name for g in granules[:3])
    archive.refresh()  # a full refresh lists everything
    assert names() == sorted(g.name for g in granules[:4])


# --- bytes of a time-series task and of a map read over S3, against the chunk layout --------------------------------

_GEO = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
_CENTRES = ("PRODUCT/latitude", "PRODUCT/longitude")
#: What a time-series task on so2_7km with the default filters reads, window-wise, besides the centres.
_TASK_FIELDS = ("PRODUCT/delta_time", "PRODUCT/qa_value", f"{_GEO}/latitude_bounds", f"{_GEO}/longitude_bounds",
                f"{_GEO}/solar_zenith_angle",
                "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_7km")
_TRACK = (f"{_GEO}/satellite_latitude", f"{_GEO}/satellite_longitude", f"{_GEO}/satellite_altitude")


def _chunk_bytes(path, datasets, first=0, stop=None) -> int:
    """Stored bytes of the chunks of ``datasets`` (scanline their second dimension) holding scanlines first..stop-1."""
    import h5py

    total = 0
    with h5py.File(path, "r") as f:
        for name in datasets:
            ds = f[name]
            end = ds.shape[1] if stop is None else stop
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                if info.chunk_offset[1] < end and info.chunk_offset[1] + ds.chunks[1] > first:
                    total += info.size
    return total


def _metadata_bytes(path) -> int:
    """Bytes of the file that are not data: HDF5's superblock, object headers, B-trees, heaps, attributes."""
    import h5py

    data = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, obj: data.append(obj.id.get_storage_size()) if isinstance(obj, h5py.Dataset) else None)
    return path.stat().st_size - sum(data)


@pytest.fixture(scope="module")
def chunked_orbit(s3_server, env, tmp_path_factory):
    """Orbit 18120 written at 2 × 3 decimation (1,812 scanlines in chunks of 256: eight chunks a variable), on S3."""
    from app.sample.tropomi import write_tropomi_orbit

    local = write_tropomi_orbit("soufriere", 18120, tmp_path_factory.mktemp("orbit"), scanline_step=2, pixel_step=3)
    fs = s3_server.filesystem()
    if not fs.exists("fumarole-window"):
        fs.mkdir("fumarole-window")
    fs.put_file(str(local), f"fumarole-window/{local.name}")
    storage.register("s3://fumarole-window", s3_server.reader_options)
    return local, f"s3://fumarole-window/{local.name}"


def _cold(url, func):
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    out = func()
    return out, storage.transfer_stats().get(url, 0)


def test_a_time_series_task_over_s3_reads_its_window_and_little_else(chunked_orbit):
    """Bytes fetched ≤ the file's metadata + the satellite track + the chunks of the window (the centres' chunks
    one chunk wider each way: the candidate scanlines around the window), less than the same fields of the whole
    orbit, and the masses equal those read from the local file."""
    from app.science.filters import DEFAULT_FILTERS
    from app.services.timeseries import mass_for_granule

    local, url = chunked_orbit
    size = local.stat().st_size
    task = lambda path, lat, lon: mass_for_granule(path, "so2_7km", lat, lon, (100.0, 500.0), DEFAULT_FILTERS)  # noqa: E731
    got, fetched = _cold(url, lambda: task(url, 15.0, -30.0))
    want = task(str(local), 15.0, -30.0)
    pd.testing.assert_frame_equal(pd.DataFrame(got["records"]), pd.DataFrame(want["records"]))
    assert got["window"] == want["window"] and got["records"][-1]["mass_t"] > 0
    first, stop = got["window"]
    rows = 256
    window = _chunk_bytes(local, _TASK_FIELDS + _CENTRES, first, stop)
    bound = (_metadata_bytes(local) + _chunk_bytes(local, _TRACK) + _chunk_bytes(local, _TASK_FIELDS, first, stop)
             + _chunk_bytes(local, _CENTRES, first - rows, stop + rows))
    whole_fields = _chunk_bytes(local, _TASK_FIELDS + _CENTRES)
    assert fetched <= bound
    assert fetched < whole_fields < size
    # an orbit whose horizon the disk is beyond (La Réunion): the metadata and the track, no pixel
    away, fetched_away = _cold(url, lambda: task(url, -21.244, 55.708))
    assert away["window"] is None and away["records"] == []
    assert fetched_away <= _metadata_bytes(local) + _chunk_bytes(local, _TRACK)
    print(f"\ntime-series task over S3 on a {size / 1e6:.1f} MB orbit: {fetched} bytes ({100 * fetched / size:.1f} % "
          f"of the object, {fetched / window:.2f} × the {window} bytes of the window's chunks, scanlines {first}–{stop}"
          f"); the same fields of the whole orbit hold {whole_fields}; on an orbit it is not in: {fetched_away} bytes")


def test_a_map_read_over_s3_reads_its_fields_and_nothing_else(chunked_orbit):
    """The three fields of the VolcPlume map and the centres of a whole orbit: their chunks and the metadata."""
    from app.data.tropomi import read_swath

    local, url = chunked_orbit
    fields = ("so2_7km", "qa_value", "solar_zenith_angle")
    got, fetched = _cold(url, lambda: read_swath(url, fields, with_bounds=False))
    want = read_swath(str(local), fields, with_bounds=False)
    for name in fields + ("latitude", "longitude"):
        np.testing.assert_array_equal(got[name].values, want[name].values)
    read = _chunk_bytes(local, _CENTRES + ("PRODUCT/delta_time", "PRODUCT/qa_value", f"{_GEO}/solar_zenith_angle",
                                           "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/"
                                           "sulfurdioxide_total_vertical_column_7km"))
    assert read <= fetched <= read + _metadata_bytes(local)
    print(f"\nmap fields over S3: {fetched} bytes, {100 * fetched / local.stat().st_size:.1f} % of the object")
