"""Units and spherical geodesy against hand-computed values (SCIENCE.md)."""

import math

import numpy as np
import pytest

from app.science import geodesy, units
from app.science.geodesy import (
    EARTH_RADIUS_KM,
    corners_from_centres,
    great_circle_distance_km,
    pixel_area_km2,
    spherical_cap_area_km2,
)

R = EARTH_RADIUS_KM


# --- units -----------------------------------------------------------------------------------------------------


def test_one_du_over_one_km2_is_28_58_kg():
    assert units.du_to_kg_per_km2(1.0) == pytest.approx(28.58, rel=1e-3)
    # by hand: 4.4615e-4 mol/m2 x 64.066e-3 kg/mol x 1e6 m2/km2 = 28.583 kg
    assert units.SO2_KG_PER_DU_KM2 == pytest.approx(4.4615e-4 * 64.066e-3 * 1e6, rel=1e-12)
    assert units.SO2_KG_M2_PER_DU == pytest.approx(2.8583e-5, rel=1e-4)


def test_dobson_unit_from_molecules_and_avogadro():
    assert units.DU_MOLECULES_M2 / units.AVOGADRO_PER_MOL == pytest.approx(units.DU_MOL_M2, rel=1e-4)


def test_mol_m2_du_round_trip():
    assert units.mol_m2_to_du(4.4615e-4) == pytest.approx(1.0)
    assert units.du_to_mol_m2(10.0) == pytest.approx(4.4615e-3)
    values = np.array([-1.0, 0.0, 0.37, 250.0])
    np.testing.assert_allclose(units.mol_m2_to_du(units.du_to_mol_m2(values)), values)
    # TROPOMI's own multiplication_factor_to_convert_to_DU is 2241.15
    assert units.mol_m2_to_du(1.0) == pytest.approx(2241.15, rel=2e-4)


def test_kg_m2_du_round_trip():
    assert units.du_to_kg_per_m2(1.0) == pytest.approx(2.8583e-5, rel=1e-4)
    np.testing.assert_allclose(units.kg_per_m2_to_du(units.du_to_kg_per_m2([0.5, 3.0])), [0.5, 3.0])


def test_mass_and_flux_conversions():
    assert units.kg_to_tonnes(8.98e6) == pytest.approx(8980.0)
    assert units.tonnes_to_kg(1.5) == pytest.approx(1500.0)
    assert units.kg_s_to_t_day(1.0) == pytest.approx(86.4)
    assert units.t_day_to_kg_s(1000.0) == pytest.approx(11.574074, rel=1e-6)
    np.testing.assert_allclose(units.t_day_to_kg_s(units.kg_s_to_t_day([0.1, 23.0])), [0.1, 23.0])


def test_worked_check_of_science_md_by_arithmetic():
    # 10 DU uniform over a disk of radius 100 km (3.1416e4 km2) is about 8,980 t
    mass_t = units.kg_to_tonnes(units.du_to_kg_per_km2(10.0) * math.pi * 100.0**2)
    assert mass_t == pytest.approx(8980.0, rel=1e-3)


# --- distances -------------------------------------------------------------------------------------------------


def test_paris_london():
    # Notre-Dame (48.8566 N, 2.3522 E) to Charing Cross (51.5074 N, 0.1278 W): 343.6 km on the mean sphere,
    # checked here against the spherical law of cosines.
    lat1, lon1, lat2, lon2 = map(math.radians, (48.8566, 2.3522, 51.5074, -0.1278))
    by_cosines = R * math.acos(
        math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    )
    d = great_circle_distance_km(48.8566, 2.3522, 51.5074, -0.1278)
    assert d == pytest.approx(by_cosines, rel=1e-9)
    assert d == pytest.approx(343.6, abs=0.5)


def test_distances_by_hand():
    one_degree = math.pi * R / 180.0  # 111.195 km
    assert great_circle_distance_km(0, 0, 90, 0) == pytest.approx(math.pi * R / 2)
    assert great_circle_distance_km(0, 0, 0, 1) == pytest.approx(one_degree)
    assert great_circle_distance_km(10, 20, 10, 20) == 0.0
    # across the antimeridian, and with longitudes written 0-360
    assert great_circle_distance_km(0, 179.5, 0, -179.5) == pytest.approx(one_degree)
    assert great_circle_distance_km(0, 179.5, 0, 180.5) == pytest.approx(one_degree)
    # antipodes
    assert great_circle_distance_km(30, 40, -30, -140) == pytest.approx(math.pi * R)


def test_distance_broadcasts_over_arrays_and_keeps_nan():
    lat = np.array([[0.0, 1.0], [np.nan, 0.0]])
    lon = np.array([[1.0, 0.0], [0.0, -1.0]])
    d = great_circle_distance_km(0.0, 0.0, lat, lon)
    assert d.shape == (2, 2)
    np.testing.assert_allclose(d[[0, 0, 1], [0, 1, 1]], math.pi * R / 180.0)
    assert np.isnan(d[1, 0])


def test_small_distances_keep_precision():
    # 10 m north: the haversine keeps full precision where acos would not
    d = great_circle_distance_km(45.0, 7.0, 45.0 + math.degrees(0.010 / R), 7.0)
    assert d == pytest.approx(0.010, rel=1e-6)


# --- areas -----------------------------------------------------------------------------------------------------

ONE_DEGREE_AT_EQUATOR = R**2 * math.radians(1.0) * math.sin(math.radians(1.0))  # 12,364 km2


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_one_degree_pixel_at_the_equator(method):
    assert ONE_DEGREE_AT_EQUATOR == pytest.approx(12364.0, abs=1.0)
    area = pixel_area_km2([0, 0, 1, 1], [0, 1, 1, 0], method=method)
    # great-circle edges bulge poleward from the parallel by a fraction of a km2
    assert area == pytest.approx(ONE_DEGREE_AT_EQUATOR, rel=1e-4)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_one_degree_pixel_at_60_north(method):
    expected = R**2 * math.radians(1.0) * (math.sin(math.radians(61)) - math.sin(math.radians(60)))
    assert pixel_area_km2([60, 60, 61, 61], [10, 11, 11, 10], method=method) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_pixel_crossing_the_antimeridian(method):
    reference = pixel_area_km2([-20, -20, -19, -19], [10, 11, 11, 10], method=method)
    wrapped = pixel_area_km2([-20, -20, -19, -19], [179.5, -179.5, -179.5, 179.5], method=method)
    unwrapped = pixel_area_km2([-20, -20, -19, -19], [179.5, 180.5, 180.5, 179.5], method=method)
    assert wrapped == pytest.approx(reference, rel=1e-9)
    assert unwrapped == pytest.approx(reference, rel=1e-9)
    expected = R**2 * math.radians(1.0) * (math.sin(math.radians(-19)) - math.sin(math.radians(-20)))
    assert wrapped == pytest.approx(expected, rel=1e-4)


def test_area_does_not_depend_on_orientation_and_nan_corners_give_nan():
    anticlockwise = pixel_area_km2([0, 0, 1, 1], [0, 1, 1, 0])
    clockwise = pixel_area_km2([0, 1, 1, 0], [0, 0, 1, 1])
    assert clockwise == pytest.approx(anticlockwise)
    assert np.isnan(pixel_area_km2([0, 0, np.nan, 1], [0, 1, 1, 0]))


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_global_grid_tiles_the_sphere(method):
    # 2-degree cells from pole to pole, corners in (..., 4): their great-circle quads tile the sphere exactly
    lat = np.arange(-90.0, 90.0, 2.0)
    lon = np.arange(-180.0, 180.0, 2.0)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    lat_b = np.stack([la, la, la + 2, la + 2], axis=-1)
    lon_b = np.stack([lo, lo + 2, lo + 2, lo], axis=-1)
    areas = pixel_area_km2(lat_b, lon_b, method=method)
    assert areas.shape == la.shape
    assert areas.sum() == pytest.approx(4 * math.pi * R**2, rel=1e-9)


def test_exact_path_in_chunks_matches_one_go(monkeypatch):
    rng = np.random.default_rng(3)
    lat0 = rng.uniform(-70, 70, 1000)
    lon0 = rng.uniform(-180, 180, 1000)
    lat_b = np.stack([lat0, lat0, lat0 + 0.05, lat0 + 0.05], axis=-1)
    lon_b = np.stack([lon0, lon0 + 0.03, lon0 + 0.03, lon0], axis=-1)
    whole = pixel_area_km2(lat_b, lon_b)
    monkeypatch.setattr(geodesy, "_AREA_CHUNK", 64)
    np.testing.assert_array_equal(pixel_area_km2(lat_b, lon_b), whole)
    # the fast path agrees on pixels of a few km to far better than 0.01 %
    np.testing.assert_allclose(pixel_area_km2(lat_b, lon_b, method="fast"), whole, rtol=1e-5)


def test_pixel_area_rejects_wrong_shapes_and_methods():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        pixel_area_km2([0, 0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="unknown pixel area method 'flat'"):
        pixel_area_km2([0, 0, 1, 1], [0, 1, 1, 0], method="flat")


def test_spherical_cap_area():
    assert spherical_cap_area_km2(100.0) == pytest.approx(math.pi * 100.0**2, rel=1e-4)
    assert spherical_cap_area_km2(math.pi * R / 2) == pytest.approx(2 * math.pi * R**2)
    assert spherical_cap_area_km2(math.pi * R) == pytest.approx(4 * math.pi * R**2)


def test_corners_from_centres_of_a_regular_grid():
    lat_edges = np.arange(10.0, 10.5001, 0.05)
    lon_edges = np.arange(20.0, 20.6001, 0.03)
    lat_c = (lat_edges[:-1] + lat_edges[1:]) / 2
    lon_c = (lon_edges[:-1] + lon_edges[1:]) / 2
    la, lo = np.meshgrid(lat_c, lon_c, indexing="ij")
    lat_b, lon_b = corners_from_centres(la, lo)
    assert lat_b.shape == la.shape + (4,)
    np.testing.assert_allclose(lat_b[..., 0], np.meshgrid(lat_edges[:-1], lon_c, indexing="ij")[0], atol=1e-4)
    np.testing.assert_allclose(lon_b[..., 2], np.meshgrid(lat_c, lon_edges[1:], indexing="ij")[1], atol=1e-4)
    expected = R**2 * math.radians(0.03) * (np.sin(np.radians(la + 0.025)) - np.sin(np.radians(la - 0.025)))
    np.testing.assert_allclose(pixel_area_km2(lat_b, lon_b), expected, rtol=1e-3)


def test_corners_from_centres_across_the_antimeridian():
    lon_c = np.array([179.85, 179.95, -179.95, -179.85])
    la, lo = np.meshgrid([0.05, 0.15, 0.25], lon_c, indexing="ij")
    lat_b, lon_b = corners_from_centres(la, lo)
    areas = pixel_area_km2(lat_b, lon_b)
    np.testing.assert_allclose(areas, R**2 * math.radians(0.1) * math.radians(0.1), rtol=1e-3)


def test_destination_is_the_inverse_of_the_distance():
    one_degree = math.pi * R / 180.0
    lat, lon = geodesy.destination(0.0, 0.0, 90.0, one_degree)
    assert (lat, lon) == pytest.approx((0.0, 1.0), abs=1e-9)
    lat, lon = geodesy.destination(0.0, 179.5, 90.0, one_degree)  # across the antimeridian
    assert (lat, lon) == pytest.approx((0.0, -179.5), abs=1e-9)
    bearings = np.arange(0.0, 360.0, 15.0)
    lat, lon = geodesy.destination(37.748, 15.0, bearings, 100.0)  # a dashed 100 km circle around Etna
    np.testing.assert_allclose(great_circle_distance_km(37.748, 15.0, lat, lon), 100.0, rtol=1e-9)
