"""Pixel filters and SO2 mass within radii, on small synthetic Swaths with hand-computed answers."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app.data.errors import UserInputError
from app.science.filters import DEFAULT_FILTERS, Filters, apply_filters, valid_mask
from app.science.geodesy import EARTH_RADIUS_KM, great_circle_distance_km, pixel_area_km2, spherical_cap_area_km2
from app.science.mass import DEFAULT_RADII_KM, MASS_COLUMNS, so2_mass_within_radii, swath_pixel_area_km2
from app.science.units import SO2_KG_PER_DU_KM2

DIMS = ("scanline", "ground_pixel")
ETNA = (37.748, 15.0)


def grid_swath(lat_edges, lon_edges, column_du=0.0, orbit=18112, start="2021-04-12T12:00:00"):
    """A canonical Swath whose pixels are the lat/lon cells between the given edges (scanline = latitude).

    Longitudes are wrapped to [-180, 180) as a reader would give them.
    """
    lat_edges = np.asarray(lat_edges, dtype=float)
    lon_edges = np.asarray(lon_edges, dtype=float)
    la0, lo0 = np.meshgrid(lat_edges[:-1], lon_edges[:-1], indexing="ij")
    la1, lo1 = np.meshgrid(lat_edges[1:], lon_edges[1:], indexing="ij")
    lat_b = np.stack([la0, la0, la1, la1], axis=-1)
    lon_b = (np.stack([lo0, lo1, lo1, lo0], axis=-1) + 180.0) % 360.0 - 180.0
    lat = (la0 + la1) / 2
    lon = ((lo0 + lo1) / 2 + 180.0) % 360.0 - 180.0
    shape = lat.shape
    column = np.broadcast_to(np.asarray(column_du, dtype="float32"), shape).copy()
    times = pd.Timestamp(start) + pd.to_timedelta(np.arange(shape[0]) * 0.84, unit="s")
    return xr.Dataset(
        {
            "so2_7km": (DIMS, column),
            "qa_value": (DIMS, np.ones(shape, "float32")),
            "solar_zenith_angle": (DIMS, np.full(shape, 30.0, "float32")),
        },
        coords={
            "latitude": (DIMS, lat.astype("float32")),
            "longitude": (DIMS, lon.astype("float32")),
            "latitude_bounds": ((*DIMS, "corner"), lat_b.astype("float32")),
            "longitude_bounds": ((*DIMS, "corner"), lon_b.astype("float32")),
            "time": ("scanline", times),
        },
        attrs={"platform": "S5P", "product": "TROPOMI_L2_SO2", "orbit": orbit},
    )


def disk_grid(lat0, lon0, half_km, pixel_km=2.0):
    """Lat/lon edges of a grid of ~pixel_km cells covering a square of half-side half_km around a point."""
    dlat = math.degrees(pixel_km / EARTH_RADIUS_KM)
    dlon = dlat / math.cos(math.radians(lat0))
    n_lat = int(math.ceil(half_km / pixel_km)) + 2
    n_lon = n_lat
    # offset the grid from the volcano by a fraction of a pixel, as real pixels are
    lat_edges = lat0 + (np.arange(-n_lat, n_lat + 1) + 0.31) * dlat
    lon_edges = lon0 + (np.arange(-n_lon, n_lon + 1) + 0.57) * dlon
    return lat_edges, lon_edges


def brute_force(swath, variable, lat0, lon0, radius_km, valid, summed=None):
    """Mass (t), counts and valid area within a radius, pixel by pixel, independent of the cumulative sums."""
    summed = valid if summed is None else summed
    d = great_circle_distance_km(lat0, lon0, swath.latitude.values, swath.longitude.values)
    inside = d <= radius_km
    area = pixel_area_km2(swath.latitude_bounds.values, swath.longitude_bounds.values)
    use = inside & summed
    mass_t = float(np.sum(swath[variable].values[use] * area[use]) * SO2_KG_PER_DU_KM2 / 1000.0)
    return mass_t, int((inside & valid).sum()), int(inside.sum()), float(area[inside & valid].sum())


@pytest.fixture(scope="module")
def etna_uniform():
    lat_edges, lon_edges = disk_grid(*ETNA, half_km=210.0)
    return grid_swath(lat_edges, lon_edges, column_du=10.0)


# --- filters ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def crafted():
    """10 scanlines x 8 ground pixels, column = ground pixel index (DU), with known failures.

    - qa_value 0.3 on scanline 0 (8 pixels)
    - solar_zenith_angle 85 on ground pixel 3 (10 pixels, 1 of them on scanline 0)
    - NaN column at (5, 5)
    """
    swath = grid_swath(np.arange(11) * 0.05, np.arange(9) * 0.05)
    swath["so2_7km"][:] = np.tile(np.arange(8, dtype="float32"), (10, 1))
    swath["so2_7km"][5, 5] = np.nan
    swath["qa_value"][0, :] = 0.3
    swath["solar_zenith_angle"][:, 3] = 85.0
    return swath


def test_filters_change_counts_exactly(crafted):
    count = lambda **f: int(valid_mask(crafted, "so2_7km", **f).sum())  # noqa: E731
    assert count(qa_min=0.0) == 80 - 1  # only the NaN
    assert count() == 80 - 1 - 8  # qa_min 0.5 drops scanline 0
    assert count(sza_max=80.0) == 71 - 9  # ground pixel 3 on scanlines 1-9
    assert count(sza_max=80.0, edge_pixels=1) == 62 - 18  # ground pixels 0 and 7 on scanlines 1-9
    assert count(sza_max=80.0, edge_pixels=2) == 62 - 36  # ground pixels 0, 1, 6, 7 on scanlines 1-9
    assert count(qa_min=0.0, min_du=4.0) == 40 - 1  # ground pixels 4-7, less the NaN
    assert count(qa_min=0.0, edge_pixels=4) == 0
    # QA is strict (qa_value > qa_min, the S5P SO2 recommendation): the scanline at exactly 0.3 goes; SZA inclusive
    assert count(qa_min=0.3) == 79 - 8
    assert count(qa_min=0.2999) == 79
    assert count(qa_min=0.0, sza_max=85.0) == 79


def test_valid_mask_is_a_dataarray_on_the_swath_dims(crafted):
    mask = valid_mask(crafted, "so2_7km", sza_max=80.0, edge_pixels=1)
    assert isinstance(mask, xr.DataArray)
    assert mask.dims == DIMS
    assert mask.dtype == bool
    assert not mask[0].any()  # qa
    assert not mask[:, 3].any()  # sza
    assert not mask[:, [0, 7]].any()  # edges
    assert bool(mask[1, 1]) and not bool(mask[5, 5])


def test_edge_pixels_are_counted_on_a_scanline_window_as_on_the_whole(crafted):
    whole = valid_mask(crafted, "so2_7km", edge_pixels=2)
    window = valid_mask(crafted.isel(scanline=slice(3, 7)), "so2_7km", edge_pixels=2)
    np.testing.assert_array_equal(window.values, whole.values[3:7])


def test_apply_filters_sets_failures_to_nan(crafted):
    column = apply_filters(crafted, "so2_7km", sza_max=80.0)
    assert int(column.notnull().sum()) == 62
    assert np.isnan(column[0, 2]) and np.isnan(column[4, 3])
    assert float(column[4, 2]) == 2.0


def test_missing_inputs_are_named(crafted):
    with pytest.raises(UserInputError, match="'qa_value'"):
        valid_mask(crafted.drop_vars("qa_value"), "so2_7km", qa_min=0.5)
    valid_mask(crafted.drop_vars("qa_value"), "so2_7km", qa_min=0.0)  # not needed then
    with pytest.raises(UserInputError, match="'solar_zenith_angle'"):
        valid_mask(crafted.drop_vars("solar_zenith_angle"), "so2_7km", sza_max=70)
    with pytest.raises(UserInputError, match="'so2_3km'.*so2_7km"):
        valid_mask(crafted, "so2_3km")


def test_filters_value_key_and_dict():
    f = Filters()
    assert f.as_dict() == {"qa_min": 0.5, "sza_max": None, "edge_pixels": 0, "min_du": None}
    assert f.key() == "qa_min=0.5,sza_max=none,edge_pixels=0,min_du=none"
    g = Filters(qa_min=np.float32(0.75), sza_max=80, edge_pixels=np.int64(2), min_du=0)
    assert g.key() == "qa_min=0.75,sza_max=80.0,edge_pixels=2,min_du=0.0"
    assert Filters(qa_min=0.75, sza_max=80.0, edge_pixels=2.0, min_du=0.0) == g
    assert hash(Filters(qa_min=0.75, sza_max=80.0, edge_pixels=2, min_du=0.0)) == hash(g)
    assert Filters.coerce(g.as_dict()) == g
    assert Filters.coerce(None) == DEFAULT_FILTERS == Filters(sza_max=80.0)
    with pytest.raises(AttributeError):
        g.qa_min = 0.1  # frozen


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"qa_min": 1.5}, "qa_min must be between 0 and 1"),
        ({"qa_min": "high"}, "qa_min must be a number"),
        ({"sza_max": -5}, "sza_max must be between 0 and 180"),
        ({"edge_pixels": -1}, "edge_pixels must be a whole number"),
        ({"edge_pixels": 1.5}, "edge_pixels must be a whole number"),
        ({"edge_pixels": True}, "edge_pixels must be a whole number"),
        ({"min_du": float("nan")}, "min_du must be a finite number"),
    ],
)
def test_filters_reject_bad_values_in_sentences(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        Filters(**kwargs)


def test_coerce_names_unknown_filters():
    with pytest.raises(UserInputError, match="unknown filter 'qa'"):
        Filters.coerce({"qa": 0.5})


# --- mass within radii -----------------------------------------------------------------------------------------


def test_science_md_worked_check_uniform_10_du_over_100_km(etna_uniform):
    # 10 DU over a disk of 100 km is 10 x 3.1416e4 km2 x 28.58 kg = 8,980 t; on ~2 km pixels the disk's rim is
    # ragged (pixels are in or out by their centre), which stays within 1 % here.
    table = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [100.0])
    row = table.iloc[0]
    exact = 10.0 * spherical_cap_area_km2(100.0) * SO2_KG_PER_DU_KM2 / 1000.0
    assert exact == pytest.approx(8980.0, rel=1e-3)
    assert row.mass_t == pytest.approx(8980.0, rel=0.01)
    assert row.coverage == pytest.approx(1.0, abs=0.01)
    assert row.n_valid == row.n_pixels > 7000


def test_all_radii_in_one_pass_match_brute_force(etna_uniform):
    swath = etna_uniform.copy(deep=True)
    rng = np.random.default_rng(0)
    swath["so2_7km"][:] = rng.normal(1.0, 2.0, swath["so2_7km"].shape).astype("float32")
    swath["qa_value"][:] = rng.uniform(0.0, 1.0, swath["qa_value"].shape).astype("float32")
    radii = [200.0, 25.0, 50.0, 100.0, 75.0, 150.0]
    table = so2_mass_within_radii(swath, "so2_7km", *ETNA, radii, Filters(qa_min=0.5, min_du=0.0))
    assert list(table.columns) == list(MASS_COLUMNS)
    assert table.radius_km.tolist() == sorted(radii)
    valid = valid_mask(swath, "so2_7km", qa_min=0.5).values
    summed = valid_mask(swath, "so2_7km", qa_min=0.5, min_du=0.0).values
    for row in table.itertuples():
        mass_t, n_valid, n_pixels, area = brute_force(swath, "so2_7km", *ETNA, row.radius_km, valid, summed)
        assert row.mass_t == pytest.approx(mass_t, rel=1e-9)
        assert (row.n_valid, row.n_pixels) == (n_valid, n_pixels)
        assert row.coverage == pytest.approx(min(1.0, area / spherical_cap_area_km2(row.radius_km)), rel=1e-9)
    # half the pixels pass qa >= 0.5, and of those 69 % have a column >= 0 (N(1, 2)) and are summed
    last = table.iloc[-1]
    assert last.coverage == pytest.approx(0.5, abs=0.02)
    assert last.n_summed / last.n_valid == pytest.approx(0.69, abs=0.02)


def test_mass_on_a_scanline_window(etna_uniform):
    whole = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [50.0, 100.0])
    # a window that holds the whole disk gives the same answer
    holds = so2_mass_within_radii(etna_uniform.isel(scanline=slice(40, 180)), "so2_7km", *ETNA, [50.0, 100.0])
    pd.testing.assert_frame_equal(holds.drop(columns="time"), whole.drop(columns="time"))
    # a window that cuts the disk in two counts only its own pixels
    north = etna_uniform.isel(scanline=slice(etna_uniform.sizes["scanline"] // 2, None))
    half = so2_mass_within_radii(north, "so2_7km", *ETNA, [100.0]).iloc[0]
    mass_t, n_valid, n_pixels, _ = brute_force(north, "so2_7km", *ETNA, 100.0, np.ones(north.latitude.shape, bool))
    assert half.mass_t == pytest.approx(mass_t, rel=1e-9)
    assert (half.n_valid, half.n_pixels) == (n_valid, n_pixels)
    assert half.coverage == pytest.approx(0.5, abs=0.02)


def test_coverage_is_one_half_when_half_the_disk_is_valid(etna_uniform):
    swath = etna_uniform.copy(deep=True)
    swath["qa_value"] = swath["qa_value"].where(swath.longitude >= ETNA[1], 0.0)  # west half fails QA
    row = so2_mass_within_radii(swath, "so2_7km", *ETNA, [100.0]).iloc[0]
    # the pixel column on the volcano's meridian, centre 0.07 pixel east of it, goes to the east half: +1 %
    assert row.coverage == pytest.approx(0.5, abs=0.02)
    assert row.mass_t == pytest.approx(8980.0 / 2, rel=0.02)
    assert row.n_valid == pytest.approx(row.n_pixels / 2, rel=0.03)
    # and the mass is exactly that of 10 DU over the covered area
    covered_km2 = row.coverage * spherical_cap_area_km2(100.0)
    assert row.mass_t == pytest.approx(10.0 * covered_km2 * SO2_KG_PER_DU_KM2 / 1000.0, rel=1e-6)


def test_grazing_orbit_reports_low_coverage_not_low_mass():
    # the swath's edge passes 80 km north of the volcano: only a sliver of the 100 km disk is seen
    lat0, lon0 = ETNA
    lat_edges, lon_edges = disk_grid(lat0, lon0, half_km=150.0)
    swath = grid_swath(lat_edges[lat_edges >= lat0 + math.degrees(80.0 / EARTH_RADIUS_KM)], lon_edges, 10.0)
    row = so2_mass_within_radii(swath, "so2_7km", lat0, lon0, [100.0]).iloc[0]
    assert 0.0 < row.coverage < 0.1
    # the mass per covered area is still 10 DU: mass / (coverage x disk area) x ... = 10 DU
    column_du = row.mass_t * 1000.0 / (row.coverage * spherical_cap_area_km2(100.0) * SO2_KG_PER_DU_KM2)
    assert column_du == pytest.approx(10.0, rel=1e-3)


def test_disk_across_the_antimeridian_weighs_the_same():
    # the same uniform field around Hunga Tonga (-20.54, -175.38) and shifted to straddle 180 degrees
    lat0 = -20.54
    edges_lat, edges_lon = disk_grid(lat0, 0.0, half_km=120.0)
    away = grid_swath(edges_lat, edges_lon + 10.0, 10.0)
    across = grid_swath(edges_lat, edges_lon + 179.9, 10.0)
    assert across.longitude.min() < -179 and across.longitude.max() > 179
    a = so2_mass_within_radii(away, "so2_7km", lat0, 10.0, [50.0, 100.0])
    b = so2_mass_within_radii(across, "so2_7km", lat0, 179.9 - 360.0, [50.0, 100.0])
    np.testing.assert_allclose(b.mass_t, a.mass_t, rtol=1e-5)
    np.testing.assert_array_equal(b.n_valid, a.n_valid)
    assert b.mass_t.iloc[1] == pytest.approx(8980.0, rel=0.01)


def test_orbit_time_and_empty_disks(etna_uniform):
    table = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [25.0, 100.0])
    assert table.orbit.dtype == "Int64" and (table.orbit == 18112).all()
    # mean time of the pixels in the largest disk: the scanlines through it are symmetric about the volcano
    d = great_circle_distance_km(*ETNA, etna_uniform.latitude.values, etna_uniform.longitude.values) <= 100.0
    times = np.broadcast_to(etna_uniform.time.values[:, None], d.shape)[d].astype("datetime64[ns]").astype("int64")
    assert abs(table.time.iloc[0] - pd.Timestamp(int(times.mean()))) < pd.Timedelta(1, "us")
    assert table.time.nunique() == 1

    far = so2_mass_within_radii(etna_uniform.drop_vars("time"), "so2_7km", 0.0, 0.0, DEFAULT_RADII_KM[:3])
    assert far.n_pixels.tolist() == [0, 0, 0]
    assert far.mass_t.isna().all() and (far.coverage == 0).all()
    assert far.time.isna().all()

    no_orbit = etna_uniform.copy(deep=True)
    no_orbit.attrs.pop("orbit")
    assert so2_mass_within_radii(no_orbit, "so2_7km", *ETNA, [25.0]).orbit.isna().all()


def test_truncated_clean_sky_is_covered_with_zero_mass(etna_uniform):
    swath = etna_uniform.copy(deep=True)
    swath["so2_7km"][:] = np.random.default_rng(5).normal(0.0, 0.3, swath["so2_7km"].shape).astype("float32")
    row = so2_mass_within_radii(swath, "so2_7km", *ETNA, [100.0], {"min_du": 2.0}).iloc[0]
    assert row.coverage == pytest.approx(1.0, abs=0.01)
    assert row.mass_t == 0.0 and row.n_summed == 0 and row.n_valid == row.n_pixels
    # the mask for maps does drop them
    assert not valid_mask(swath, "so2_7km", min_du=2.0).any()


def test_no_valid_pixel_gives_nan_mass_with_pixel_count(etna_uniform):
    swath = etna_uniform.copy(deep=True)
    swath["qa_value"][:] = 0.1
    row = so2_mass_within_radii(swath, "so2_7km", *ETNA, [50.0]).iloc[0]
    assert np.isnan(row.mass_t) and row.n_valid == 0 and row.n_pixels > 0 and row.coverage == 0.0


def test_swath_without_corners_uses_areas_from_centres(etna_uniform):
    no_corners = etna_uniform.drop_vars(["latitude_bounds", "longitude_bounds"])
    a = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [25.0, 100.0])
    b = so2_mass_within_radii(no_corners, "so2_7km", *ETNA, [25.0, 100.0])
    np.testing.assert_allclose(b.mass_t, a.mass_t, rtol=1e-3)
    area = swath_pixel_area_km2(no_corners)
    assert area.dims == DIMS and area.attrs["units"] == "km2"
    assert float(area.mean()) == pytest.approx(4.0, rel=0.01)  # 2 km x 2 km cells


def test_fast_areas_agree(etna_uniform):
    a = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [100.0])
    b = so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [100.0], area_method="fast")
    assert b.mass_t.iloc[0] == pytest.approx(a.mass_t.iloc[0], rel=1e-5)


def test_bad_inputs_are_named(etna_uniform):
    with pytest.raises(UserInputError, match="radii must be positive"):
        so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [50.0, -1.0])
    with pytest.raises(UserInputError, match="no SO2 column 'so2_3km'"):
        so2_mass_within_radii(etna_uniform, "so2_3km", *ETNA, [50.0])
    with pytest.raises(UserInputError, match="unknown filter 'edges'"):
        so2_mass_within_radii(etna_uniform, "so2_7km", *ETNA, [50.0], filters={"edges": 2})
