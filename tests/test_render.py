"""Render layer: colour maps, map overlays, the CALIOP curtain and the PNG export."""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from app.render import colormaps as cm
from app.render import overlays
from app.render.curtain import (
    aggregate_curtain,
    altitude_edges,
    curtain_image,
    depolarization_ratio,
    profile_at,
    regrid_altitude,
    tick_label,
)
from app.render.export import map_figure, map_png
from app.render.overlays import (
    auto_scale,
    borders,
    circle_lines,
    coastlines,
    credits_text,
    orbit_time_labels,
    time_label_positions,
    track_lines,
    track_path,
    volcano_circles,
    volcano_points,
)
from app.science.geodesy import destination, great_circle_distance_km

hv.extension("bokeh")


def _rgb(colour: str) -> np.ndarray:
    return np.array(cm.hex_to_rgb(colour))


# ------------------------------------------------------------------------------------------------ colour maps


def test_so2_map_runs_light_to_dark():
    assert len(cm.SO2) == 256
    lum = np.array([cm.relative_luminance(c) for c in cm.SO2])
    assert lum[0] > 0.85
    assert lum[-1] < 0.25
    assert lum[-1] > 0.0  # dark brown, not black
    # monotonic-ish: never brighter than 0.02 above any earlier colour, and each quarter darker than the last
    assert np.all(np.diff(np.maximum.accumulate(lum[::-1])[::-1]) <= 1e-9)
    assert np.all(lum - np.minimum.accumulate(lum) <= 0.02)
    quarters = lum.reshape(4, 64).mean(axis=1)
    assert np.all(np.diff(quarters) < 0)
    r, g, b = _rgb(cm.SO2[0])
    assert r > 0.95 and g > 0.9 and b < r  # pale yellow, not white
    r, g, b = _rgb(cm.SO2[-1])
    assert r > g and r > b  # a dark red-brown


def test_caliop_scale_data():
    bounds = np.array(cm.CALIOP_532_BOUNDS)
    assert bounds.size == 34 and len(cm.CALIOP_532_COLOURS) == 33
    np.testing.assert_allclose(bounds[:9], np.arange(1, 10) * 1e-4)
    np.testing.assert_allclose(bounds[9:24], 1e-3 + np.arange(15) * 5e-4)
    np.testing.assert_allclose(bounds[24:], np.arange(1, 11) * 0.01)
    assert len(cm.CALIOP_532.palette) == len(bounds) + 1 == cm.CALIOP_532.n_colours


def test_caliop_bin_index_boundaries():
    b = cm.CALIOP_532_BOUNDS
    idx = cm.bin_index([-1e-3, 0.0, 0.99e-4, b[0], 1.5e-4, b[1], 9.99e-4, 1e-3, 1.5e-3, 0.1, 0.5, np.nan])
    np.testing.assert_array_equal(idx[:-1], [0, 0, 0, 1, 1, 2, 9, 10, 11, 34, 34])
    assert np.isnan(idx[-1])
    # every bound starts its own bin
    np.testing.assert_array_equal(cm.bin_index(np.array(b)), np.arange(1, 35))


def test_caliop_colours_tell_clear_air_aerosol_and_cloud():
    blue = _rgb(cm.colour_of(3e-4)[0])  # clear air aloft
    assert blue[2] > blue[0] + 0.3
    near_ground = _rgb(cm.colour_of(1.2e-3)[0])  # attenuated molecular backscatter near the surface
    assert near_ground[1] > near_ground[0]  # green: no aerosol yet
    aerosol = _rgb(cm.colour_of(4.8e-3)[0])
    assert aerosol[0] > 0.8 and aerosol[2] < 0.3  # red
    cloud = _rgb(cm.colour_of(0.05)[0])
    assert cloud.min() > 0.85 and np.ptp(cloud) < 0.02  # light grey to white
    assert cm.colour_of(np.nan)[0] == cm.CALIOP_532.bad
    assert cm.colour_of(0.5)[0] == "#ffffff"


def test_caliop_colorbar_ticks_label_bounds():
    ticks, labels = cm.colorbar_ticks(cm.CALIOP_532)
    assert ticks == list(range(1, 35))
    assert labels[1] == "1e-4" and labels[10] == "1e-3" and labels[34] == "0.1"
    assert labels[2] == ""  # 2e-4: a tick without a label
    mapper = cm.color_mapper(cm.CALIOP_532)
    assert (mapper.low, mapper.high, len(mapper.palette)) == (0, 35, 35)
    depol = cm.color_mapper(cm.DEPOLARIZATION)
    assert (depol.low, depol.high) == (0.0, 0.6)
    assert cm.scale_for("attenuated_backscatter_1064") is cm.CALIOP_1064
    with pytest.raises(ValueError, match="no colour scale"):
        cm.scale_for("ozone")


# ------------------------------------------------------------------------------------------------ overlays


def test_destination_inverts_distance():
    lat, lon = destination(-20.54, -175.38, np.arange(0, 360, 30), 1234.5)
    np.testing.assert_allclose(great_circle_distance_km(-20.54, -175.38, lat, lon), 1234.5, rtol=1e-9)
    assert np.all((lon >= -180) & (lon < 180))


def test_volcano_circles_radius_and_antimeridian():
    xy = circle_lines(13.33, -61.18, [100.0])
    assert not np.isnan(xy).any()
    d = great_circle_distance_km(13.33, -61.18, xy[:, 1], xy[:, 0])
    assert np.all(np.abs(d - 100.0) < 0.5)
    # Hunga Tonga in the Pacific frame: continuous, around 184.6°
    xy = circle_lines(-20.54, -175.38, [100.0, 500.0], central_longitude=180)
    for part in np.split(xy, np.flatnonzero(np.isnan(xy[:, 0]))):
        part = part[np.isfinite(part[:, 0])]
        assert np.abs(np.diff(part[:, 0])).max() < 10
    assert 175 < np.nanmin(xy[:, 0]) and np.nanmax(xy[:, 0]) < 195  # one copy, around 184.6°
    # In the Atlantic frame the same circle crosses the edge: drawn on both sides, each piece continuous
    xy = circle_lines(-20.54, -175.38, [500.0], central_longitude=0)
    pieces = [p[np.isfinite(p[:, 0])] for p in np.split(xy, np.flatnonzero(np.isnan(xy[:, 0])))]
    assert len(pieces) == 2
    for part in pieces:
        assert np.abs(np.diff(part[:, 0])).max() < 10
    path = volcano_circles(-20.54, -175.38, [100, 250], central_longitude=180)
    assert isinstance(path, hv.Path)
    opts = hv.Store.lookup_options("bokeh", path, "style").kwargs
    assert opts["line_dash"] == "dashed" and opts["color"] == "black"


def test_coastlines_caribbean_contain_barbados():
    assert auto_scale((-70, -50)) == "50m" and auto_scale((-180, 180)) == "110m"
    path = coastlines(None, (-65, -55), (10, 16))
    lon, lat = path.dimension_values(0), path.dimension_values(1)
    ok = np.isfinite(lon)
    near = (np.abs(lon[ok] - (-59.55)) < 0.3) & (np.abs(lat[ok] - 13.17) < 0.3)
    assert near.sum() >= 3
    pacific = coastlines("110m", (150, 210), (-30, 0), central_longitude=180)
    plon = pacific.dimension_values(0)
    assert np.nanmin(plon) >= 149 and np.nanmax(plon) <= 211
    assert isinstance(borders(None, (-80, -50), (-10, 15)), hv.Path)


def test_volcano_points_hover_and_frame():
    table = pd.DataFrame(
        {
            "number": [243040, 360150],
            "name": ["Hunga Tonga-Hunga Ha'apai", "Soufrière St. Vincent"],
            "country": ["Tonga", "Saint Vincent and the Grenadines"],
            "type": ["Submarine", "Stratovolcano"],
            "last_eruption": ["2022 CE", "2021 CE"],
            "latitude": [-20.536, 13.33],
            "longitude": [-175.382, -61.18],
            "elevation_m": [114.0, 1220.0],
        }
    )
    pts = volcano_points(table, central_longitude=180)
    assert [d.name for d in pts.vdims] == ["name", "country", "elevation_m", "last_eruption", "number"]
    np.testing.assert_allclose(pts.dimension_values("longitude"), [184.618, 298.82], atol=1e-6)
    plot = hv.render(pts)
    hover = [t for t in plot.tools if type(t).__name__ == "HoverTool"]
    fields = " ".join(v for t in hover for _, v in t.tooltips)
    for field in ("@name", "@country", "@elevation_m", "@last_eruption"):
        assert field in fields
    assert plot.renderers[0].glyph.marker == "triangle"


def _orbit(lon0: float, t0: str, minutes: float = 50.0):
    t = np.datetime64(t0) + np.arange(0, int(minutes * 60), 5).astype("timedelta64[s]")
    frac = np.linspace(0, 1, t.size)
    lat = -80 + 160 * frac
    lon = lon0 - 25 * frac
    return lon, lat, t


def test_time_labels_fall_inside_the_view():
    orbits = [_orbit(-50, "2021-04-12T16:30:00"), _orbit(-45, "2021-04-12T18:10:00")]
    x_range, y_range = (-70, -50), (5, 20)
    df = time_label_positions(orbits, x_range, y_range)
    assert len(df) >= 2
    assert df["x"].between(*x_range).all() and df["y"].between(*y_range).all()
    assert set(df["orbit"]) == {0, 1}
    assert df.groupby("orbit").size().max() <= 5
    assert all(len(t) == 5 and t[2] == ":" for t in df["text"])
    # a whole-orbit world view: a few labels per orbit, every 10 or 15 min or so
    world = time_label_positions(orbits, (-180, 180), (-90, 90))
    assert 2 <= world.groupby("orbit").size().min() and world.groupby("orbit").size().max() <= 6
    labels = orbit_time_labels(orbits, x_range, y_range, every_minutes=1)
    assert isinstance(labels, hv.Labels) and len(labels) >= len(df)


def test_time_labels_near_the_right_edge_end_at_their_point_so_they_are_not_cut():
    orbits = [_orbit(-50, "2021-04-12T16:30:00")]
    x_range, y_range = (-70, -52.0), (-60, 60)  # the track runs from the right edge inwards
    labels = orbit_time_labels(orbits, x_range, y_range, every_minutes=1)
    x, align = labels.dimension_values("x"), labels.dimension_values("align")
    edge = -70 + 0.88 * 18.0
    assert (x > edge).any() and (x <= edge).any()
    assert set(align[x > edge]) == {"right"} and set(align[x <= edge]) == {"left"}
    plot = hv.render(labels)
    glyph = plot.renderers[-1].glyph
    assert glyph.text_align == {"field": "text_align"} or getattr(glyph.text_align, "field", None) == "text_align"
    assert list(plot.renderers[-1].data_source.data["text_align"]) == list(align)
    empty = hv.render(overlays.empty_time_labels())  # same columns, so a view's labels can go to none and back
    assert list(empty.renderers[-1].data_source.data["text_align"]) == []


def test_time_labels_from_a_swath_across_the_antimeridian():
    lon, lat, t = _orbit(190, "2022-01-15T01:00:00")
    swath_lon = ((lon[:, None] + np.linspace(-10, 10, 9)) + 180) % 360 - 180  # stored in [-180, 180)
    swath_lat = np.repeat(lat[:, None], 9, axis=1)
    df = time_label_positions([(swath_lon, swath_lat, t)], (150, 210), (-30, 0))
    assert len(df) >= 1 and df["x"].between(150, 210).all()


def test_track_path_splits_at_frame_edge():
    lon = np.linspace(170, 190, 200)
    lon = (lon + 180) % 360 - 180
    lat = np.linspace(-10, 10, 200)
    xy = track_lines(lon, lat, central_longitude=0)
    assert np.isnan(xy[:, 0]).sum() == 1
    assert np.nanmax(xy[:, 0]) == pytest.approx(180.0) and np.nanmin(xy[:, 0]) == pytest.approx(-180.0)
    pieces = np.split(xy, np.flatnonzero(np.isnan(xy[:, 0])))
    assert all(np.abs(np.diff(p[np.isfinite(p[:, 0]), 0])).max() < 1 for p in pieces)
    pacific = track_lines(lon, lat, central_longitude=180)
    assert not np.isnan(pacific).any()
    long = track_lines(np.linspace(-60, -50, 56_000), np.linspace(0, 30, 56_000))
    assert len(long) <= 4001 and long[-1, 1] == 30
    assert isinstance(track_path(lon, lat), hv.Path)


def test_credits():
    assert credits_text() == "ESA–Copernicus (TROPOMI), NASA/CNES (CALIOP), GVP (volcanoes), Natural Earth"
    assert credits_text(caliop=False) == "ESA–Copernicus (TROPOMI), GVP (volcanoes), Natural Earth"


# ------------------------------------------------------------------------------------------------ curtain


def caliop_altitudes() -> np.ndarray:
    """The 583 CALIOP L1B bin altitudes (km), top first, per FORMATS.md."""
    regions = [(33, 0.300, 39.86), (55, 0.180, 30.02), (200, 0.060, 20.19), (290, 0.030, 8.21), (5, 0.300, -0.62)]
    return np.concatenate([top - step * np.arange(n) for n, step, top in regions]).astype(np.float32)


def synthetic_curtain(n_profiles: int = 3000, layer_km: float = 12.0) -> xr.Dataset:
    alt = caliop_altitudes().astype(np.float64)
    rng = np.random.default_rng(1)
    molecular = 1.5e-3 * np.exp(-np.clip(alt, 0, None) / 8.0)
    total = np.tile(molecular, (n_profiles, 1)) * (1 + 0.05 * rng.standard_normal((n_profiles, alt.size)))
    layer = 6e-3 * np.exp(-0.5 * ((alt - layer_km) / 0.15) ** 2)
    total += layer
    total[:, alt < 0] = np.nan
    perp = total * 0.1
    perp += 0.3 * layer  # a depolarising layer
    t = np.datetime64("2021-04-12T17:40:00", "ns") + (np.arange(n_profiles) * 0.7446e9).astype("timedelta64[ns]")
    return xr.Dataset(
        {
            "total_attenuated_backscatter_532": (("profile", "altitude"), total.astype(np.float32)),
            "perpendicular_attenuated_backscatter_532": (("profile", "altitude"), perp.astype(np.float32)),
        },
        coords={
            "latitude": ("profile", np.linspace(5, 25, n_profiles).astype(np.float32)),
            "longitude": ("profile", np.linspace(-58, -62, n_profiles).astype(np.float32)),
            "time": ("profile", t),
            "altitude": ("altitude", alt.astype(np.float32)),
        },
        attrs={"platform": "CALIPSO", "product": "CALIOP_L1B"},
    )


def test_caliop_altitudes_as_in_formats():
    alt = caliop_altitudes()
    assert alt.size == 583
    expected = [39.86, 30.26, 30.02, 20.30, 20.19, 8.25, 8.21, -0.46, -0.62, -1.82]
    np.testing.assert_allclose(alt[[0, 32, 33, 87, 88, 287, 288, 577, 578, 582]], expected, atol=0.011)
    edges = altitude_edges(alt)
    assert edges.size == 584 and np.all(np.diff(edges) > 0)


def test_regrid_conserves_a_uniform_field_and_weights_overlaps():
    alt = caliop_altitudes()
    out, centres = regrid_altitude(np.ones((2, alt.size)), alt, (0, 30), 300)
    np.testing.assert_allclose(out, 1.0)
    np.testing.assert_allclose(centres[[0, -1]], [0.05, 29.95])
    # values equal to the altitude: each row's mean is its centre
    out, centres = regrid_altitude(alt[None, :].astype(float), alt, (0, 30), 150)
    np.testing.assert_allclose(out[0], centres, atol=0.03)


def test_curtain_image_keeps_the_layer_height():
    curtain = synthetic_curtain()
    image = curtain_image(curtain, "total_attenuated_backscatter_532", alt_range_km=(0, 30), width=400, height=300)
    values = image.dimension_values("value", flat=False)  # (rows going up, columns)
    alts = image.dimension_values("altitude", expanded=False)
    assert values.shape == (300, 400)
    peak = alts[np.nanargmax(np.nanmean(values, axis=1))]
    assert abs(peak - 12.0) <= 0.2
    idx = image.dimension_values("colour_bin", flat=False)
    np.testing.assert_array_equal(idx, cm.bin_index(values))
    # the plot: palette over bin indices, colour bar ticks labelled with bounds, x ticks with time and place
    plot = hv.render(image)
    mapper = plot.renderers[0].glyph.color_mapper
    assert len(mapper.palette) == 35 and (mapper.low, mapper.high) == (0, 35)
    bar = plot.right[0]
    assert bar.major_label_overrides[10] == "1e-3"
    assert "km⁻¹ sr⁻¹" in bar.title
    xlabels = list(plot.xaxis[0].major_label_overrides.values())
    assert len(xlabels) == 5 and "\n" in xlabels[0] and xlabels[0][2] == ":" and xlabels[0].endswith("W")


def test_curtain_image_depolarization_and_zoom():
    curtain = synthetic_curtain(n_profiles=600)
    image = curtain_image(curtain, "depolarization_ratio_532", width=800, height=200, x_range=(100.0, 160.0))
    values = image.dimension_values("value", flat=False)
    assert values.shape == (200, 61)  # zoomed in: one column per profile, 100 … 160
    alts = image.dimension_values("altitude", expanded=False)
    row = np.argmin(np.abs(alts - 12.0))
    assert np.nanmean(values[row]) > 0.25 and np.nanmean(values[alts > 20]) < 0.15
    ratio = depolarization_ratio(curtain)
    assert ratio.dims == ("profile", "altitude") and float(ratio.max()) > 0.25


def test_aggregate_curtain_conserves_the_mean():
    curtain = synthetic_curtain(n_profiles=10_000)
    var = "total_attenuated_backscatter_532"
    agg = aggregate_curtain(curtain, width=400, variables=[var])
    assert agg.sizes == {"profile": 400, "altitude": 583}
    assert int(agg["profile_count"].sum()) == 10_000
    np.testing.assert_allclose(np.nanmean(agg[var].values), np.nanmean(curtain[var].values), rtol=1e-5)
    # uneven groups: the count-weighted mean of columns is the mean of profiles
    agg = aggregate_curtain(curtain, x_range=(-0.5, 9_999.5), width=333, variables=[var])
    above = curtain["altitude"].values > 0  # below the surface is all NaN
    values = agg[var].values[:, above]
    w = agg["profile_count"].values[:, None] * np.isfinite(values)
    col_mean = np.nansum(values * w, axis=0) / w.sum(axis=0)
    np.testing.assert_allclose(col_mean, np.nanmean(curtain[var].values[:, above], axis=0), rtol=1e-5)
    assert np.all(np.diff(agg["time"].values) > np.timedelta64(0))
    np.testing.assert_allclose(agg["latitude"].values[[0, -1]], [5.0, 25.0], atol=0.1)


def test_profile_at_and_tick_label():
    curtain = synthetic_curtain(n_profiles=100)
    p = profile_at(curtain, 42.4)
    assert p["profile"] == 42
    assert p["latitude"] == pytest.approx(float(curtain.latitude[42]))
    assert p["time"] == curtain.time.values[42]
    assert profile_at(curtain, 1e9)["profile"] == 99
    assert profile_at(curtain, curtain.time.values[7] + np.timedelta64(100, "ms"))["profile"] == 7
    assert profile_at(curtain, pd.Timestamp(curtain.time.values[9]))["profile"] == 9
    assert tick_label(np.datetime64("2021-04-12T12:01:30.4"), 13.21, -58.14) == "12:01:30\n13.2N 58.1W"
    assert tick_label(np.datetime64("2022-01-15T04:00:00"), -20.5, 184.6) == "04:00:00\n20.5S 175.4W"


# ------------------------------------------------------------------------------------------------ PNG export


def _so2_field() -> xr.DataArray:
    x = np.linspace(-70, -50, 400)
    y = np.linspace(5, 20, 300)
    xx, yy = np.meshgrid(x, y)
    v = np.full(xx.shape, 0.5, dtype=np.float32)
    v[(np.abs(xx + 56) < 1.5) & (np.abs(yy - 15) < 1.5)] = 20.0  # a strong plume, far above the range
    v[yy < 8] = np.nan  # no data
    return xr.DataArray(v, dims=("y", "x"), coords={"x": x, "y": y})


def test_map_png_picture():
    agg = _so2_field()
    kwargs = dict(
        clim=(0.2, 5.0),
        cmap=cm.SO2,
        title="TROPOMI SO2 PBL — 2021-04-12",
        subtitle="La Soufrière, St Vincent",
        credits=credits_text(caliop=False),
        colorbar_label="SO2 (DU)",
        volcano=(13.33, -61.18, "Soufrière St. Vincent"),
        radii_km=(100, 250),
        orbit_labels=["#18112: 16:31 → 16:36"],
    )
    png = map_png(agg, **kwargs)
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.size == (1200, 700)
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    fig = map_figure(agg, **kwargs)  # the same layout, to find where lon/lat fall in pixels
    ax = fig.axes[0]

    def pixel(lon, lat):
        px, py = ax.transData.transform((lon, lat))
        return rgb[int(round(700 - py)), int(round(px))]

    dark_end = _rgb(cm.SO2[-1]) * 255
    assert np.abs(pixel(-56.0, 15.0) - dark_end).max() <= 3
    assert pixel(-52.0, 6.5).min() >= 245  # NaN: white background
    title_band = rgb[10:60, 100:600]
    assert (title_band.min(axis=2) < 100).sum() > 200  # the title is written


def test_map_png_pacific_frame_and_no_pyplot():
    x = np.linspace(150, 210, 120)
    y = np.linspace(-35, -5, 60)
    agg = xr.DataArray(np.ones((60, 120), np.float32), dims=("y", "x"), coords={"x": x, "y": y})
    png = map_png(agg, clim=(0, 2), cmap="viridis", title="Hunga Tonga", central_longitude=180,
                  volcano=(-20.54, -175.38, "Hunga Tonga"), radii_km=(500,), dpi=50, size=(8, 5))  # fmt: skip
    assert Image.open(io.BytesIO(png)).size == (400, 250)
    import ast

    import app.render.export as export

    tree = ast.parse(open(export.__file__).read())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any("pyplot" in name for name in imported)
