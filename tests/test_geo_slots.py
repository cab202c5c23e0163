"""GEO slots from time-partitioned folders (app.data.geo_slots): the same slots as the granule index gave, from
listings of only the folders around the times asked for, cached, and re-listed when a live source grows.

Listings are counted by a real fsspec file system: ``CountingFileSystem``, fsspec's LocalFileSystem registered under
the test protocol ``countfile://`` and noting every ``ls`` (nothing of fsspec is replaced).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
import yaml
from fsspec.implementations.local import LocalFileSystem

from app.data import geo, geo_slots
from app.data.archive import Archive
from app.data.catalog import product_info
from app.data.filenames import PATTERNS

REPO = Path(__file__).resolve().parents[1]
ABI_PATTERN = PATTERNS["geo_abi_l1b"]
ABI_GLOB = "OR_ABI-L1b-RadF-M*C*_G*_s*_e*_c*.nc"


class CountingFileSystem(LocalFileSystem):
    """The local file system under the protocol ``countfile``, noting the folders it is asked to list."""

    protocol = ("countfile",)
    calls: list[str] = []

    def ls(self, path, detail=False, **kwargs):
        """List as LocalFileSystem does, noting the path."""
        CountingFileSystem.calls.append(self._strip_protocol(path))
        return super().ls(path, detail=detail, **kwargs)


fsspec.register_implementation("countfile", CountingFileSystem, clobber=True)


@pytest.fixture
def calls():
    """The folders listed through ``countfile://`` during the test (relative names are checked by the tests)."""
    CountingFileSystem.calls.clear()
    geo_slots.clear()
    yield CountingFileSystem.calls
    CountingFileSystem.calls.clear()


def _abi_name(band: int, start: dt.datetime, platform: str = "G16") -> str:
    end = start + dt.timedelta(minutes=9, seconds=30)
    return (f"OR_ABI-L1b-RadF-M6C{band:02d}_{platform}_s{start:%Y%j%H%M%S}0_e{end:%Y%j%H%M%S}0_"
            f"c{end:%Y%j%H%M%S}0.nc")


def _catalogs(tiny_archive_path: Path, folder: Path) -> tuple[Path, Path]:
    """The tiny catalogue (GEO products partitioned) and the same without ``partition:`` (the granule index)."""
    (folder / "catalogs").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "data" / "tiny").symlink_to(tiny_archive_path)
    text = (REPO / "catalogs" / "tiny.yaml").read_text()
    assert text.count("partition: '{platform}/{time:%Y/%m/%d}/'") == 5
    with_partition = folder / "catalogs" / "tiny.yaml"
    with_partition.write_text(text)
    indexed = folder / "catalogs" / "indexed.yaml"
    indexed.write_text(re.sub(r"\n\s+partition: .*", "", text).replace("name: tiny", "name: indexed"))
    return with_partition, indexed


def _records(table: pd.DataFrame) -> list[dict]:
    return table.to_dict("records")


def test_partitioned_slots_are_the_index_slots(tiny_archive_path, tmp_path):
    partitioned, indexed = _catalogs(tiny_archive_path, tmp_path)
    a, b = Archive(str(partitioned)), Archive(str(indexed))
    assert a.product_info("geo_ahi_hsd").partition == "{platform}/{time:%Y/%m/%d}/"
    assert b.product_info("geo_ahi_hsd").partition == ""
    day = ("2021-04-12", "2021-04-13")
    for platform in ("G17", "G16", "MSG4", "MSG1", "H08", "GOES-East", "Himawari", "MTI1"):
        got, want = geo.slots(a, platform, *day), geo.slots(b, platform, *day)
        assert _records(got) == _records(want), platform
        assert _records(geo.slots(a, platform)) == _records(want), platform
        assert geo.days(a, platform) == geo.days(b, platform)
        assert geo.latest_slot(a, platform) == geo.latest_slot(b, platform)
        assert geo.latest_slot(a, platform, "2021-04-12 13:00") == geo.latest_slot(b, platform, "2021-04-12 13:00")
    ring_a, ring_b = geo.ring_latest(a), geo.ring_latest(b)
    assert ring_a.equals(ring_b)
    assert list(ring_a["time"].dt.strftime("%H:%M")) == ["15:00", "15:00", "15:00", "12:00", "15:00"]
    g16 = geo.slots(a, "G16", *day)
    assert list(g16["time"].dt.strftime("%H:%M")) == ["12:00", "15:00"]
    assert g16["n_files"].tolist() == [12, 12]
    assert g16["cloud_top"].iloc[0].endswith("nwcsaf_ctth/GOES16/2021/04/12/S_NWC_CTTH_GOES16_FULL-DISK_"
                                              "20210412T120000Z.nc")
    h08 = geo.slots(a, "H08", *day)
    assert h08["complete"].tolist() == [True, True] and h08["n_files"].tolist() == [130, 130]
    with pytest.raises(geo.MissingSlotError) as missing:
        geo.read_scene(a, "G16", "2021-04-12 13:00", ["ir_105"])
    assert str(missing.value) == "no GOES-16 slot at 2021-04-12 13:00 UTC; nearest: 12:00"
    with pytest.raises(geo.MissingSlotError) as far:
        geo.read_cloud_top(a, "H08", "2021-04-09 00:00")
    assert str(far.value).endswith("nearest: 2021-04-12 12:00")


def test_a_day_lists_only_that_day(tiny_archive_path, calls):
    root = f"countfile://{tiny_archive_path}/abi"
    lister = geo_slots.PartitionLister(root, "{platform}/{time:%Y/%m/%d}/", ABI_PATTERN.parse, ABI_GLOB, 10,
                                       lambda key: key)
    rows = lister.rows("G16", "G16", pd.Timestamp("2021-04-12"), pd.Timestamp("2021-04-13"))
    assert calls == [f"{tiny_archive_path}/abi/G16/2021/04/12"]
    assert len(rows) == 24 and set(rows["platform"]) == {"G16"}
    assert rows["path"].iloc[0] == (f"{root}/G16/2021/04/12/OR_ABI-L1b-RadF-M6C01_G16_s20211021200204_"
                                    "e20211021209512_c20211021209570.nc")
    assert rows["start"].min() == pd.Timestamp("2021-04-12 12:00:20")  # the name's seconds (tenths apart)
    # a day without data: its folder is asked for, nothing else
    calls.clear()
    assert lister.rows("G16", "G16", pd.Timestamp("2021-04-13"), pd.Timestamp("2021-04-14")).empty
    assert calls == [f"{tiny_archive_path}/abi/G16/2021/04/13"]
    # the same day again: from the cache (a local folder is only stat'ed), nothing listed
    calls.clear()
    assert len(lister.rows("G16", "G16", pd.Timestamp("2021-04-12 14:00"), pd.Timestamp("2021-04-12 16:00"))) == 12
    assert calls == []


def test_a_local_archive_query_lists_only_the_asked_day(tiny_copy, tmp_path):
    from tests.conftest import archive_over

    arch = archive_over(tiny_copy, tmp_path / "cat")
    geo_slots.clear()
    found = geo.slots(arch, "G16", "2021-04-12", "2021-04-13")
    assert len(found) == 2
    abi = geo._lister(arch, "geo_abi_l1b")
    ctth = geo._lister(arch, "nwcsaf_ctth", "G16")
    assert abi.listed == ["G16/2021/04/12"]
    assert ctth.listed == ["GOES16/2021/04/12"]


@pytest.fixture(scope="module")
def noaa_year(tmp_path_factory) -> Path:
    """A year of NOAA's GOES-16 layout (ABI-L1b-RadF/YYYY/DDD/HH/), three empty C13 files per hour."""
    root = tmp_path_factory.mktemp("noaa") / "noaa-goes16"
    t = dt.datetime(2021, 1, 1)
    while t.year == 2021:
        folder = root / "ABI-L1b-RadF" / f"{t:%Y}" / f"{t:%j}" / f"{t:%H}"
        folder.mkdir(parents=True)
        for minute in (0, 20, 40):
            (folder / _abi_name(13, t + dt.timedelta(minutes=minute, seconds=20))).touch()
        t += dt.timedelta(hours=1)
    return root


def _noaa_catalog(folder: Path, root: str) -> Path:
    """A catalogue of one GOES-16 bucket, as a user would write it: the ABI product only, partitioned."""
    cat = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    cat["metadata"]["name"] = "noaa"
    cat["metadata"]["archive"] = root
    cat["aliases"] = {"geo_abi_l1b": "geo_abi_l1b"}
    cat["data"] = {k: v for k, v in cat["data"].items() if k.startswith("geo_abi_l1b")}
    cat["data"]["geo_abi_l1b_files"]["kwargs"]["url"] = f"{root}/*/*/*/*/{ABI_GLOB}"
    cat["entries"] = {"geo_abi_l1b": cat["entries"]["geo_abi_l1b"]}
    cat["entries"]["geo_abi_l1b"]["metadata"]["partition"] = "ABI-L1b-RadF/{time:%Y/%j/%H}/"
    path = folder / "noaa.yaml"
    path.write_text(yaml.safe_dump(cat, sort_keys=False, allow_unicode=True))
    return path


def test_a_year_of_noaa_folders_is_answered_from_a_few(noaa_year, tmp_path, calls):
    arch = Archive(str(_noaa_catalog(tmp_path, f"countfile://{noaa_year}")))
    assert arch.product_info("geo_abi_l1b").root_url == f"countfile://{noaa_year}"
    found = geo.slots(arch, "G16", "2021-04-12 15:20", "2021-04-12 15:21")
    assert list(found["time"]) == [pd.Timestamp("2021-04-12 15:20")]
    assert found["channels"].iloc[0] == ("ir_105",)
    assert found["paths"].iloc[0] == [f"countfile://{noaa_year}/ABI-L1b-RadF/2021/102/15/"
                                      + _abi_name(13, dt.datetime(2021, 4, 12, 15, 20, 20))]
    assert len(calls) <= 3 and calls == [f"{noaa_year}/ABI-L1b-RadF/2021/102/15"]
    # the slot before 15:00 and the latest slot at a time: a walk down the newest folder names, then one hour
    calls.clear()
    slot = geo.latest_slot(arch, "G16", "2021-04-12 15:05")
    assert slot.time == pd.Timestamp("2021-04-12 15:00")
    assert all(c.count("/ABI-L1b-RadF/2021/102/1") <= 1 for c in calls) and len(calls) <= 5
    # a whole day: its 24 hours but 15:00, listed above (the day's folder, listed by the walk, tells which exist)
    calls.clear()
    assert len(geo.slots(arch, "G16", "2021-04-12", "2021-04-13")) == 72
    assert calls == [f"{noaa_year}/ABI-L1b-RadF/2021/102/{h:02d}" for h in range(24) if h != 15]
    # another day: its folder first (more than a few hours are asked for), then its hours
    calls.clear()
    assert len(geo.slots(arch, "G16", "2021-07-01", "2021-07-02")) == 72
    assert calls == [f"{noaa_year}/ABI-L1b-RadF/2021/182"] + [f"{noaa_year}/ABI-L1b-RadF/2021/182/{h:02d}"
                                                               for h in range(24)]
    # the days, in a new process: folder names only (the years; 2021's days are in the state file, closed)
    geo_slots.clear()
    calls.clear()
    days = geo.days(arch, "G16")
    assert len(days) == 365 and str(days[0]) == "2021-01-01" and str(days[-1]) == "2021-12-31"
    assert calls == [f"{noaa_year}/ABI-L1b-RadF"]


def _live_tree(root: Path, day: dt.date) -> None:
    for d in (day - dt.timedelta(days=1), day):
        folder = root / "G16" / f"{d:%Y}" / f"{d:%m}" / f"{d:%d}"
        folder.mkdir(parents=True)
        (folder / _abi_name(13, dt.datetime.combine(d, dt.time(0, 0, 20)))).touch()


def test_a_live_source_is_listed_again_after_its_poll_interval(tmp_path, calls):
    day = dt.date(2026, 3, 26)
    _live_tree(tmp_path / "abi", day)
    state = tmp_path / "state" / "listings.json"
    root = f"countfile://{tmp_path}/abi"

    def lister():
        return geo_slots.PartitionLister(root, "{platform}/{time:%Y/%m/%d}/", ABI_PATTERN.parse, ABI_GLOB, 10,
                                         lambda key: key, poll_seconds=60, state_file=state)

    live = lister()
    clock = pd.Timestamp("2026-03-26 12:00").timestamp()
    span = (pd.Timestamp("2026-03-25"), pd.Timestamp("2026-03-27"))
    assert len(live.rows("G16", "G16", *span, clock=clock)) == 2
    assert live.latest_start("G16", "G16", clock=clock) == pd.Timestamp("2026-03-26 00:00:20")
    today = tmp_path / "abi" / "G16" / "2026" / "03" / "26"
    (today / _abi_name(13, dt.datetime(2026, 3, 26, 12, 10, 20))).touch()  # a new slot lands
    calls.clear()
    assert len(live.rows("G16", "G16", *span, clock=clock + 30)) == 2  # within the poll interval: cached
    assert calls == []
    assert live.latest_start("G16", "G16", clock=clock + 61) == pd.Timestamp("2026-03-26 12:10:20")
    assert f"{tmp_path}/abi/G16/2026/03/26" in calls
    assert f"{tmp_path}/abi/G16/2026/03/25" not in calls  # closed: never listed again
    assert len(live.rows("G16", "G16", *span, clock=clock + 61)) == 3
    # a restarted server: the closed day comes from the state file, the open one is listed
    calls.clear()
    again = lister()
    assert len(again.rows("G16", "G16", *span, clock=clock + 62)) == 3
    assert calls == [f"{tmp_path}/abi/G16/2026/03/26"]
    shutil.rmtree(tmp_path / "abi" / "G16" / "2026" / "03" / "25")  # closed and kept: still known, not listed
    assert len(again.rows("G16", "G16", pd.Timestamp("2026-03-25"), pd.Timestamp("2026-03-26"), clock=clock)) == 1


def test_a_folder_that_cannot_be_listed_is_named(tmp_path):
    from app.data.errors import GranuleError

    lister = geo_slots.PartitionLister("s3://fumarole-no-such-bucket-here/abi", "{platform}/{time:%Y/%m/%d}/",
                                       ABI_PATTERN.parse, ABI_GLOB, 10, lambda key: key,
                                       {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s"})
    with pytest.raises(GranuleError) as exc:
        lister.rows("G16", "G16", pd.Timestamp("2021-04-12"), pd.Timestamp("2021-04-13"))
    assert str(exc.value).startswith("s3://fumarole-no-such-bucket-here/abi/G16/2021/04/12")
    assert "cannot be listed" in str(exc.value)


def test_partition_templates():
    tpl = geo_slots.PartitionTemplate("AHI-L1b-FLDK/{time:%Y/%m/%d/%H%M}/", "", 10)
    assert tpl.segments == ("AHI-L1b-FLDK", "%Y", "%m", "%d", "%H%M")
    assert tpl.leaf_unit == "minute"
    leaves = tpl.leaves(pd.Timestamp("2025-07-08 14:55"), pd.Timestamp("2025-07-08 15:21"))
    assert [rel for rel, _ in leaves] == ["AHI-L1b-FLDK/2025/07/08/1450", "AHI-L1b-FLDK/2025/07/08/1500",
                                          "AHI-L1b-FLDK/2025/07/08/1510", "AHI-L1b-FLDK/2025/07/08/1520"]
    noaa = geo_slots.PartitionTemplate("ABI-L1b-RadF/{time:%Y/%j/%H}/")
    assert noaa.leaf(pd.Timestamp("2021-04-12 15:10")) == "ABI-L1b-RadF/2021/102/15"
    assert noaa.parse(2, "ABI-L1b-RadF/2021/102") == pd.Timestamp("2021-04-12")
    assert noaa.unit(1) == "year" and noaa.unit(0) is None
    with pytest.raises(ValueError, match="folder id"):
        geo_slots.PartitionTemplate("{platform}/{time:%Y}/")
    with pytest.raises(ValueError, match="date directive"):
        geo_slots.PartitionTemplate("{platform}/data/", "G16")


def test_the_catalogues_partition_their_geo_products():
    from app.data.catalog import open_catalog

    for name in ("tiny", "sample"):
        cat = open_catalog(name)
        for product in ("geo_abi_l1b", "geo_ahi_hsd", "geo_seviri_nc", "geo_fci_l1c", "nwcsaf_ctth"):
            assert product_info(cat, product).partition == "{platform}/{time:%Y/%m/%d}/", (name, product)
        assert product_info(cat, "tropomi_so2").partition == ""


# --- one bucket per platform: s3://noaa-{platform}/ABI-L1b-RadF -------------------------------------------------------

NOAA_DAY = dt.date(2025, 7, 8)


@pytest.fixture(scope="module")
def noaa_buckets(tmp_path_factory) -> Path:
    """NOAA's GOES-18 and GOES-19 buckets side by side (two days of hours, three empty C13 files each)."""
    top = tmp_path_factory.mktemp("buckets")
    for bucket, platform in (("noaa-goes18", "G18"), ("noaa-goes19", "G19")):
        t = dt.datetime.combine(NOAA_DAY - dt.timedelta(days=1), dt.time())
        while t.date() <= NOAA_DAY:
            folder = top / bucket / "ABI-L1b-RadF" / f"{t:%Y}" / f"{t:%j}" / f"{t:%H}"
            folder.mkdir(parents=True)
            for minute in (0, 10, 20):
                (folder / _abi_name(13, t + dt.timedelta(minutes=minute, seconds=20), platform)).touch()
            t += dt.timedelta(hours=1)
    return top


def _per_platform_catalog(folder: Path, top: str, platforms: dict | None = None) -> Path:
    """The ABI product of a catalogue whose root names the bucket of each platform: ``noaa-{platform}``."""
    path = _noaa_catalog(folder, f"{top}/noaa-{{platform}}/ABI-L1b-RadF")
    cat = yaml.safe_load(path.read_text())
    meta = cat["entries"]["geo_abi_l1b"]["metadata"]
    meta["platforms"] = platforms if platforms is not None else {
        "goes18": {"platform": "G18", "satellite": "GOES-18"}, "goes19": {"platform": "G19", "satellite": "GOES-19"}}
    cat["data"]["geo_abi_l1b_files"]["kwargs"]["url"] = f"{top}/noaa-{{platform}}/ABI-L1b-RadF/**/{ABI_GLOB}"
    meta["partition"] = "{time:%Y/%j/%H}/"
    path.write_text(yaml.safe_dump(cat, sort_keys=False, allow_unicode=True))
    return path


def test_goes_west_and_east_from_their_own_buckets(noaa_buckets, tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    arch = Archive(str(_per_platform_catalog(tmp_path, f"countfile://{noaa_buckets}")))
    info = arch.product_info("geo_abi_l1b")
    assert info.root_url == f"countfile://{noaa_buckets}/noaa-{{platform}}/ABI-L1b-RadF"
    assert geo.folder_id(arch, "geo_abi_l1b", "G18") == "goes18"
    day = f"{NOAA_DAY:%Y/%j}"
    for position, platform, bucket in (("GOES-West", "G18", "noaa-goes18"), ("GOES-East", "G19", "noaa-goes19")):
        calls.clear()
        found = geo.slots(arch, position, f"{NOAA_DAY} 15:00", f"{NOAA_DAY} 15:30")
        assert list(found["platform"]) == [platform] * 3
        assert list(found["time"]) == [pd.Timestamp(f"{NOAA_DAY} 15:{m}0") for m in range(3)]
        assert found["paths"].iloc[0] == [f"countfile://{noaa_buckets}/{bucket}/ABI-L1b-RadF/{day}/15/"
                                          + _abi_name(13, dt.datetime.combine(NOAA_DAY, dt.time(15, 0, 20)),
                                                      platform)]
        assert calls == [f"{noaa_buckets}/{bucket}/ABI-L1b-RadF/{day}/15"]  # that hour, in that bucket only
    # the ring at a time: each position's latest slot, from its own bucket, a walk down the newest folder names
    calls.clear()
    ring = geo.ring_latest(arch, now=f"{NOAA_DAY} 15:25")
    got = {r["name"]: (r["platform"], r["time"]) for _, r in ring.iterrows() if r["platform"] in ("G18", "G19")}
    assert got == {"GOES-West": ("G18", pd.Timestamp(f"{NOAA_DAY} 15:20")),
                   "GOES-East": ("G19", pd.Timestamp(f"{NOAA_DAY} 15:20"))}
    assert {c.split("/ABI-L1b-RadF")[0].rsplit("/", 1)[-1] for c in calls} == {"noaa-goes18", "noaa-goes19"}
    assert all(c.endswith(("ABI-L1b-RadF", "/2025", f"/{day}", f"/{day}/15")) for c in calls), calls
    # each bucket is a tree of its own: its closed folders kept in a state file of its own
    lister = geo._lister(arch, "geo_abi_l1b")
    assert lister.platform_folders() == ["goes18", "goes19"]
    kept = sorted(p.name for p in (tmp_path / "state").rglob("geo-listings-geo_abi_l1b-*.json"))
    assert kept == ["geo-listings-geo_abi_l1b-10min.goes18.json", "geo-listings-geo_abi_l1b-10min.goes19.json"]
    state = json.loads(next((tmp_path / "state").rglob(kept[0])).read_text())
    assert state["root"] == f"countfile://{noaa_buckets}/noaa-goes18/ABI-L1b-RadF" and f"{day}/15" in state["folders"]
    assert lister.listed[0].startswith(f"countfile://{noaa_buckets}/noaa-goes1")
    # a platform the catalogue does not list reads nothing (no bucket name is made of it)
    calls.clear()
    assert geo.slots(arch, "G16", f"{NOAA_DAY} 15:00", f"{NOAA_DAY} 15:30").empty
    assert lister.rows("G16", "G16", pd.Timestamp(NOAA_DAY), pd.Timestamp(NOAA_DAY) + pd.Timedelta(days=1)).empty
    assert calls == []
    assert sorted(geo.days(arch, "G19")) == [np.datetime64(NOAA_DAY - dt.timedelta(days=1)), np.datetime64(NOAA_DAY)]


def test_a_root_naming_the_platform_needs_its_platforms(noaa_buckets, tmp_path):
    from app.data.errors import CatalogError

    top = f"countfile://{noaa_buckets}"
    with pytest.raises(CatalogError, match=r"list the platforms it takes in its platforms: map"):
        Archive(str(_per_platform_catalog(tmp_path, top, platforms={})))
    with pytest.raises(CatalogError, match=r"cannot be put in a URL"):
        Archive(str(_per_platform_catalog(tmp_path, top, platforms={"../etc": {"platform": "G18"}})))
    with pytest.raises(ValueError, match="folder ids"):
        geo_slots.PartitionLister(f"{top}/noaa-{{platform}}", "{time:%Y/%j/%H}/", ABI_PATTERN.parse)
    with pytest.raises(ValueError, match="not in both"):
        geo_slots.PartitionLister(f"{top}/noaa-{{platform}}", "{platform}/{time:%Y/%j/%H}/", ABI_PATTERN.parse,
                                  folder_ids=["goes18"])
