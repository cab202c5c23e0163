"""The 2025 ring end to end: `fumarole sample --scenario lewotobi-2025` writes today's constellation (GOES-18,
GOES-19, Meteosat-12 with FCI, Meteosat-9 at the Indian Ocean, Himawari-9) and the ring shows each satellite's
slot, read through the catalogue's readers (satpy for every imager); the orbit of that day is in the real TROPOMI
layout of its processor (collection 03, 02.07.01: the layer height, no 3 km column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data import geo
from app.data.tropomi import read_attrs, read_swath
from app.render import geo as render
from app.sample.archive import write_archive
from app.services import geo as services
from tests.conftest import archive_over

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("satpy_one_thread")]  # satpy: tests/conftest.py

DAY = "2025-07-08"
RING_2025 = ["G18", "G19", "MTI1", "MSG2", "H09"]


@pytest.fixture(scope="module")
def archive_2025(tmp_path_factory):
    root = tmp_path_factory.mktemp("lewotobi") / "archive"
    write_archive(root, scenario="lewotobi-2025-tiny", resolution="tiny", products=["tropomi", "caliop", "geo"])
    return archive_over(root, root.parent)


def test_the_2025_ring_is_todays_constellation_with_a_slot_each(archive_2025):
    ring = geo.ring_latest(archive_2025, now=pd.Timestamp(f"{DAY}T16:00"))
    assert list(ring["platform"]) == RING_2025
    assert list(ring["satellite"]) == ["GOES-18", "GOES-19", "Meteosat-12", "Meteosat-9", "Himawari-9"]
    assert ring["time"].notna().all(), ring
    # nothing of the archive was skipped: FCI chunks, v2025 CTTH and the new platforms' files all index
    assert archive_2025.last_report.skipped == []


@pytest.mark.parametrize("platform", RING_2025)
def test_each_2025_satellite_gives_an_ash_frame_on_its_disk(archive_2025, platform):
    t = geo.latest_slot(archive_2025, platform, now=pd.Timestamp(f"{DAY}T16:00")).time
    scene = services.load_product(archive_2025, platform, t, "ash")
    assert scene.attrs["platform_id"] == platform
    frame = render.frame(scene, "ash", width=128)
    rgba = np.asarray(frame.values)
    on_disk = rgba[..., 3] > 0
    assert 0.3 < on_disk.mean() < 0.95  # the Earth's disk, and space around it
    # a real picture: the three colour channels vary over the disk
    assert all(rgba[..., c][on_disk].std() > 2 for c in range(3))


def test_the_fci_slot_is_read_with_satpys_reader_and_has_cloud_tops(archive_2025):
    t = geo.latest_slot(archive_2025, "MTI1", now=pd.Timestamp(f"{DAY}T16:00")).time
    scene = geo.read_scene(archive_2025, "Meteosat", t, ["ir_105", "ir_87"])
    assert scene.attrs["sensor"] == "fci" and scene.attrs["reader"] == "satpy fci_l1c_nc"
    bt = scene["ir_105"].values
    assert 180.0 < np.nanmin(bt) < np.nanmax(bt) < 330.0
    ctth = geo.read_cloud_top(archive_2025, "MTI1", t)
    heights = ctth["cloud_top_height"].values
    assert np.isfinite(heights).any() and np.nanmax(heights) < 20_000.0


def test_the_2025_orbits_have_the_real_layout_of_their_processor(archive_2025):
    orbits = archive_2025.granules("tropomi_so2", DAY, "2025-07-09")
    assert len(orbits) > 0
    path = orbits["path"].iloc[0]
    assert "_03_020701_" in path  # collection 03, processor 02.07.01 (the 2025 OFFL granules)
    attrs = read_attrs(path)
    assert "3km" in attrs["unavailable_levels"] and "02.07.01" in attrs["unavailable_levels"]["3km"]
    swath = read_swath(path, variables=("so2_7km", "so2_layer_height"))
    assert swath["so2_layer_height"].attrs["units"] == "km"
