"""The constellation as data: assets/platforms.yaml, the ring of any date, handovers, overrides, a new satellite."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest
import yaml

from app.data import geo, platforms
from app.data.archive import Archive
from app.data.errors import CatalogError, UserInputError
from app.data.geo_bands import GEO_PLATFORMS, geo_platform

POSITIONS = ["GOES-West", "GOES-East", "Meteosat", "Meteosat IODC", "Himawari"]


def _keys(ring) -> list[str | None]:
    return [a.key for a in ring]


# --- the file ---------------------------------------------------------------------------------------------------


def test_the_file_loads_with_every_platform_we_read():
    c = platforms.load()
    assert [p.name for p in c.positions] == POSITIONS
    assert [p.lon for p in c.positions] == [-137.2, -75.2, 0.0, 45.5, 140.7]
    assert set(c.platforms) == {"G16", "G17", "G18", "G19", "H08", "H09", "MSG1", "MSG2", "MSG3", "MSG4", "MTI1"}
    g19 = c.platform("G19")
    assert (g19.name, g19.instrument, g19.nwcsaf_id, g19.instrument_id) == ("GOES-19", "abi", "GOES19", "FM4")
    assert g19.projection.lon_0 == -75.0 and g19.projection.h == 35786023.0 and g19.projection.sweep == "x"
    mti1 = platforms.platform("MTI1")  # the id of FCI L1c file names
    assert (mti1.key, mti1.name, mti1.instrument) == ("MTI1", "Meteosat-12", "fci")
    assert mti1.projection.h == 35786400.0 and mti1.projection.sweep == "y"
    # the YAML anchors give one Earth model per family
    assert c.platform("H09").projection == c.platform("H08").projection
    assert c.platform("MSG2").projection.a == 6378169.0 and c.platform("MSG2").projection.lon_0 == 45.5
    # every period says where it comes from
    for p in c.platforms.values():
        assert p.periods, p.key
        assert all(len(q.source) > 20 for q in p.periods), p.key


def test_platforms_are_found_by_any_of_their_names():
    assert platforms.platform("GOES-18").key == "G18"
    assert platforms.platform("goes-t").key == "G18"  # the pre-launch name, any case
    assert platforms.platform("HIMAWARI9").key == "H09"  # NWC SAF id
    assert platforms.platform("MTG-I1").key == "MTI1"
    with pytest.raises(UserInputError, match=r"unknown geostationary platform 'GOES-20'; assets/platforms.yaml "
                                             r"knows G16 \(GOES-16\), G17 \(GOES-17\), G18 \(GOES-18\)"):
        platforms.platform("GOES-20")


def test_geo_bands_platforms_are_a_view_of_the_file():
    assert set(GEO_PLATFORMS) == set(platforms.platforms())
    assert geo_platform("G18").sub_lon == -137.2 and geo_platform("G18").slot == "GOES-West"
    assert geo_platform("MSG1").sub_lon == 41.5 and geo_platform("MSG2").sub_lon == 45.5
    assert geo_platform("HIMAWARI8").key == "H08"
    with pytest.raises(KeyError, match="unknown GEO platform 'G20'; known platforms: G16, G17, G18, G19"):
        geo_platform("G20")


# --- the ring of a date -----------------------------------------------------------------------------------------


def test_the_ring_of_2021_and_of_2025():
    ring = platforms.ring_on("2021-04-12")
    assert [a.position for a in ring] == POSITIONS
    assert _keys(ring) == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert [a.sub_lon for a in ring] == [-137.2, -75.2, 0.0, 41.5, 140.7]
    ring = platforms.ring_on("2025-07-08")
    assert _keys(ring) == ["G18", "G19", "MTI1", "MSG2", "H09"]
    assert [a.satellite for a in ring] == ["GOES-18", "GOES-19", "Meteosat-12", "Meteosat-9", "Himawari-9"]
    assert [a.sensor for a in ring] == ["abi", "abi", "fci", "seviri", "ahi"]
    assert [a.sub_lon for a in ring] == [-137.2, -75.2, 0.0, 45.5, 140.7]


@pytest.mark.parametrize(("position", "day", "before", "after"), [
    ("GOES-East", "2025-04-07", "G16", "G19"),
    ("GOES-West", "2023-01-04", "G17", "G18"),
    ("Himawari", "2022-12-13", "H08", "H09"),
    ("Meteosat IODC", "2022-06-01", "MSG1", "MSG2"),
    ("Meteosat", "2018-02-20", "MSG3", "MSG4"),
    ("Meteosat", "2023-03-21", "MSG4", "MSG3"),
    ("Meteosat", "2025-06-17", "MSG3", "MTI1"),
])
def test_handovers(position, day, before, after):
    c = platforms.default()
    t = pd.Timestamp(day)
    assert c.assignment(position, t - pd.Timedelta(days=1)).key == before
    assert c.assignment(position, t - pd.Timedelta(seconds=1)).key == before  # the last instant before
    assert c.assignment(position, t).key == after  # the handover day itself: the new satellite
    assert c.assignment(position, t + pd.Timedelta(days=1)).key == after


def test_a_position_nobody_held_is_said_not_a_crash():
    ring = platforms.ring_on("2016-01-01")
    west = ring[0]
    assert west.platform is None and west.key is None and west.sub_lon == -137.2
    assert west.note == ("no satellite we read held GOES-West on 2016-01-01 (it was held by GOES-17 2019-02-12 → "
                         "2023-01-04; GOES-18 2023-01-04 → now)")
    assert _keys(ring) == [None, None, "MSG3", None, "H08"]


def test_aware_times_are_converted_to_utc():
    # 2025-04-06 22:00 in New York is 02:00 UTC on the 7th: GOES-19's first day
    assert platforms.default().assignment("GOES-East", pd.Timestamp("2025-04-06T22:00-04:00")).key == "G19"


# --- a bad file is refused, naming the file and the entry --------------------------------------------------------


def _write(tmp_path, text: str):
    path = tmp_path / "platforms.yaml"
    path.write_text(textwrap.dedent(text))
    return path


BASE = """\
    positions:
      - {name: West, lon: -100.0}
      - {name: East, lon: 100.0}
    projections:
      geo: &geo {h: 35786023.0, a: 6378137.0, b: 6356752.31414, sweep: x}
    platforms:
      A1:
        name: Alpha-1
        instrument: abi
        file_ids: [A1]
        nwcsaf_id: ALPHA1
        projection: {<<: *geo, lon_0: -100.0}
        periods:
          - {position: West, lon: -100.0, from: 2020-01-01, until: 2024-01-01, source: "operator notice, 2020"}
"""


def test_overlapping_periods_of_one_position_are_refused(tmp_path):
    path = _write(tmp_path, BASE + """\
      A2:
        name: Alpha-2
        instrument: abi
        file_ids: [A2]
        nwcsaf_id: ALPHA2
        projection: {<<: *geo, lon_0: -100.0}
        periods:
          - {position: West, lon: -100.0, from: 2023-06-01, until: null, source: "operator notice, 2023"}
    """)
    with pytest.raises(CatalogError, match=rf"{path}: West is held by A1 \(Alpha-1, 2020-01-01 → 2024-01-01\) and A2 "
                                           r"\(Alpha-2, 2023-06-01 → now\) at once; periods of one position must not "
                                           r"overlap"):
        platforms.load(path)


def test_one_satellite_in_two_places_at_once_is_refused(tmp_path):
    text = BASE.replace("""source: "operator notice, 2020"}
""", """source: "operator notice, 2020"}
          - {position: East, lon: 100.0, from: 2023-01-01, until: null, source: "operator notice, 2023"}
""")
    with pytest.raises(CatalogError, match=r"platforms: A1: its periods West 2020-01-01 → 2024-01-01 and East "
                                           r"2023-01-01 → now overlap"):
        platforms.load(_write(tmp_path, text))


@pytest.mark.parametrize(("change", "message"), [
    (("position: West", "position: North"), r"A1: periods\[0\]: position 'North' is not one of the ring's: West, East"),
    (("until: 2024-01-01", "until: 2019-01-01"), r"A1: periods\[0\]: until \(2019-01-01\) is not after from"),
    (('source: "operator notice, 2020"', 'source: ""'), r"A1: periods\[0\]: source must name the operator"),
    (("instrument: abi", "instrument: modis"), r"A1: instrument 'modis' is not one we read \(abi, ahi, seviri, fci\)"),
    (("sweep: x", "sweep: z"), r"A1: projection sweep must be x or y, not 'z'"),
    (("        nwcsaf_id: ALPHA1\n", ""), r"A1 lacks nwcsaf_id"),
    (("from: 2020-01-01", "from: someday"), r"A1: periods\[0\]: from must be a date \(2023-01-04\) or a UTC time, "
                                            r"not 'someday'"),
])
def test_a_bad_entry_names_the_file_and_the_key(tmp_path, change, message):
    path = _write(tmp_path, BASE.replace(*change))
    with pytest.raises(CatalogError, match=rf"^{path}: (platforms: )?{message}"):
        platforms.load(path)


def test_a_file_that_is_not_yaml_is_said(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("positions: [\n")
    with pytest.raises(CatalogError, match=rf"{path}: is not valid YAML"):
        platforms.load(path)


# --- adding a satellite is an edit of data ------------------------------------------------------------------------


def test_a_platform_added_only_in_the_yaml_joins_the_ring(tmp_path):
    data = yaml.safe_load(platforms.PLATFORMS_FILE.read_text())
    data["platforms"]["G20"] = {
        "name": "GOES-20", "instrument": "abi", "file_ids": ["G20"], "nwcsaf_id": "GOES20",
        "projection": {"lon_0": -75.0, "h": 35786023.0, "a": 6378137.0, "b": 6356752.31414, "sweep": "x"},
        "periods": [{"position": "GOES-East", "lon": -75.2, "from": "2032-05-01", "until": None,
                     "source": "invented for the test: a future operator notice"}],
    }
    data["platforms"]["G19"]["periods"][0]["until"] = "2032-05-01"
    path = tmp_path / "platforms.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    c = platforms.load(path)
    assert _keys(c.ring_on("2032-04-30")) == ["G18", "G19", "MTI1", "MSG2", "H09"]
    assert _keys(c.ring_on("2032-05-01")) == ["G18", "G20", "MTI1", "MSG2", "H09"]
    assert c.platform("GOES-20").nwcsaf_id == "GOES20"


# --- the catalogue overrides the file ----------------------------------------------------------------------------


def test_a_catalogue_override_is_honoured():
    c = platforms.with_overrides({"G17": {"satellite": "GOES-17", "ring_position": "GOES-West", "from": "2025-01-01"}},
                                 "catalogue test.yaml")
    assert _keys(c.ring_on("2025-07-08")) == ["G17", "G19", "MTI1", "MSG2", "H09"]
    assert _keys(c.ring_on("2024-12-31")) == ["G18", "G16", "MSG3", "MSG2", "H09"]  # before it: the file
    assert _keys(c.ring_on("2021-04-12"))[0] == "G17"
    # a bounded override: the file's holder comes back after it
    c = platforms.with_overrides({"G16": {"ring_position": "GOES-East", "from": "2025-05-01", "until": "2025-06-01"}})
    assert [c.assignment("GOES-East", d).key for d in ("2025-04-30", "2025-05-15", "2025-06-01")] == \
        ["G19", "G16", "G19"]
    # the default file is left alone
    assert _keys(platforms.ring_on("2025-07-08"))[0] == "G18"


def test_a_catalogue_can_add_a_satellite_and_aliases():
    c = platforms.with_overrides({
        "G20": {"satellite": "GOES-20", "instrument": "abi", "ring_position": "GOES-East", "from": "2032-01-01",
                "sub_lon": -75.2},
        "GOES17X": {"platform": "G17"},
    })
    g20 = c.platform("G20")
    assert g20.instrument == "abi" and g20.projection.h == 35786023.0 and g20.projection.sweep == "x"
    assert c.assignment("GOES-East", "2032-02-01").key == "G20" and c.assignment("GOES-East", "2031-12-31").key == "G19"
    assert c.platform("GOES17X").key == "G17"


@pytest.mark.parametrize(("entry", "message"), [
    ({"G17": {"satellite": "GOES-18"}}, r"catalogue x.yaml: platforms: G17 says satellite 'GOES-18', but G17 is "
                                        r"GOES-17"),
    ({"G17": {"ring_position": "Pacific"}}, r"ring_position 'Pacific' is not a ring position; the ring has GOES-West"),
    ({"G20": {"satellite": "GOES-20"}}, r"'G20' is not a platform assets/platforms.yaml knows .*give its satellite "
                                        r"and instrument"),
    ({"G17": {"ring_position": "GOES-West", "colour": "red"}}, r"G17: unknown field colour"),
    ({"G17": {"ring_position": "GOES-West", "from": "2025-02-01", "until": "2025-01-01"}}, r"until \(2025-01-01\) is "
                                                                                            r"not after from"),
])
def test_a_bad_override_is_one_sentence(entry, message):
    with pytest.raises(CatalogError, match=message):
        platforms.with_overrides(entry, "catalogue x.yaml")


# --- the archive reads its catalogue's platforms: map -----------------------------------------------------------------


def _catalogue_with(tmp_path, archive_root, old: str, new: str):
    from app.paths import CATALOGS

    text = (CATALOGS / "tiny.yaml").read_text()
    assert text.count(old) == 1
    path = tmp_path / "override.yaml"
    path.write_text(text.replace(old, new).replace("{CATALOG_DIR}/../data/tiny", str(archive_root)))
    return path


def test_the_archive_reads_the_platforms_map_of_its_catalogue(tmp_path, tiny_archive_path, monkeypatch):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    path = _catalogue_with(tmp_path, tiny_archive_path, "G17: {satellite: GOES-17, sub_lon: -137.2}",
                           "G17: {satellite: GOES-17, ring_position: GOES-West, from: 2025-01-01, sub_lon: -137.2}")
    archive = Archive(str(path))
    c = geo.constellation(archive)
    assert _keys(c.ring_on("2025-07-08")) == ["G17", "G19", "MTI1", "MSG2", "H09"]
    assert [p.platform for p in geo.ring_at("2025-07-08", archive)][:2] == ["G17", "G19"]
    # the tiny catalogue itself changes nothing: its ring of 2025 is the file's
    tiny = Archive("tiny")
    assert [p.platform for p in geo.ring_at("2025-07-08", tiny)] == ["G18", "G19", "MTI1", "MSG2", "H09"]
    assert [p.platform for p in geo.ring_at("2021-04-12", tiny)] == ["G17", "G16", "MSG4", "MSG1", "H08"]


def test_a_bad_platforms_map_in_the_catalogue_names_the_catalogue(tmp_path, tiny_archive_path, monkeypatch):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    path = _catalogue_with(tmp_path, tiny_archive_path, "G17: {satellite: GOES-17, sub_lon: -137.2}",
                           "G17: {satellite: GOES-18, sub_lon: -137.2}")
    with pytest.raises(CatalogError, match=rf"catalogue {path}: platforms: G17 says satellite 'GOES-18'"):
        geo.constellation(Archive(str(path)))


# --- positions resolved by date in the GEO layer ---------------------------------------------------------------------


def test_ring_position_resolves_names_by_the_time_asked():
    assert geo.ring_position("GOES-East", "2021-04-12").platform == "G16"
    assert geo.ring_position("GOES-East", "2025-07-08").platform == "G19"
    assert geo.ring_position("goes-east", "2025-04-06T23:59").platform == "G16"
    pos = geo.ring_position("G16", "2021-04-12")
    assert (pos.name, pos.satellite, pos.sub_lon, pos.start) == ("GOES-East", "GOES-16", -75.2,
                                                                 pd.Timestamp("2017-12-18"))
    assert geo.ring_position("Meteosat-12").sensor == "fci" and geo.ring_position("MTI1").product == "geo_fci_l1c"
    with pytest.raises(geo.MissingSlotError, match="no satellite we read held GOES-West on 2016-01-01"):
        geo.ring_position("GOES-West", "2016-01-01")
