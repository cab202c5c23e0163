"""The GEO part of the sample archive: the ring's files in the tiny archive, their index rows, slots, scenes, cloud
tops, the clear message for a missing slot, and one file through the intake catalogue."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app.data import catalog, geo
from app.data import index as gi
from app.data.archive import Archive
from app.data.errors import UserInputError
from app.data.filenames import parse_filename
from app.data.geo_abi import abi_file_name, read_abi
from app.data.geo_ahi import hsd_file_name
from app.data.geo_seviri import seviri_file_name
from app.data.index import CELL_DEG, N_LON, unpack_cells
from app.data.readers import reader_for
from app.sample.archive import DEMO, FULL, TINY, geo_slot_times
from app.sample.scenario import get_scenario

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

DAY = "2021-04-12"
ABI_CHANNELS = ("vis_04", "vis_06", "nir_08", "nir_16", "ir_39", "wv_69", "wv_73", "ir_87", "ir_105", "ir_112",
                "ir_120", "ir_133")
EXPECTED = {  # channels of a slot read with channels=None
    "abi": ABI_CHANNELS,
    "ahi": ("vis_04", "vis_05", *ABI_CHANNELS[1:]),
    "seviri": ("vis_06", "nir_08", "nir_16", "ir_39", "wv_62", "wv_73", "ir_87", "ir_96", "ir_108", "ir_120",
               "ir_133"),
}


@pytest.fixture(scope="module")
def archive(tiny_archive_path) -> Archive:
    a = Archive("tiny")
    a.refresh()
    return a


def _cell(footprint: bytes, lat: float, lon: float) -> bool:
    row, col = int((lat + 90) // CELL_DEG), int((lon + 180) // CELL_DEG)
    return bool(unpack_cells(footprint)[row * N_LON + col])


# --- what the tiny archive holds -------------------------------------------------------------------------------


def test_stamp_counts_the_geo_files(tiny_archive_path):
    stamp = json.loads((tiny_archive_path / ".complete").read_text())
    assert "geo" in stamp["products"]
    counts = stamp["files_by_product"]
    assert counts["abi/G16"] == counts["abi/G17"] == 2 * 12  # two slots of twelve bands
    assert counts["ahi/H08"] == 2 * 13 * 10  # two slots, thirteen bands, ten segments
    assert counts["seviri/MSG4"] == 2 and counts["seviri/MSG1"] == 1  # Meteosat-8's 15:00 is missing on purpose
    assert counts["nwcsaf_ctth/GOES16"] == 2 and counts["nwcsaf_ctth/MSG1"] == 1


def test_every_ring_position_has_slots_and_the_index_holds_no_geo_row(archive):
    # GEO products are time-partitioned (catalogue `partition`): listed around the asked day by app.data.geo_slots,
    # not indexed file by file
    assert not archive.index.table["product"].str.startswith(("geo_", "nwcsaf")).any()
    ring = geo.ring_at(DAY, archive)
    t0 = pd.Timestamp(DAY)
    for pos in ring:
        found = geo.slots(archive, pos.platform, t0, t0 + pd.Timedelta(days=1))
        assert len(found) > 0, pos.name
        assert (found["time"].dt.strftime("%Y-%m-%d") == DAY).all()
        assert found["cloud_top"].notna().any(), pos.name
    assert [p.name for p in ring] == ["GOES-West", "GOES-East", "Meteosat", "Meteosat IODC", "Himawari"]
    assert [p.platform for p in ring] == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert [p.sub_lon for p in ring] == [-137.2, -75.2, 0.0, 41.5, 140.7]


def test_geolocated_footprint_is_the_disk(archive):
    # for a GEO product a catalogue lists without partition, the index's footprint is the satellite's disk
    himawari = geo.slots(archive, "H08", pd.Timestamp(DAY), pd.Timestamp(DAY) + pd.Timedelta(days=1)).iloc[0]
    located = gi.GEOLOCATORS["geo_ahi_hsd"](himawari["paths"][0], 16)
    assert located.platform in (None, "H08")
    footprint = gi.pack_cells(located.footprint)
    assert _cell(footprint, 0.0, 140.0) and not _cell(footprint, 0.0, 0.0)
    assert _cell(footprint, 0.0, -150.0)  # 69° east of 140.7°E, across the antimeridian


# --- slots ------------------------------------------------------------------------------------------------------


def test_slots_list_the_slot_times(archive):
    expected = {"G17": ["12:00", "15:00"], "G16": ["12:00", "15:00"], "MSG4": ["12:00", "15:00"],
                "MSG1": ["12:00"], "H08": ["12:00", "15:00"]}
    files = {"abi": 12, "ahi": 130, "seviri": 1}
    for pos in geo.ring_at(DAY, archive):
        table = geo.slots(archive, pos.platform, DAY, "2021-04-13")
        assert list(table["time"].dt.strftime("%H:%M")) == expected[pos.platform], pos.name
        assert (table["platform"] == pos.platform).all() and table["complete"].all()
        assert (table["n_files"] == files[pos.sensor]).all()
        assert table["cloud_top"].str.contains("S_NWC_CTTH_").all()
        present = set(table["channels"].iloc[0])
        assert set(EXPECTED[pos.sensor]) <= present
    # the range is [start, end) on the nominal slot time; names work as well as ids
    assert list(geo.slots(archive, "GOES-East", f"{DAY}T12:00", f"{DAY}T15:00")["time"].dt.hour) == [12]
    assert geo.slots(archive, "Himawari-8", "2021-04-13", "2021-04-14").empty
    assert geo.days(archive, "MSG1") == [np.datetime64(DAY)]


def test_latest_slot_and_the_ring(archive):
    assert geo.latest_slot(archive, "G16").time == pd.Timestamp(f"{DAY}T15:00")
    assert geo.latest_slot(archive, "G16", now=f"{DAY}T14:59").time == pd.Timestamp(f"{DAY}T12:00")
    assert geo.latest_slot(archive, "G16", now=f"{DAY}T11:00") is None
    ring = geo.ring_latest(archive).set_index("platform")
    assert list(ring.index) == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert ring.loc["MSG1", "stale"] and ring.loc["MSG1", "age"] == pd.Timedelta(hours=3)
    assert not ring.drop("MSG1")["stale"].any()
    assert (ring.drop("MSG1")["time"] == pd.Timestamp(f"{DAY}T15:00")).all()
    assert not geo.ring_latest(archive, now=f"{DAY}T12:30")["stale"].any()


# --- scenes and cloud tops --------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["G17", "G16", "MSG4", "MSG1", "H08"])
def test_read_scene_gives_the_generic_channels(archive, platform):
    pos = geo.ring_position(platform)
    ds = geo.read_scene(archive, platform, f"{DAY}T12:00")
    assert tuple(ds.data_vars) == EXPECTED[pos.sensor]
    assert ds.attrs["sub_lon"] == pytest.approx(pos.sub_lon) and ds.attrs["sensor"] == pos.sensor
    assert ds.attrs["ring_position"] == pos.name and ds.attrs["slot_time"] == f"{DAY}T12:00:00Z"
    assert ds.attrs["start_time"].startswith(f"{DAY}T12:00")
    for name, var in ds.data_vars.items():
        assert var.dims == ("y", "x")
        values = var.values[np.isfinite(var.values)]
        assert values.size > 0.5 * var.size, name  # the disk fills most of the grid
        if var.attrs["units"] == "K":
            assert 180.0 < values.min() and values.max() < 330.0, name
        else:
            assert var.attrs["units"] == "%" and values.min() >= 0.0 and values.max() < 130.0, name
    # the canonical grid: x grows east, y grows north, the sub-satellite point near the centre
    assert ds.x.values[1] > ds.x.values[0] and ds.y.values[1] < ds.y.values[0]
    assert abs(ds.x.values.mean()) < np.diff(ds.x.values).mean()


def test_read_scene_asks_for_channels_and_caches_them(archive):
    first = geo.read_scene(archive, "H08", f"{DAY}T15:00", ["ir_105", "ir_120"])
    assert list(first.data_vars) == ["ir_105", "ir_120"]
    again = geo.read_scene(archive, "Himawari", f"{DAY}T15:00", ["ir_120"])
    assert np.shares_memory(first["ir_120"].values, again["ir_120"].values)  # from the process cache
    with pytest.raises(ValueError):
        again["ir_120"].values[0, 0] = 0.0  # cached arrays are shared: read-only
    split = first["ir_105"] - first["ir_120"]
    assert np.nanmedian(split.values) > 0  # clear tropics and ice: a positive split window


def test_cloud_top_is_on_the_imager_grid_and_matches_it(archive):
    for platform, window in (("G16", "ir_105"), ("MSG4", "ir_108"), ("H08", "ir_105")):
        scene = geo.read_scene(archive, platform, f"{DAY}T12:00", [window])
        ct = geo.read_cloud_top(archive, platform, f"{DAY}T12:00")
        assert set(ct.data_vars) >= {"cloud_top_height", "cloud_top_temperature", "cloud_top_pressure"}
        assert ct.sizes == scene.sizes
        np.testing.assert_allclose(ct.x.values, scene.x.values, atol=1.0)
        np.testing.assert_allclose(ct.y.values, scene.y.values, atol=1.0)
        opaque = ct["effective_cloudiness"].values >= 0.995
        assert opaque.sum() > 20, platform
        # the imager sees the CTTH's clouds: opaque tops show their temperature in the window channel
        diff = scene[window].values[opaque] - ct["cloud_top_temperature"].values[opaque]
        assert np.abs(diff).max() < 2.5, platform


def test_missing_slot_says_which_is_nearest(archive):
    with pytest.raises(geo.MissingSlotError) as err:
        geo.read_scene(archive, "G16", f"{DAY}T15:10")
    assert str(err.value) == "no GOES-16 slot at 2021-04-12 15:10 UTC; nearest: 15:00"
    assert isinstance(err.value, UserInputError) and err.value.nearest == pd.Timestamp(f"{DAY}T15:00")
    with pytest.raises(geo.MissingSlotError, match=r"^no Meteosat-8 slot at 2021-04-12 15:00 UTC; nearest: 12:00$"):
        geo.read_scene(archive, "Meteosat IODC", f"{DAY}T15:00")
    with pytest.raises(geo.MissingSlotError, match=r"no Himawari-8 slot at 2021-04-20 00:00 UTC; nearest: 2021-04-12 "
                                                   r"15:00"):
        geo.read_scene(archive, "H08", dt.datetime(2021, 4, 20))
    with pytest.raises(geo.MissingSlotError, match=r"no NWC SAF cloud top \(CTTH\) of Meteosat-8 at .* nearest: "
                                                   r"12:00"):
        geo.read_cloud_top(archive, "MSG1", f"{DAY}T15:00")


def test_bad_satellite_or_channel_is_one_sentence(archive):
    with pytest.raises(UserInputError, match=r"unknown geostationary satellite 'GOES-20'; the ring on 2021-04-12 has "
                                             r"G17 \(GOES-17, GOES-West\), G16 .* platforms known are G16, G17, G18"):
        geo.read_scene(archive, "GOES-20", f"{DAY}T12:00")
    # a satellite known but not in this archive: the slot is missing, and the sentence says when it served
    with pytest.raises(geo.MissingSlotError, match=r"no GOES-18 slot at 2021-04-12 12:00 UTC: the archive has no "
                                                   r"GOES-18 \(GOES-West from 2023-01-04\) slot at all"):
        geo.read_scene(archive, "GOES-18", f"{DAY}T12:00")
    with pytest.raises(UserInputError, match=r"GOES-16 \(ABI\) has no channel 'ir_108'; its channels are vis_04"):
        geo.read_scene(archive, "G16", f"{DAY}T12:00", ["ir_108"])


# --- the catalogue ----------------------------------------------------------------------------------------------


def test_catalogue_entries_open_geo_files_through_intake(archive):
    cat = catalog.open_catalog("tiny")
    abi = geo.slots(archive, "G16", DAY, "2021-04-13")["paths"].iloc[0]
    c13 = next(p for p in abi if "-M6C13_" in p)
    reader = catalog.granule_reader(cat, "geo_abi_l1b", c13)
    assert reader.metadata["reader"] == "abi_l1b" and reader_for(reader.metadata["reader"]) is read_abi
    assert reader.metadata["platforms"]["G16"]["sub_lon"] == -75.2
    ds = reader.read()
    assert isinstance(ds, xr.Dataset) and "Rad" in ds and int(ds["band_id"].values[0]) == 13
    ds.close()
    ctth = geo.slots(archive, "MSG1", DAY, "2021-04-13")["cloud_top"].iloc[0]
    ds = catalog.granule_reader(cat, "nwcsaf_ctth", ctth).read()
    assert "ctth_alti" in ds and ds.attrs["satellite_identifier"] == "MSG1"
    ds.close()
    hsd = geo.slots(archive, "H08", DAY, "2021-04-13")["paths"].iloc[0][0]
    raw = catalog.granule_reader(cat, "geo_ahi_hsd", hsd).read()
    assert isinstance(raw, bytes) and raw.startswith(b"BZh")  # the raw .DAT.bz2 file
    info = catalog.product_info(cat, "geo_seviri_nc")
    assert info.reader == "seviri_l1b" and info.units["ir_108"] == "K"


def test_geo_file_names_parse_back():
    t = dt.datetime(2021, 4, 12, 15, 0, 20, 400000)
    abi = parse_filename(abi_file_name(13, "G16", t, t + dt.timedelta(minutes=9), t + dt.timedelta(minutes=10)))
    assert abi["product"] == "geo_abi_l1b" and abi["platform"] == "G16" and abi["band"] == 13
    assert abi["start"] == dt.datetime(2021, 4, 12, 15, 0, 20) and abi["start_tenth"] == 4
    hsd = parse_filename(hsd_file_name("H08", t.replace(second=0, microsecond=0), 3, 7, 10) + ".bz2")
    assert hsd["product"] == "geo_ahi_hsd" and hsd["band"] == 3 and hsd["res_code"] == 5 and hsd["compressed"]
    assert hsd["segment"] == 7 and hsd["total_segments"] == 10 and hsd["start"] == dt.datetime(2021, 4, 12, 15)
    sev = parse_filename(seviri_file_name("MSG1", dt.datetime(2021, 4, 12, 15, 0, 9)))
    assert sev["product"] == "geo_seviri_nc" and sev["platform"] == "MSG1"


# --- the writer's plan --------------------------------------------------------------------------------------------


def test_resolutions_plan_the_documented_slots():
    sc = get_scenario("soufriere")
    assert len(geo_slot_times(sc, DAY, DEMO, "G16")) == 24  # hourly on the central day
    assert len(geo_slot_times(sc, DAY, DEMO, "MSG1")) == 23  # 13:00 left out on purpose
    assert [str(t)[11:] for t in geo_slot_times(sc, "2021-04-10", DEMO, "MSG1")] == ["00:00", "06:00", "12:00",
                                                                                      "18:00"]
    assert (DEMO.geo_abi_km, DEMO.geo_ahi_factor, DEMO.geo_seviri_factor) == (16.0, 10, 8)
    tiny = get_scenario("soufriere-tiny")
    assert [str(t)[11:] for t in geo_slot_times(tiny, DAY, TINY, "MSG1")] == ["12:00"]
    assert len(geo_slot_times(sc, DAY, FULL, "H08")) == 1 and FULL.geo_ahi_factor == 1


@pytest.mark.slow
def test_satpy_reads_the_compressed_hsd_files(archive):
    satpy = pytest.importorskip("satpy")
    paths = [p for p in geo.slots(archive, "H08", DAY, "2021-04-13")["paths"].iloc[0] if "_B13_" in p]
    scn = satpy.Scene(reader="ahi_hsd", filenames=paths)
    scn.load(["B13"])
    ours = geo.read_scene(archive, "H08", f"{DAY}T12:00", ["ir_105"])["ir_105"].values
    both = np.isfinite(scn["B13"].values) & np.isfinite(ours)  # satpy masks space its own way
    assert both.sum() > 0.7 * ours.size
    np.testing.assert_allclose(scn["B13"].values[both], ours[both], atol=2e-3)


def test_a_file_written_twice_counts_once():
    """A reprocessed ABI band (a later creation time) replaces the first; a plain HSD file wins over its .bz2."""
    abi = [abi_file_name(13, "G16", dt.datetime(2021, 4, 12, 15, 0, 20), dt.datetime(2021, 4, 12, 15, 9, 51),
                         dt.datetime(2021, 4, 12, 15, 10, minute)) for minute in (0, 30)]
    rows = pd.DataFrame({"path": abi, "start": pd.to_datetime(["2021-04-12T15:00:20"] * 2)})
    none = pd.DataFrame({"path": [], "start": pd.to_datetime([])})
    (slot,) = geo._group(geo.ring_position("G16"), rows, none)
    assert slot.paths == (abi[1],) and slot.channels == ("ir_105",) and slot.cloud_top is None
    plain = hsd_file_name("H08", dt.datetime(2021, 4, 12, 15), 13, 1, 10)
    rows = pd.DataFrame({"path": [plain + ".bz2", plain], "start": pd.to_datetime(["2021-04-12T15:00"] * 2)})
    (slot,) = geo._group(geo.ring_position("H08"), rows, none)
    assert slot.paths == (plain,) and not slot.complete  # nine of B13's ten segments are missing
