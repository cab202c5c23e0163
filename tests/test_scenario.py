import numpy as np
import pytest

from app.sample.scenario import (
    KG_PER_KM2_PER_DU,
    get_scenario,
    standard_atmosphere_pressure_hpa,
    standard_atmosphere_temperature_k,
)


def test_du_constant():
    # SCIENCE.md: 1 DU over 1 km² is 28.58 kg of SO2
    assert KG_PER_KM2_PER_DU == pytest.approx(28.58, abs=0.01)


def _grid(lat0, lat1, lon0, lon1, step):
    lat = np.arange(lat0, lat1, step) + step / 2
    lon = np.arange(lon0, lon1, step) + step / 2
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    area = (step * 111.195) ** 2 * np.cos(np.deg2rad(la))
    return la, lo, area


def test_column_integrates_to_the_mass_aloft():
    sc = get_scenario("soufriere")
    t = np.datetime64("2021-04-11T12:00")
    la, lo, area = _grid(-5, 35, -80, 20, 0.1)
    col = sc.so2_column_du(la, lo, t)
    mass = (col * area).sum() * KG_PER_KM2_PER_DU
    assert mass == pytest.approx(sc.total_so2_kg(t), rel=0.03)
    # what has decayed: released minus aloft
    released = sc.so2_emitted_kg("2000-01-01", t)
    assert sc.total_so2_kg(t) < released


def test_footprint_averaging_conserves_mass():
    sc = get_scenario("soufriere")
    t = np.datetime64("2021-04-12T17:00")
    la, lo, area = _grid(5, 25, -70, -40, 0.2)
    sharp = sc.so2_column_du(la, lo, t)
    smooth = sc.so2_column_du(la, lo, t, pixel_var_km2=(22.0**2 + 7.0**2) / 12)
    assert (smooth * area).sum() == pytest.approx((sharp * area).sum(), rel=0.01)
    assert smooth.max() <= sharp.max()


def test_plume_goes_east_at_height_and_height_in_range():
    sc = get_scenario("soufriere")
    t = np.datetime64("2021-04-12T17:30")
    la, lo, _ = _grid(5, 25, -70, -30, 0.1)
    col = sc.so2_column_du(la, lo, t)
    h = sc.so2_layer_height_km(la, lo, t)
    east = col[lo > -58].sum()
    west = col[lo < -62].sum()
    assert east > 5 * west
    thick = col > 5
    assert np.nanmin(h[thick]) >= 1.4 and np.nanmax(h[thick]) <= 16.1
    # the dense eastern plume is high (8–16 km pulses)
    assert np.nanmedian(h[thick & (lo > -55)]) > 8


def test_backscatter_peaks_at_plume_height():
    sc = get_scenario("soufriere")
    t = np.datetime64("2021-04-12T17:30")
    la, lo, _ = _grid(5, 25, -70, -30, 0.1)
    col = sc.so2_column_du(la, lo, t)
    i = np.unravel_index(np.argmax(col), col.shape)
    z = np.arange(0, 25, 0.05)
    b = sc.aerosol_backscatter_532(la[i][None], lo[i][None], z, t)[0]
    h = sc.so2_layer_height_km(la[i], lo[i], t)
    assert 1e-4 < b.max() < 5e-2
    assert abs(z[np.argmax(b)] - h) < 2.5


def test_clouds_are_physical_and_repeatable():
    sc = get_scenario("soufriere")
    la, lo, _ = _grid(-60, 60, -180, 180, 1.0)
    c1 = sc.clouds(la, lo, np.datetime64("2021-04-12T12:00"))
    c2 = sc.clouds(la, lo, np.datetime64("2021-04-12T12:00"))
    np.testing.assert_array_equal(c1.fraction, c2.fraction)
    cloudy = c1.fraction > 0
    assert 0.2 < cloudy.mean() < 0.8
    assert np.all(c1.base_km[cloudy] < c1.top_km[cloudy])
    # ice where the top is colder than 250 K
    t_top = standard_atmosphere_temperature_k(c1.top_km[cloudy])
    np.testing.assert_array_equal(c1.is_ice[cloudy], t_top < 250)


def test_standard_atmosphere():
    assert standard_atmosphere_temperature_k(0) == pytest.approx(288.15)
    assert standard_atmosphere_temperature_k(11) == pytest.approx(216.65)
    assert standard_atmosphere_pressure_hpa(0) == pytest.approx(1013.25)
    assert standard_atmosphere_pressure_hpa(11) == pytest.approx(226.3, abs=0.5)
    assert standard_atmosphere_pressure_hpa(16) == pytest.approx(103.5, abs=1.0)


def test_unknown_scenario_lists_known_ones():
    with pytest.raises(KeyError, match="soufriere"):
        get_scenario("pinatubo")


def test_lewotobi_2025_scenario():
    sc = get_scenario("lewotobi-2025")
    v = sc.volcano
    assert (v.name, v.number, v.latitude, v.longitude, v.elevation_m) == ("Lewotobi Laki-laki", 264180, -8.542,
                                                                          122.775, 1703.0)
    assert [str(d) for d in sc.days] == ["2025-07-07", "2025-07-08", "2025-07-09"]
    assert max(p.top_km for p in sc.pulses) == 18.0 and "illustrative" in sc.caption
    tiny = get_scenario("lewotobi-2025-tiny")
    assert [str(d) for d in tiny.days] == ["2025-07-07"] and tiny.volcano == v
    # before the explosion only the degassing plume; three hours after it, SO2 and ash near the vent, high up
    la, lo, area = _grid(-14, -3, 116, 130, 0.1)
    before = sc.so2_column_du(la, lo, np.datetime64("2025-07-07T02:30"))
    after = sc.so2_column_du(la, lo, np.datetime64("2025-07-07T06:00"))
    assert (after * area).sum() > 10 * (before * area).sum()
    thick = after > 5
    assert np.nanmedian(sc.so2_layer_height_km(la, lo, np.datetime64("2025-07-07T06:00"))[thick]) > 8
    assert np.nanmax(sc.ash_loading_g_m2(la, lo, np.datetime64("2025-07-07T04:00"))) > 1.0


def test_the_2025_archive_has_the_2025_ring_and_no_caliop(tmp_path, caplog):
    from app.sample.archive import TINY, _jobs, geo_platforms_on

    assert geo_platforms_on("2025-07-07") == ("G18", "G19", "MTI1", "MSG2", "H09")
    assert geo_platforms_on("2021-04-12") == ("G17", "G16", "MSG4", "MSG1", "H08")
    with caplog.at_level("WARNING", logger="app.sample.archive"):
        jobs = _jobs(["tropomi", "caliop", "geo"], "lewotobi-2025-tiny", ["2025-07-07"], str(tmp_path), TINY)
    assert sorted(j[5] for j in jobs if j[0] == "geo") == ["G18", "G19", "H09", "MSG2", "MTI1"]
    assert [j[0] for j in jobs if j[0] != "geo"] == ["tropomi"]
    said = [r.getMessage() for r in caplog.records if "CALIOP" in r.getMessage()]
    assert len(said) == 1 and "August 2023" in said[0] and "2025-07-07" in said[0]
    jobs = _jobs(["caliop", "geo"], "soufriere-tiny", ["2021-04-12"], str(tmp_path), TINY)
    assert sorted(j[5] for j in jobs if j[0] == "geo") == ["G16", "G17", "H08", "MSG1", "MSG4"]
    assert [j[0] for j in jobs if j[0] != "geo"] == ["caliop"]
