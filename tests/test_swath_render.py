"""Aggregation of swaths to the screen: continuous longitudes, no smear across ±180°, coarse blocks for wide views."""

import numpy as np
import pytest

from app.render.swath import aggregate, coarsening_factor, continuous_longitude, make_layer


def _swath(lon0, n=400, m=60, dlat=0.05, dlon=0.05, lat0=-10.0):
    lat = lat0 + dlat * np.arange(n)[:, None] + 0 * np.arange(m)[None, :]
    lon = lon0 + dlon * np.arange(m)[None, :] + 0.01 * np.arange(n)[:, None]
    lon = (lon + 180) % 360 - 180
    values = (np.sin(lat / 3.0) + np.cos(lon / 2.0) + 3.0).astype(np.float32)
    time = np.datetime64("2021-04-12T12:00") + np.arange(n).astype("timedelta64[s]")
    return lat, lon, values, time


def test_continuous_longitude_across_the_antimeridian():
    lat, lon, _, _ = _swath(178.5)
    assert np.abs(np.diff(lon, axis=1)).max() > 300  # the raw swath jumps at ±180
    c = continuous_longitude(lon, 0.0)
    assert np.abs(np.diff(c, axis=1)).max() < 0.1
    c180 = continuous_longitude(lon, 180.0)
    assert 0 <= np.median(c180) < 360


@pytest.mark.parametrize("method", ["points", "quadmesh"])
def test_swath_across_180_draws_on_both_edges_without_smear(method):
    lat, lon, v, t = _swath(178.5)
    layer = make_layer(lat, lon, v, t, orbit=1)
    agg = aggregate([layer], (-180, 180), (-90, 90), 720, 360, method=method)
    finite = np.isfinite(agg.values)
    cols = np.flatnonzero(finite.any(axis=0))
    x = agg["x"].values[cols]
    # pixels near +180 and near -180, nothing in between (no smear across the map)
    assert (x > 175).any() and (x < -175).any()
    assert not ((x > -170) & (x < 170)).any()


def test_pacific_frame_keeps_the_swath_in_one_piece():
    lat, lon, v, t = _swath(178.5)
    layer = make_layer(lat, lon, v, t, orbit=1, central_longitude=180.0)
    agg = aggregate([layer], (0, 360), (-90, 90), 720, 360, method="quadmesh")
    x = agg["x"].values[np.isfinite(agg.values).any(axis=0)]
    assert x.min() > 178 and x.max() < 186  # 178.5° plus 3° across and 4° of drift along the swath


def test_coarse_blocks_give_the_same_picture_for_wide_views():
    lat, lon, v, t = _swath(-60.0, n=800, m=120, dlat=0.02, dlon=0.02)
    v[100:120, 30:40] = np.nan  # filtered pixels stay out of the block means
    layer = make_layer(lat, lon, v, t, orbit=1)
    assert coarsening_factor([layer], (-180, 180), 900) >= 4
    fine = aggregate([layer], (-70, -50), (-12, 8), 200, 200, method="points")
    coarse = aggregate([layer.coarse(4)], (-70, -50), (-12, 8), 200, 200, method="points")
    both = np.isfinite(fine.values) & np.isfinite(coarse.values)
    assert both.sum() > 0.8 * np.isfinite(fine.values).sum()
    assert np.nanmax(np.abs(fine.values[both] - coarse.values[both])) < 0.1
    block = layer.coarse(4)
    assert block.values.shape == (200, 30)
    assert float(np.nanmean(block.values)) == pytest.approx(float(np.nanmean(v)), rel=1e-3)


def test_scanlines_without_geolocation_are_stepped_over():
    """Real granules may hold scanlines whose geolocation is fill: they stay NaN, the rest stays continuous."""
    lat, lon, values, time = _swath(178.5)
    lat, lon = lat.copy(), lon.copy()
    lon[:100] = np.nan  # leading rows with fill
    lat[:100] = np.nan
    lon[200:210] = np.nan  # a gap across the antimeridian crossing's rows
    lon[250, 30] = np.nan  # one middle pixel of fill
    out = continuous_longitude(lon, central_longitude=180.0)
    fill = np.isnan(lon)
    assert np.array_equal(np.isnan(out), fill)
    assert np.nanmax(np.abs(np.diff(out, axis=1))) < 1.0 and np.nanmax(np.abs(np.diff(out, axis=0))) < 1.0
    np.testing.assert_allclose(out[~fill], lon[~fill] % 360.0, atol=1e-9)  # the same places, in [0, 360)
    assert 178.0 < np.nanmin(out) and np.nanmax(out) < 190.0  # one frame: 178.5° … 185.5°, no 360° jumps
    layer = make_layer(lat, lon, values, time, orbit=1, central_longitude=180.0)
    assert layer.pixel_deg == pytest.approx(0.05, rel=0.05)
    agg = aggregate([layer], (175.0, 195.0), (-10.0, 15.0), 200, 200)
    assert np.isfinite(agg.values).sum() > 1000
