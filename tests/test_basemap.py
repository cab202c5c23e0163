import numpy as np
import pytest
import shapely

from app.data import basemap
from app.data.basemap import (
    SCALES,
    border_lines,
    border_paths,
    coastline_lines,
    coastline_paths,
    crop_lines,
    land_grid,
    land_mask,
    land_polygons,
    split_at_antimeridian,
    wrap_longitude,
)
from app.data.errors import UserInputError

LINE_SETS = [(f.__name__, scale) for f in (coastline_lines, border_lines) for scale in SCALES]


def _lines(name, scale):
    return getattr(basemap, name)(scale)


def _segments(lon, lat):
    """Start and end points of every drawn segment (both ends finite)."""
    ok = np.isfinite(lon[:-1]) & np.isfinite(lon[1:])
    return lon[:-1][ok], lat[:-1][ok], lon[1:][ok], lat[1:][ok]


@pytest.mark.parametrize("name, scale", LINE_SETS)
def test_lines_are_nan_separated_float32_in_range(name, scale):
    lon, lat = _lines(name, scale)
    assert lon.dtype == lat.dtype == np.float32
    assert lon.shape == lat.shape
    assert np.array_equal(np.isnan(lon), np.isnan(lat))
    assert np.isfinite(lon[[0, -1]]).all()  # no separator at the ends
    separators = np.isnan(lon)
    assert not (separators[:-1] & separators[1:]).any()  # one NaN between lines
    assert separators.sum() > 100
    assert np.nanmin(lon) >= -180 and np.nanmax(lon) <= 180
    assert np.nanmin(lat) >= -90 and np.nanmax(lat) <= 90
    assert not lon.flags.writeable  # cached arrays are shared


@pytest.mark.parametrize("name, scale", LINE_SETS)
def test_no_segment_crosses_the_map(name, scale):
    x0, y0, x1, y1 = _segments(*_lines(name, scale))
    assert np.abs(x1 - x0).max() < 180
    assert np.abs(x1 - x0).max() < 15  # the longest real segment is ~9° (110 m, Antarctica)


@pytest.mark.parametrize("scale", SCALES)
def test_no_artificial_edges_along_the_antimeridian_or_pole(scale):
    lon, lat = coastline_lines(scale)
    x0, y0, x1, y1 = _segments(lon, lat)
    along_edge = (np.abs(x0) == 180) & (x0 == x1)
    assert not along_edge.any()
    assert np.nanmin(lat) > -86  # Antarctica's coast, never the -90 closing edge
    # Antarctica's coast runs all the way round: it reaches both map edges
    south = lat < -60
    assert np.nanmin(lon[south]) == -180 and np.nanmax(lon[south]) == 180


def test_coastline_has_known_coasts():
    lon, lat = coastline_lines("50m")
    for place, (plat, plon) in {"Cape Town": (-33.92, 18.42), "Brest": (48.39, -4.49)}.items():
        distance = np.nanmin(np.hypot(lon - plon, lat - plat))
        assert distance < 0.2, place
    # St Vincent (La Soufrière's island) is drawn at 50 m
    near = (np.abs(lon + 61.2) < 0.15) & (np.abs(lat - 13.25) < 0.15)
    assert near.sum() >= 5


def test_borders_are_land_borders_only():
    lon, lat = border_lines("50m")
    # France-Spain border crosses the Pyrenees near 42.5N 1.5E (Andorra); none in mid-Atlantic
    assert np.nanmin(np.hypot(lon - 1.5, lat - 42.5)) < 0.3
    assert not ((np.abs(lon + 40) < 10) & (np.abs(lat - 30) < 10)).any()


def test_unknown_scale():
    with pytest.raises(UserInputError, match="Unknown basemap scale '10m'; choose one of 50m, 110m"):
        coastline_lines("10m")


@pytest.mark.parametrize("scale", SCALES)
def test_land_and_sea_points(scale):
    points = {
        "Paris": (48.85, 2.35, True),
        "Sahara": (23.0, 10.0, True),
        "Siberia": (62.0, 100.0, True),
        "Antarctic plateau": (-80.0, 100.0, True),
        "South Pole": (-89.99, 0.0, True),
        "Chukotka west of 180": (66.0, 175.0, True),
        "Chukotka east of 180": (66.0, -175.0, True),
        "mid-Atlantic": (30.0, -40.0, False),
        "central Pacific": (0.0, -150.0, False),
        "Caspian Sea": (42.0, 50.5, False),
        "Arctic Ocean": (89.0, 0.0, False),
    }
    lat = [p[0] for p in points.values()]
    lon = [p[1] for p in points.values()]
    expected = [p[2] for p in points.values()]
    assert dict(zip(points, land_mask(lat, lon, scale), strict=True)) == dict(zip(points, expected, strict=True))


def test_small_islands_at_50m():
    assert land_mask(13.25, -61.19)  # St Vincent
    assert land_mask(-21.1, 55.5)  # La Réunion
    assert land_mask(-17.8, 178.0)  # Viti Levu, Fiji
    assert not land_mask(13.25, -61.19, scale="110m")  # too small for 1:110m


def test_land_mask_shapes_wrapping_and_nan():
    assert land_mask(np.zeros((2, 3)), 0.0).shape == (2, 3)
    assert land_mask(48.85, 2.35 + 360.0) and land_mask(48.85, 2.35 - 720.0)
    result = land_mask(np.array([np.nan, 48.85, 90.0, -90.0]), np.array([2.35, np.nan, 0.0, 0.0]))
    assert result.tolist() == [False, False, False, True]


def test_land_grid_matches_the_polygons():
    """Cell centres of the rasterised grid agree with an exact point-in-polygon test."""
    lon, lat, exterior = land_polygons("110m")
    breaks = np.flatnonzero(np.isnan(lon))
    rings = [np.column_stack(p) for p in zip(np.split(lon, breaks), np.split(lat, breaks), strict=True)]
    rings = [r[np.isfinite(r[:, 0])] for r in rings]
    assert len(rings) == exterior.size
    polygons = []
    for ring, is_exterior in zip(rings, exterior, strict=True):
        if is_exterior:
            polygons.append([ring])
        else:
            polygons[-1].append(ring)
    land = shapely.union_all([shapely.Polygon(p[0], p[1:]) for p in polygons])
    grid = land_grid("110m")
    assert grid.shape == (1800, 3600)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 1800, 4000), rng.integers(0, 3600, 4000)
    centres = shapely.points(-180 + (cols + 0.5) * 0.1, -90 + (rows + 0.5) * 0.1)
    exact = shapely.contains(land, centres)
    assert 0.25 < exact.mean() < 0.45
    assert (grid[rows, cols] == exact).all()


def test_pacific_centred_paths():
    [xy] = coastline_paths("50m", central_longitude=180)
    lon, lat = xy[:, 0], xy[:, 1]
    assert xy.dtype == np.float32
    assert np.nanmin(lon) >= 0 and np.nanmax(lon) < 360
    x0, _, x1, _ = _segments(lon, lat)
    assert np.abs(x1 - x0).max() < 15
    # lines that crossed Greenwich are cut there: they end on 0 and 360 at the same latitude
    assert (lon == 0).sum() >= 5 and (lon == np.nextafter(np.float32(360), np.float32(0))).sum() >= 5
    # Fiji (178E..-180..-179E) is whole around 180
    fiji = (lon > 176) & (lon < 182) & (lat > -19.5) & (lat < -15.5)
    assert fiji.sum() > 20


def test_cropped_paths_stay_in_the_box():
    [xy] = coastline_paths("50m", lon_range=(170, 190), lat_range=(-25, -10), central_longitude=180)
    lon, lat = xy[:, 0], xy[:, 1]
    # at most one point beyond the box at each line end, so one segment's length outside
    assert np.nanmin(lon) > 169 and np.nanmax(lon) < 191
    assert np.nanmin(lat) > -26 and np.nanmax(lat) < -9
    assert coastline_paths("110m", lon_range=(-40, -39), lat_range=(30, 31)) == []
    [borders] = border_paths("110m", lon_range=(-10, 30), lat_range=(35, 60))
    assert np.isnan(borders[:, 0]).sum() > 10


def test_default_paths_are_the_stored_lines():
    [xy] = coastline_paths("110m")
    lon, lat = coastline_lines("110m")
    assert np.array_equal(xy[:, 0], lon, equal_nan=True)
    assert np.array_equal(xy[:, 1], lat, equal_nan=True)


def test_one_holoviews_path_element():
    hv = pytest.importorskip("holoviews")
    path = hv.Path(coastline_paths("110m"))
    assert len(path.data) == 1
    assert len(path.dimension_values(0)) == len(coastline_lines("110m")[0])


def test_split_at_antimeridian_interpolates_the_crossing():
    lon, lat = split_at_antimeridian(np.array([170.0, -170.0, -160.0]), np.array([0.0, 10.0, 10.0]))
    assert lon[:2].tolist() == [170.0, 180.0] and lat[1] == pytest.approx(5.0)
    assert np.isnan(lon[2])
    assert lon[3:].tolist() == [-180.0, -170.0, -160.0] and lat[3] == pytest.approx(5.0)
    # wrapped for a Pacific-centred map, the same line crosses nothing
    wrapped = wrap_longitude([170.0, -170.0, -160.0], 180)
    assert wrapped.tolist() == [170.0, 190.0, 200.0]
    same, _ = split_at_antimeridian(wrapped, [0.0, 10.0, 10.0], 180)
    assert same.tolist() == [170.0, 190.0, 200.0]


def test_crop_lines_splits_lines_leaving_the_box():
    lon = np.array([0.0, 1, 2, 3, 4, 5, 6, np.nan, 20, 21])
    lat = np.zeros_like(lon)
    out, _ = crop_lines(lon, lat, lon_range=(0.5, 1.5))
    assert out.tolist() == [0.0, 1.0, 2.0]
    out, _ = crop_lines(lon, lat, lon_range=(0.5, 5.5), lat_range=(-1, 1))
    assert out.tolist() == [0.0, 1, 2, 3, 4, 5, 6]


def test_install_cartopy_shapefiles(tmp_path, monkeypatch):
    cartopy = pytest.importorskip("cartopy")
    import cartopy.feature as cfeature

    written = basemap.install_cartopy_shapefiles(tmp_path, scales=("110m",))
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == [
        "shapefiles/natural_earth/cultural/ne_110m_admin_0_boundary_lines_land.shp",
        "shapefiles/natural_earth/physical/ne_110m_coastline.shp",
        "shapefiles/natural_earth/physical/ne_110m_land.shp",
    ]
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", tmp_path)
    monkeypatch.setitem(cartopy.config, "data_dir", tmp_path / "no-downloads")
    coast = list(cfeature.COASTLINE.with_scale("110m").geometries())
    assert len(coast) > 100
    cape_town = shapely.Point(18.42, -33.92)
    assert min(line.distance(cape_town) for line in coast) < 0.5
    land = shapely.union_all(list(cfeature.LAND.with_scale("110m").geometries()))
    assert land.contains(shapely.Point(2.35, 48.85)) and not land.contains(shapely.Point(-40, 30))
    assert land.contains(shapely.Point(0, -89.5))  # Antarctica closed over the pole
    borders = list(cfeature.BORDERS.with_scale("110m").geometries())
    assert len(borders) > 100
    assert not (tmp_path / "no-downloads").exists()
