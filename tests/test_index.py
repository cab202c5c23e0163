"""The granule index: build, incremental refresh, skipped files, zone/day/antimeridian queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
from pyhdf.SD import SD, SDC

from app.data import index as gi
from app.data.catalog import ProductInfo, open_catalog
from app.data.errors import UserInputError
from app.data.filenames import PATTERNS, caliop_filename, tropomi_filename

CARIBBEAN = (-90.0, 5.0, -55.0, 30.0)  # lon_min, lat_min, lon_max, lat_max
PERIOD_S = 100.0 * 60


# --- tiny granules with real geometry --------------------------------------------------------------------------


def _destination(lat, lon, bearing, dist_km):
    r = 6371.0
    la, lo, b, d = np.radians(lat), np.radians(lon), np.radians(bearing), dist_km / r
    la2 = np.arcsin(np.sin(la) * np.cos(d) + np.cos(la) * np.sin(d) * np.cos(b))
    lo2 = lo + np.arctan2(np.sin(b) * np.sin(d) * np.cos(la), np.cos(d) - np.sin(la) * np.sin(la2))
    return np.degrees(la2), (np.degrees(lo2) + 180.0) % 360.0 - 180.0


def swath(node_lon, u_range=(-85.0, 85.0), n_scan=120, n_pix=12, half_width_km=1300.0):
    """A sun-synchronous-like swath: ground track of a 98.7° orbit on a turning Earth, pixels across track."""
    inc = np.radians(98.7)
    u = np.radians(np.linspace(*u_range, n_scan))
    lat_c = np.degrees(np.arcsin(np.sin(inc) * np.sin(u)))
    drift = np.degrees(u) / 360.0 * PERIOD_S / 86400.0 * 360.0
    lon_c = node_lon + np.degrees(np.arctan2(np.cos(inc) * np.sin(u), np.cos(u))) - drift
    la1, lo1, la2, lo2 = (np.radians(a) for a in (lat_c[:-1], lon_c[:-1], lat_c[1:], lon_c[1:]))
    bearing = np.degrees(
        np.arctan2(
            np.sin(lo2 - lo1) * np.cos(la2), np.cos(la1) * np.sin(la2) - np.sin(la1) * np.cos(la2) * np.cos(lo2 - lo1)
        )
    )
    bearing = np.append(bearing, bearing[-1])
    offsets = np.linspace(-half_width_km, half_width_km, n_pix)
    lat = np.empty((n_scan, n_pix))
    lon = np.empty((n_scan, n_pix))
    for j, off in enumerate(offsets):
        lat[:, j], lon[:, j] = _destination(lat_c, lon_c, bearing + 90.0, off)
    return lat, lon


def write_tropomi(root: Path, start: dt.datetime, orbit: int, node_lon: float, mode="OFFL", minutes=50, **kw):
    end = start + dt.timedelta(minutes=minutes)
    lat, lon = swath(node_lon, **kw)
    folder = root / "tropomi" / f"{start:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / tropomi_filename(start, end, orbit, mode=mode)
    with netCDF4.Dataset(path, "w") as ds:
        ds.orbit = np.int32(orbit)
        ds.time_coverage_start = f"{start:%Y-%m-%dT%H:%M:%SZ}"
        ds.time_coverage_end = f"{end:%Y-%m-%dT%H:%M:%SZ}"
        ds.geospatial_lat_min, ds.geospatial_lat_max = float(lat.min()), float(lat.max())
        ds.geospatial_lon_min, ds.geospatial_lon_max = float(lon.min()), float(lon.max())
        g = ds.createGroup("PRODUCT")
        g.createDimension("time", 1)
        g.createDimension("scanline", lat.shape[0])
        g.createDimension("ground_pixel", lat.shape[1])
        for name, values in (("latitude", lat), ("longitude", lon)):
            v = g.createVariable(name, "f4", ("time", "scanline", "ground_pixel"))
            v[:] = values[None].astype("f4")
    return path


def write_caliop(root: Path, start: dt.datetime, day_night: str, lat, lon, seconds_per_profile=1.5):
    folder = root / "caliop" / f"{start:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / caliop_filename(start, day_night)
    n = len(lat)
    t0 = (start - dt.datetime(1993, 1, 1)).total_seconds() + 10.0
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for name, values, kind, dtype in (
        ("Latitude", lat, SDC.FLOAT32, "f4"),
        ("Longitude", lon, SDC.FLOAT32, "f4"),
        ("Profile_Time", t0 + seconds_per_profile * np.arange(n), SDC.FLOAT64, "f8"),
    ):
        sds = sd.create(name, kind, (n, 1))
        sds[:] = np.asarray(values, dtype=dtype).reshape(n, 1)
        sds.endaccess()
    sd.end()
    return path


def source(root: Path, product: str) -> ProductInfo:
    pattern = PATTERNS[product]
    sub, glob = {
        "tropomi_so2": ("tropomi", "S5P_*_L2__SO2____*.nc"),
        "caliop_l1b": ("caliop", "CAL_LID_L1-Standard-V4-*.hdf"),
    }[product]
    return ProductInfo(
        product=product,
        title=product,
        platform="",
        instrument="",
        root_url=str(root / sub),
        glob="*/*/*/" + glob,
        pattern=pattern.pattern,
        reader="",
        entry=product,
    )


DAY = dt.datetime(2021, 4, 12)


@pytest.fixture
def archive(tmp_path):
    """Four TROPOMI orbits over two days, and one CALIOP night granule."""
    root = tmp_path / "archive"
    paths = {
        "caribbean": write_tropomi(root, DAY.replace(hour=16, minute=59, second=31), 18112, node_lon=-62.0),
        "africa": write_tropomi(root, DAY.replace(hour=11, minute=54), 18109, node_lon=12.0),
        "pacific": write_tropomi(root, DAY.replace(hour=0, minute=30, second=12), 18103, node_lon=176.0),
        "next_day": write_tropomi(root, DAY.replace(day=13, hour=16, minute=41), 18126, node_lon=-58.0),
    }
    lat = np.linspace(-60, 60, 300)
    lon = np.full(300, 120.0) - np.linspace(0, 30, 300)
    paths["caliop"] = write_caliop(root, DAY.replace(hour=5, minute=36, second=44), "N", lat, lon)
    return root, paths


def build(root, products=("tropomi_so2", "caliop_l1b"), **kw):
    index = gi.GranuleIndex(path=root / gi.INDEX_FILENAME)
    report = index.refresh([source(root, p) for p in products], **kw)
    return index, report


# --- footprints and zones ------------------------------------------------------------------------------------


def test_bbox_cells_count_and_antimeridian():
    assert gi.bbox_cells(CARIBBEAN).sum() == 5 * 7  # lat 5..30 (5 rows), lon -90..-55 (7 columns)
    across = gi.bbox_cells((150.0, -10.0, -150.0, 10.0)).reshape(gi.N_LAT, gi.N_LON)
    cols = np.flatnonzero(across.any(axis=0))
    assert list(cols) == [0, 1, 2, 3, 4, 5, 66, 67, 68, 69, 70, 71]
    assert across.sum() == 4 * 12


def test_footprint_pack_round_trip_and_size():
    lat, lon = swath(-62.0)
    cells = gi.footprint_cells(lat, lon)
    packed = gi.pack_cells(cells)
    assert len(packed) == 324
    assert np.array_equal(gi.unpack_cells(packed), cells)
    # every pixel's own cell is in the footprint (no pixel is lost between samples)
    assert cells[gi._cell_ids(lat.ravel(), lon.ravel())].all()
    # a daylit orbit touches a narrow band of cells, far from the whole globe its bounding box covers
    assert 60 < cells.sum() < 600


@pytest.mark.parametrize("u_range", [(-85.0, 85.0), (-100.0, 280.0)], ids=["daylit half", "whole orbit"])
def test_strided_footprint_holds_every_pixel(u_range):
    lat, lon = swath(176.0, u_range=u_range, n_scan=1600, n_pix=225)
    every_pixel = np.zeros(gi.N_CELLS, dtype=bool)
    every_pixel[gi._cell_ids(lat.ravel(), lon.ravel())] = True
    sampled = gi.footprint_cells(gi._sampled(lat, lat.shape, 16, 16), gi._sampled(lon, lat.shape, 16, 16))
    assert not (every_pixel & ~sampled).any()
    assert sampled.sum() < 1.15 * every_pixel.sum()


def test_bad_bbox_is_a_clear_error(archive):
    index, _ = build(archive[0])
    with pytest.raises(UserInputError, match=r"lat_min <= lat_max"):
        index.query("tropomi_so2", bbox=(-90, 30, -55, 5))
    with pytest.raises(UserInputError, match=r"four numbers"):
        index.query("tropomi_so2", bbox=(1, 2, 3))
    with pytest.raises(UserInputError, match=r"\[-180, 180\].*lon_min=190"):
        index.query("tropomi_so2", bbox=(190, 0, 200, 10))
    with pytest.raises(UserInputError, match=r"unknown product 'tropomi'; known products: tropomi_so2, caliop_l1b"):
        index.query("tropomi", bbox=CARIBBEAN)


# --- build and query -----------------------------------------------------------------------------------------


def test_build_indexes_every_granule(archive):
    root, paths = archive
    index, report = build(root)
    assert report.skipped == []
    assert sorted(report.added) == sorted(str(p) for p in paths.values())
    t = index.table.set_index("path")
    row = t.loc[str(paths["caribbean"])]
    assert row["orbit"] == 18112 and row["platform"] == "S5P" and row["mode"] == "OFFL"
    assert row["start"] == pd.Timestamp("2021-04-12T16:59:31") and row["end"] == pd.Timestamp("2021-04-12T17:49:31")
    assert -90 < row["lat_min"] < -70 and 70 < row["lat_max"] < 90
    assert row["size"] == os.path.getsize(paths["caribbean"])
    cal = t.loc[str(paths["caliop"])]
    assert pd.isna(cal["orbit"]) and cal["day_night"] == "N" and cal["platform"] == "CALIPSO"
    assert cal["end"] - cal["start"] == pd.Timedelta(seconds=1.5 * 299)
    assert cal["lon_min"] == pytest.approx(90.0, abs=0.01) and cal["lon_max"] == pytest.approx(120.0, abs=0.01)


def test_query_day_and_caribbean_zone_returns_exactly_the_caribbean_orbit(archive):
    root, paths = archive
    index, _ = build(root)
    day = index.query("tropomi_so2", "2021-04-12", "2021-04-13")
    assert set(day["path"]) == {str(paths[k]) for k in ("caribbean", "africa", "pacific")}
    assert list(day["start"]) == sorted(day["start"])

    hits = index.query("tropomi_so2", "2021-04-12", "2021-04-13", bbox=CARIBBEAN)
    assert list(hits["path"]) == [str(paths["caribbean"])]
    # the whole-period query adds the next day's Caribbean orbit, and nothing else
    assert set(index.query("tropomi_so2", bbox=CARIBBEAN)["path"]) == {
        str(paths["caribbean"]),
        str(paths["next_day"]),
    }


def test_granule_touching_caribbean_longitudes_only_at_high_latitude_is_excluded(archive):
    root, paths = archive
    index, _ = build(root)
    africa = index.table.set_index("path").loc[str(paths["africa"])]
    # its bounding box overlaps the Caribbean (a bbox index would keep it) ...
    assert africa["lat_min"] < CARIBBEAN[3] and africa["lat_max"] > CARIBBEAN[1]
    assert africa["lon_min"] < CARIBBEAN[2] and africa["lon_max"] > CARIBBEAN[0]
    # ... and its swath does reach Caribbean longitudes, but only north of 55°N
    lat, lon = swath(12.0)
    at_caribbean_lons = (lon > CARIBBEAN[0]) & (lon < CARIBBEAN[2])
    assert at_caribbean_lons.any() and lat[at_caribbean_lons].min() > 55
    # the footprint tells them apart
    assert str(paths["africa"]) not in set(index.query("tropomi_so2", bbox=CARIBBEAN)["path"])
    assert str(paths["africa"]) in set(index.query("tropomi_so2", bbox=(-90.0, 60.0, -55.0, 80.0))["path"])


def test_antimeridian_granule_and_zone(archive):
    root, paths = archive
    index, _ = build(root)
    pacific = index.table.set_index("path").loc[str(paths["pacific"])]
    assert pacific["crosses_antimeridian"]
    assert not index.table.set_index("path").loc[str(paths["caribbean"]), "crosses_antimeridian"]
    hits = index.query("tropomi_so2", bbox=(170.0, -10.0, -170.0, 10.0))
    assert list(hits["path"]) == [str(paths["pacific"])]
    # both halves of the zone find it on their own
    assert list(index.query("tropomi_so2", bbox=(170.0, -10.0, 180.0, 10.0))["path"]) == [str(paths["pacific"])]
    assert list(index.query("tropomi_so2", bbox=(-180.0, -10.0, -170.0, 10.0))["path"]) == [str(paths["pacific"])]
    assert index.query("tropomi_so2", bbox=(100.0, -10.0, 120.0, 10.0)).empty


def test_orbits_for_day_labels_and_streams(archive):
    root, paths = archive
    # orbit 18112 also in NRTI (must lose to OFFL); orbit 18113 only in two NRTI pieces (gathered)
    write_tropomi(root, DAY.replace(hour=17), 18112, node_lon=-62.0, mode="NRTI", minutes=5)
    nrti = [
        write_tropomi(root, DAY.replace(hour=18, minute=40), 18113, node_lon=-87.0, mode="NRTI", minutes=5),
        write_tropomi(root, DAY.replace(hour=18, minute=45), 18113, node_lon=-87.0, mode="NRTI", minutes=5),
    ]
    index, _ = build(root)
    orbits = index.orbits_for_day("2021-04-12")
    assert list(orbits["orbit"]) == [18103, 18109, 18112, 18113]
    assert list(orbits["label"]) == [
        "#18103: 00:30 → 01:20",
        "#18109: 11:54 → 12:44",
        "#18112: 16:59 → 17:49",
        "#18113: 18:40 → 18:50",
    ]
    assert list(orbits["mode"]) == ["OFFL", "OFFL", "OFFL", "NRTI"]
    assert orbits.set_index("orbit").loc[18113, "paths"] == [str(p) for p in nrti]
    assert list(index.orbits_for_day(DAY.date(), bbox=CARIBBEAN)["orbit"]) == [18112, 18113]
    cal = index.orbits_for_day("2021-04-12", product="caliop_l1b")
    assert list(cal["label"]) == ["05:36 → 05:44"] and list(cal["path"]) == [str(paths["caliop"])]
    assert index.orbits_for_day("2021-04-14").empty


# --- incremental refresh and persistence ---------------------------------------------------------------------


@pytest.fixture
def count_reads(monkeypatch):
    reads: list[str] = []
    for product in ("tropomi_so2", "caliop_l1b"):
        original = gi.GEOLOCATORS[product]

        def counting(path, stride=16, _original=original):
            reads.append(Path(path).name)
            return _original(path, stride)

        monkeypatch.setitem(gi.GEOLOCATORS, product, counting)
    return reads


def test_refresh_reads_only_new_or_changed_files(archive, count_reads):
    root, paths = archive
    index, _ = build(root)
    assert len(count_reads) == 5
    index.save()

    again = gi.GranuleIndex.load(root / gi.INDEX_FILENAME)
    pd.testing.assert_frame_equal(again.table, index.table)
    count_reads.clear()
    report = again.refresh([source(root, "tropomi_so2"), source(root, "caliop_l1b")])
    assert count_reads == [] and report.unchanged == 5 and not (report.added or report.updated or report.removed)

    new = write_tropomi(root, DAY.replace(hour=18, minute=40), 18113, node_lon=-87.0)
    os.remove(paths["pacific"])
    changed = write_tropomi(root, DAY.replace(hour=11, minute=54), 18109, node_lon=12.0, n_scan=130)
    assert changed == paths["africa"]
    report = again.refresh([source(root, "tropomi_so2"), source(root, "caliop_l1b")])
    assert sorted(count_reads) == sorted([new.name, changed.name])
    assert report.added == [str(new)] and report.updated == [str(changed)] and report.removed == [str(paths["pacific"])]
    assert report.unchanged == 3
    assert set(again.table["path"]) == {str(p) for k, p in paths.items() if k != "pacific"} | {str(new)}
    assert list(again.query("tropomi_so2", "2021-04-12", "2021-04-13", CARIBBEAN)["orbit"]) == [18112, 18113]


def test_refresh_of_one_product_keeps_the_others(archive, count_reads):
    root, paths = archive
    index, _ = build(root)
    count_reads.clear()
    report = index.refresh([source(root, "caliop_l1b")])
    assert count_reads == [] and report.unchanged == 1
    assert len(index) == 5


def test_unreachable_archive_keeps_its_rows(archive, count_reads):
    root, _ = archive
    index, _ = build(root)
    count_reads.clear()
    broken = dataclasses.replace(source(root, "tropomi_so2"), root_url="nosuchprotocol://bucket/tropomi")
    report = index.refresh([broken])
    assert len(index) == 5 and count_reads == [] and report.removed == []
    assert report.skipped[0][0] == "nosuchprotocol://bucket/tropomi"
    assert "cannot be listed" in report.skipped[0][1] and "rows are kept" in report.skipped[0][1]


def test_executor_can_be_given(archive):
    root, _ = archive
    with ThreadPoolExecutor(max_workers=2) as pool:
        index, report = build(root, executor=pool)
    assert len(index) == 5 and len(report.added) == 5


# --- problems are skipped and reported -----------------------------------------------------------------------


def test_corrupt_and_unparsable_files_are_skipped_and_reported(archive, caplog):
    root, paths = archive
    folder = root / "tropomi" / "2021" / "04" / "12"
    truncated = folder / tropomi_filename(DAY.replace(hour=20), DAY.replace(hour=20, minute=50), 18114)
    data = paths["caribbean"].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    garbage = folder / tropomi_filename(DAY.replace(hour=21), DAY.replace(hour=21, minute=50), 18115)
    garbage.write_bytes(b"not a netCDF file at all")
    badname = folder / "S5P_OFFL_L2__SO2____20210412T220000_garbled.nc"
    badname.write_bytes(data)
    no_group = folder / tropomi_filename(DAY.replace(hour=22), DAY.replace(hour=22, minute=50), 18116)
    with netCDF4.Dataset(no_group, "w") as ds:
        ds.orbit = 18116
    cal_folder = root / "caliop" / "2021" / "04" / "12"
    no_lat = cal_folder / caliop_filename(DAY.replace(hour=7), "D")
    sd = SD(str(no_lat), SDC.WRITE | SDC.CREATE)
    sds = sd.create("Profile_Time", SDC.FLOAT64, (3, 1))
    sds[:] = np.zeros((3, 1))
    sds.endaccess()
    sd.end()

    with caplog.at_level(logging.DEBUG, logger="app.data.index"):
        index, report = build(root)

    reasons = dict(report.skipped)
    # named relative to the archive root, never as absolute server paths
    name = {p: str(p.relative_to(root)) for p in (truncated, garbage, badname, no_group, no_lat)}
    assert set(reasons) == set(name.values())
    assert reasons[name[truncated]].startswith(
        "cannot be opened as a netCDF-4 file (truncated or not netCDF?): the file is truncated (6360 of its ")
    assert "cannot be opened as a netCDF-4 file (truncated or not netCDF?): it is not an HDF5 file (no HDF5 " \
           "signature)" == reasons[name[garbage]]
    assert "does not match the S5P L2 pattern S5P_{mode}_L2__SO2____" in reasons[name[badname]]
    assert "has no PRODUCT group" in reasons[name[no_group]]
    assert "has no Latitude data set" in reasons[name[no_lat]]
    # the rest of the archive is indexed
    assert set(index.table["path"]) == {str(p) for p in paths.values()}
    # the debug log names each skipped file with its reason, relative to the archive root; the warning is the
    # caller's to say, once (the CLI's stderr, the Archive's reporter): the index does not say it a second time
    for path, reason in report.skipped:
        assert any(path in r.getMessage() and reason in r.getMessage() for r in caplog.records
                   if r.levelno == logging.DEBUG)
        assert not any(path in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert f"skipped {name[truncated]}: cannot be opened" in str(report)
    assert str(root) not in str(report) and str(root) not in caplog.text


def test_empty_and_missing_folders_are_reported(tmp_path):
    root = tmp_path / "archive"
    (root / "tropomi").mkdir(parents=True)
    index, report = build(root)
    assert len(index) == 0
    reasons = dict(report.skipped)
    # an empty folder skips no file: it is said apart; a missing folder is a skip
    assert "tropomi" not in reasons
    assert "no tropomi_so2 granule: no file matches */*/*/S5P_*" in dict(report.empty)["tropomi"]
    assert "empty tropomi: no tropomi_so2 granule" in str(report)
    assert reasons["caliop"] == "folder of caliop_l1b does not exist"
    empty = index.query("tropomi_so2", "2021-04-12", "2021-04-13", CARIBBEAN)
    assert empty.empty and list(empty.columns) == gi.COLUMNS
    assert index.orbits_for_day("2021-04-12").empty


def test_outdated_or_broken_index_file_is_rebuilt(tmp_path, caplog):
    path = tmp_path / gi.INDEX_FILENAME
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="app.data.index"):
        index = gi.GranuleIndex.load(path)
    assert len(index) == 0 and "cannot be read" in caplog.text
    pd.DataFrame({"path": ["x"]}).to_parquet(path)
    assert len(gi.GranuleIndex.load(path)) == 0


# --- through the catalogue -----------------------------------------------------------------------------------


def test_open_index_through_the_tiny_catalogue(tmp_path):
    catalogs = tmp_path / "catalogs"
    catalogs.mkdir()
    yaml_path = catalogs / "tiny.yaml"
    yaml_path.write_text((Path(__file__).parents[1] / "catalogs" / "tiny.yaml").read_text())
    root = tmp_path / "data" / "tiny"
    caribbean = write_tropomi(root, DAY.replace(hour=16, minute=59, second=31), 18112, node_lon=-62.0)
    write_caliop(root, DAY.replace(hour=5, minute=36, second=44), "N", np.linspace(0, 10, 50), np.zeros(50))
    assert fnmatch.fnmatch(caribbean.name, PATTERNS["tropomi_so2"].glob)

    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    index = gi.open_index(open_catalog(yaml_path))
    # kept in the user's state folder (FUMAROLE_STATE_DIR, set by conftest.py), keyed by the archive, not in it
    state = Path(os.environ["FUMAROLE_STATE_DIR"])
    assert index.path == gi.index_path(root) and Path(index.path).exists()
    assert Path(index.path).is_relative_to(state) and Path(index.path).name == "index.parquet"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    # only TROPOMI and CALIOP files here; the GEO products are time-partitioned (listed by app.data.geo_slots
    # around the times asked for), so the index neither lists nor reports their folders
    assert len(index) == 2 and index.last_report.skipped == []
    assert {s.product for s in index.sources} == {"tropomi_so2", "caliop_l1b"}
    stored = gi.open_index(str(yaml_path), refresh=False)
    assert list(stored.orbits_for_day("2021-04-12", CARIBBEAN)["path"]) == [str(caribbean)]

    # as `fumarole index` uses it: the stored index, refreshed (nothing new) and saved, then summarised
    again = gi.GranuleIndex.for_catalog(str(yaml_path))
    report = again.refresh()
    assert report.unchanged == 2 and not report.added
    summary = again.summary()
    assert summary.startswith(f"granule index {gi.index_path(root)}: 2 granules")
    assert "tropomi_so2: 1 granule, 2021-04-12 16:59 → 2021-04-12 17:49 UTC, orbits 18112–18112" in summary
    assert "caliop_l1b: 1 granule, 2021-04-12 05:36 → " in summary
    with pytest.raises(ValueError, match="needs the products"):
        gi.GranuleIndex().refresh()


@pytest.mark.distributed
@pytest.mark.slow
def test_build_on_a_dask_cluster(archive):
    distributed = pytest.importorskip("distributed")
    root, paths = archive
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        index, report = build(root, executor=client)
    assert sorted(report.added) == sorted(str(p) for p in paths.values())
    assert list(index.query("tropomi_so2", "2021-04-12", "2021-04-13", CARIBBEAN)["orbit"]) == [18112]


# --- bad names and symbolic links ----------------------------------------------------------------------------


def test_a_badly_named_file_anywhere_is_skipped_and_named(archive):
    root, paths = archive
    data = paths["caribbean"].read_bytes()
    month13 = root / "tropomi" / "2021" / "13" / "12" / (
        "S5P_OFFL_L2__SO2____20211312T165931_20211312T174931_18112_02_020104_20211312T184931.nc")
    month13.parent.mkdir(parents=True)
    month13.write_bytes(data)
    index, report = build(root)
    assert report.skipped == [(
        "tropomi/2021/13/12/" + month13.name,
        "file name field start = '20211312T165931' is not a valid time in the format %Y%m%dT%H%M%S",
    )]
    assert set(index.table["path"]) == {str(p) for p in paths.values()}


def test_symbolic_links_within_the_archive_are_followed_others_named(archive, tmp_path):
    root, paths = archive
    data = paths["caribbean"].read_bytes()
    name = tropomi_filename  # shorter lines below

    # a file link and a folder link whose targets are inside the archive: followed
    store = root / "store"
    store.mkdir()
    linked_file = store / name(DAY.replace(hour=20), DAY.replace(hour=20, minute=50), 18114)
    linked_file.write_bytes(data)
    file_link = root / "tropomi" / "2021" / "04" / "12" / linked_file.name
    file_link.symlink_to(os.path.relpath(linked_file, file_link.parent))
    day14 = store / "day14"
    day14.mkdir()
    in_folder = day14 / name(DAY.replace(day=14, hour=16), DAY.replace(day=14, hour=16, minute=50), 18140)
    in_folder.write_bytes(data)
    folder_link = root / "tropomi" / "2021" / "04" / "14"
    folder_link.symlink_to(day14, target_is_directory=True)

    # links out of the archive (a file and a folder) and a dangling one: skipped and named
    outside = tmp_path / "outside"
    outside.mkdir()
    foreign = outside / name(DAY.replace(hour=21), DAY.replace(hour=21, minute=50), 18115)
    foreign.write_bytes(data)
    out_link = root / "tropomi" / "2021" / "04" / "12" / foreign.name
    out_link.symlink_to(foreign)
    (outside / "15").mkdir()
    out_folder = root / "tropomi" / "2021" / "04" / "15"
    out_folder.symlink_to(outside / "15", target_is_directory=True)
    dangling = root / "tropomi" / "2021" / "04" / "12" / name(DAY.replace(hour=22), DAY.replace(hour=22, minute=50),
                                                               18116)
    dangling.symlink_to(root / "nowhere.nc")

    index, report = build(root)
    indexed = set(index.table["path"])
    assert indexed == {str(p) for p in paths.values()} | {str(file_link), str(folder_link / in_folder.name)}
    row = index.table.set_index("path").loc[str(file_link)]
    assert row["orbit"] == 18114 and row["size"] == len(data)
    assert sorted(report.skipped) == sorted([
        (str(out_link.relative_to(root)), "is a symbolic link to a place outside the archive; not followed"),
        ("tropomi/2021/04/15", "is a symbolic link to a place outside the archive; not followed"),
        (str(dangling.relative_to(root)), "is a symbolic link whose target does not exist"),
    ])
    assert str(tmp_path) not in str(report)


# --- one lock for every file library: many threads, right values, no crash --------------------------------


def test_concurrent_reads_of_swaths_curtains_and_geolocations(tiny_archive_path):
    from app.data.caliop import read_curtain
    from app.data.tropomi import read_swath

    swaths = sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))[:3]
    curtains = sorted((tiny_archive_path / "caliop").rglob("CAL_LID_*.hdf"))[:2]
    jobs = (
        [("swath", p, lambda p=p: read_swath(p, ("so2_7km", "qa_value"))) for p in swaths]
        + [("curtain", p, lambda p=p: read_curtain(p)) for p in curtains]
        + [("tropomi geo", p, lambda p=p: gi.tropomi_geolocation(str(p))) for p in swaths]
        + [("caliop geo", p, lambda p=p: gi.caliop_geolocation(str(p))) for p in curtains]
    )

    def digest(kind, value):
        if kind == "swath":
            return float(np.nansum(value["so2_7km"].values)), float(np.nansum(value["latitude"].values))
        if kind == "curtain":
            return float(np.nansum(value["total_attenuated_backscatter_532"].values)), value.sizes["profile"]
        return float(np.nansum(value.latitude)), float(np.nansum(value.longitude))

    expected = {(kind, p): digest(kind, read()) for kind, p, read in jobs}

    def worker(k: int) -> list:
        return [(kind, p, digest(kind, read())) for i in range(20)
                for kind, p, read in [jobs[(k * 7 + i) % len(jobs)]]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for batch in pool.map(worker, range(8)) for r in batch]
    assert len(results) == 160
    assert {kind for kind, _, _ in results} == {"swath", "curtain", "tropomi geo", "caliop geo"}
    for kind, p, got in results:
        assert got == expected[(kind, p)], (kind, p.name)


# --- any failure of a geolocator, or of its task, is a named skip --------------------------------------------------


def test_any_geolocator_failure_is_skipped_and_named(archive, monkeypatch):
    """A geolocator raising anything (ZeroDivisionError, IndexError...) skips that file only, named with the reason."""
    root, paths = archive
    real = gi.GEOLOCATORS["tropomi_so2"]

    def flaky(path, stride=16):
        if "_18109_" in os.path.basename(path):
            raise ZeroDivisionError("float division by zero")
        if "_18103_" in os.path.basename(path):
            raise IndexError("index 4 is out of bounds for axis 0 with size 4")
        return real(path, stride)

    monkeypatch.setitem(gi.GEOLOCATORS, "tropomi_so2", flaky)
    index, report = build(root)
    reasons = dict(report.skipped)
    africa, pacific = (str(paths[k].relative_to(root)) for k in ("africa", "pacific"))
    assert reasons == {africa: "cannot be read (ZeroDivisionError: float division by zero)",
                       pacific: "cannot be read (IndexError: index 4 is out of bounds for axis 0 with size 4)"}
    assert set(index.table["path"]) == {str(paths[k]) for k in ("caribbean", "next_day", "caliop")}


def test_a_geolocation_task_that_dies_where_it_runs_is_skipped_and_named(archive):
    """An executor whose task fails outside the geolocator (a worker that died) skips that file, named."""
    import concurrent.futures as cf

    root, paths = archive

    class DiesOnTheCaribbeanOrbit(cf.Executor):
        def submit(self, fn, /, *args, **kwargs):
            future: cf.Future = cf.Future()
            if "_18112_" in os.path.basename(args[1]):
                future.set_exception(RuntimeError("worker tcp://10.0.0.7:40001 died"))
            else:
                future.set_result(fn(*args, **kwargs))
            return future

    index, report = build(root, executor=DiesOnTheCaribbeanOrbit())
    caribbean = str(paths["caribbean"].relative_to(root))
    assert dict(report.skipped) == {
        caribbean: "its geolocation task failed (RuntimeError: worker tcp://10.0.0.7:40001 died)"}
    assert len(index) == 4 and str(paths["caribbean"]) not in set(index.table["path"])
