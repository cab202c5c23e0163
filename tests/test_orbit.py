import numpy as np
import pytest

from app.sample.orbit import (
    CALIPSO,
    SENTINEL_5P,
    scan_angle_to_ground_km,
    viewing_zenith_deg,
)


@pytest.mark.parametrize(
    "time, orbit",
    [
        # the orbit numbers of real public granule names (shared/FORMATS.md), start and end of each NRTI piece
        ("2020-04-30T12:59:48", 13196),
        ("2020-04-30T13:04:48", 13196),
        ("2025-07-05T06:41:45", 40035),
        ("2025-07-05T06:46:45", 40035),
    ],
)
def test_s5p_orbit_numbers_match_real_granules(time, orbit):
    assert int(SENTINEL_5P.orbit_number(np.datetime64(time))) == orbit


def test_s5p_period_and_repeat_cycle():
    # 227 orbits in 16 days: about 101.5 minutes, 14.19 orbits a day
    assert SENTINEL_5P.period_s / 60 == pytest.approx(101.5, abs=0.1)
    n = SENTINEL_5P.orbits_between("2021-04-12", "2021-04-13")
    assert n[0] == 18112 and len(n) in (14, 15)


def test_s5p_crosses_equator_northbound_at_1330_local():
    t_an = SENTINEL_5P.ascending_node_time(18112)
    lat, lon = SENTINEL_5P.subpoint(t_an)
    assert abs(float(lat)) < 1e-6
    utc_hours = (t_an - t_an.astype("datetime64[D]")) / np.timedelta64(1, "h")
    local = (utc_hours + float(lon) / 15.0) % 24
    assert local == pytest.approx(13.5, abs=0.01)
    # going north just after the node
    lat2, _ = SENTINEL_5P.subpoint(t_an + np.timedelta64(60, "s"))
    assert lat2 > 0


def test_ground_track_speed_and_inclination():
    t = SENTINEL_5P.orbit_start(18112) + np.arange(0, 6000, 10).astype("timedelta64[s]")
    lat, lon = SENTINEL_5P.subpoint(t)
    # a 98.74° inclination orbit reaches 81.26° of latitude
    assert lat.max() == pytest.approx(180 - 98.74, abs=0.05)
    # ground speed of an 824 km orbit: 2πR / period ≈ 6.6 km/s (relative to the rotating Earth a little less)
    step_km = np.deg2rad(np.abs(np.diff(lat[100:110]))) * 6371.0
    assert 60 < step_km.max() < 70


def test_swath_geometry():
    # scan angles that give TROPOMI's ~2,600 km swath; nadir pixel 3.5 km across at 0.24° per pixel
    edge = scan_angle_to_ground_km(54.0, 824.0)
    assert 2 * edge == pytest.approx(2600, rel=0.04)
    nadir = scan_angle_to_ground_km(0.12, 824.0) - scan_angle_to_ground_km(-0.12, 824.0)
    assert nadir == pytest.approx(3.45, rel=0.05)
    assert viewing_zenith_deg(54.0, 824.0) == pytest.approx(66, abs=1.5)


def test_ground_points_are_perpendicular_to_track():
    t = np.array([SENTINEL_5P.ascending_node_time(18112)])
    lat, lon = SENTINEL_5P.ground_points(t, np.array([-1000.0, 0.0, 1000.0]))
    # at the node, 1000 km across a near-polar track is about 9° of longitude either side
    assert abs(lat[0, 1]) < 1e-6
    # (this node is near the antimeridian: compare wrapped differences)
    def dlon(a, b):
        return (a - b + 180) % 360 - 180

    assert dlon(lon[0, 2], lon[0, 1]) == pytest.approx(9.0, abs=0.3)
    assert dlon(lon[0, 1], lon[0, 0]) == pytest.approx(9.0, abs=0.3)


def test_calipso_orbit_is_distinct():
    assert CALIPSO.period_s / 60 == pytest.approx(98.8, abs=0.2)
