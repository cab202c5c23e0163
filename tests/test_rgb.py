"""RGB composites: the recipes against satpy's composites of the same files, and against hand-computed pixels.

Sample slots are written into tmp_path from the ``soufriere-tiny`` scenario: GOES-16 ABI at 16 km (678 × 678) at
2021-04-12 15:00, Himawari-8 AHI at resolution factor 25 (220 × 220, segments of 22 lines) at 03:00, Meteosat-11
SEVIRI at factor 32 (116 × 116) at 15:00 — each disk's centre in daylight.

Satpy 0.60 is the reference: ``Scene.load([composite])`` then ``get_enhanced_image`` give 0–1 floats per band, clipped
here to 0–1 as satpy's image writers clip them. Criterion, on the pixels where both have all three bands: at least
99.9 % of them within 1/255 on every band; every pixel within 1/255 where satpy does not self-sharpen, and where it
does, a pixel off by more must share its 2×2 sharpening block with a pixel only one side has. The NaN masks agree on
≥ 99.9 % of pixels: satpy's AHI reader marks a few limb pixels as space that the file (and our reader) gives values
for (24 of 48,400).

Where satpy's composite cannot run here we check the same pipeline through satpy's own pieces:
- Day Microphysics: satpy's NIRReflectance needs pyspectral (not installed, and it downloads spectral responses at
  run time). Red and blue (sun-zenith-corrected 0.8 µm, the window) and the stretch and gamma of all three bands
  are compared through satpy with our 3.9 µm reflectance as green; the 3.9 µm reflectance itself is checked
  against the scene model's cloud reflectances (thick water cloud 20 %, ice 5 %) and a hand-built pixel.
- SO2 on AHI: satpy has no AHI composite; its DifferenceCompositor / GenericCompositor and its ABI
  ``volcanic_emissions`` enhancement are applied to the AHI bands.
- True and Natural Colour on ABI/AHI: satpy's SelfSharpenedRGB is matched with ``sharpen=True``; our default
  (no sharpening) is compared with satpy's GenericCompositor of the same satpy inputs.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
import xarray as xr
import yaml

from app.data.errors import UserInputError
from app.data.geo_bands import band_for_generic
from app.science import rgb

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

SLOTS = {
    "G16": {"sensor": "abi", "reader": "abi_l1b", "time": dt.datetime(2021, 4, 12, 15, 0)},
    "H08": {"sensor": "ahi", "reader": "ahi_hsd", "time": dt.datetime(2021, 4, 12, 3, 0)},
    "MSG4": {"sensor": "seviri", "reader": "seviri_l1b_nc", "time": dt.datetime(2021, 4, 12, 15, 0)},
}
#: Composites whose satpy composite of the same name is compared (Day Microphysics and AHI SO2 apart).
SATPY_CASES = [
    ("G16", "ash"), ("G16", "dust"), ("G16", "natural_color"), ("G16", "true_color"), ("G16", "so2"),
    ("H08", "ash"), ("H08", "dust"), ("H08", "natural_color"), ("H08", "true_color"),
    ("MSG4", "ash"), ("MSG4", "dust"), ("MSG4", "natural_color"),
]
#: Satpy's inputs of the self-sharpened composites (name, sun-zenith corrected?) in R, G, B order.
SATPY_UNSHARPENED = {
    ("G16", "true_color"): [("C02", False), ("green_nocorr", False), ("C01", False)],
    ("H08", "true_color"): [("B03", False), ("hybrid_green_nocorr", False), ("B01", False)],
    ("G16", "natural_color"): [("C05", True), ("C03", True), ("C02", True)],
    ("H08", "natural_color"): [("B05", True), ("B04", True), ("B03", True)],
}
#: Day Microphysics through satpy: red (name, sun-zenith corrected?), the 3.9 µm band, blue.
SATPY_DAY_MICROPHYSICS = {
    "G16": (("C03", True), "C07", "C14"),
    "H08": (("B04", False), "B07", "B13"),
    "MSG4": (("VIS008", True), "IR_039", "IR_108"),
}
ONE = 1.0 / 255 + 1e-6


def _write(platform: str, out) -> list[str]:
    from app.sample.scenario import get_scenario

    scenario = get_scenario("soufriere-tiny")
    t = SLOTS[platform]["time"]
    if platform == "G16":
        from app.sample.geo.abi import write_abi_slot

        paths = write_abi_slot(scenario, "G16", np.datetime64(t), out, resolution_km=16.0)
    elif platform == "H08":
        from app.sample.geo.ahi import write_ahi_slot

        paths = write_ahi_slot(scenario, t, out, resolution_factor=25)
    else:
        from app.sample.geo.seviri import write_seviri_slot

        paths = write_seviri_slot(scenario, "MSG4", t, out, resolution_factor=32)
    return [str(p) for p in paths]


def _read(platform: str, paths: list[str]) -> xr.Dataset:
    if platform == "G16":
        from app.data.geo_abi import read_abi

        return read_abi(paths)
    if platform == "H08":
        from app.data.geo_ahi import read_ahi

        return read_ahi(paths)
    from app.data.geo_seviri import read_seviri

    return read_seviri(paths[0])


def _make_slot(platform: str, out) -> dict:
    satpy = pytest.importorskip("satpy")
    paths = _write(platform, out)
    scene = _read(platform, paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = satpy.Scene(reader=SLOTS[platform]["reader"], filenames=paths)
        names = sorted({rgb.load_recipes()[n].variant(SLOTS[platform]["sensor"]).satpy_composite
                        for p, n in SATPY_CASES if p == platform})
        scn.load(names)
    return {"platform": platform, "paths": paths, "scene": scene, "satpy": scn}


@pytest.fixture(scope="module")
def slots(tmp_path_factory):
    """Each platform's slot, written, read and loaded by satpy once for the whole module (on first use)."""
    cache: dict[str, dict] = {}

    def get(platform: str) -> dict:
        if platform not in cache:
            cache[platform] = _make_slot(platform, tmp_path_factory.mktemp(platform))
        return cache[platform]

    return get


@pytest.fixture
def slot(request, slots):
    """The slot of the platform the test is parametrised with (indirectly)."""
    return slots(request.param)


ALL_SLOTS = pytest.mark.parametrize("slot", sorted(SLOTS), indirect=True)


def _one(platform: str):
    return pytest.mark.parametrize("slot", [platform], indirect=True)


def _enhanced(data_arr) -> np.ndarray:
    from satpy.enhancements.enhancer import get_enhanced_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.clip(get_enhanced_image(data_arr).data.values, 0.0, 1.0)


def _agreement(ours: np.ndarray, theirs: np.ndarray) -> dict:
    both = np.isfinite(ours).all(axis=0) & np.isfinite(theirs).all(axis=0)
    err = np.abs(ours - theirs)[:, both]
    return {
        "n": int(both.sum()),
        "within": float((err <= ONE).all(axis=0).mean()),
        "max": float(err.max()),
        "nan_agree": float((np.isfinite(ours) == np.isfinite(theirs)).mean()),
    }


# --------------------------------------------------------------------------------------------- the data


def satpy_enhancements(sensor: str = "abi") -> dict:
    """Satpy's enhancement YAMLs (generic, then the sensor's, which overrides), Python tags read as plain strings."""
    satpy = pytest.importorskip("satpy")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)
    out = {}
    for name in ("generic", sensor):
        path = f"{satpy.__path__[0]}/etc/enhancements/{name}.yaml"
        with open(path, encoding="utf-8") as f:
            out.update(yaml.load(f, Loader=Loader)["enhancements"])
    return out


def test_recipe_numbers_are_those_of_satpys_enhancements():
    enhancements = satpy_enhancements()
    checked = crude = 0
    for name, recipe in rgb.load_recipes().items():
        for variant in recipe.variants:
            crude += variant.stretch == "crude"
            ops = {op["name"]: op.get("kwargs", {}) for op in enhancements[variant.satpy_enhancement]["operations"]}
            if variant.stretch == "cira":
                assert "cira_stretch" in ops, (name, variant.sensors)
                continue
            kwargs = ops["stretch"]
            assert kwargs["stretch"] == "crude"
            lo, hi = np.broadcast_to(kwargs["min_stretch"], 3), np.broadcast_to(kwargs["max_stretch"], 3)
            gamma = np.broadcast_to(ops.get("gamma", {}).get("gamma", 1.0), 3)
            for i, band in enumerate(variant.bands):
                assert (band.min, band.max, band.gamma) == (lo[i], hi[i], gamma[i]), (name, variant.sensors, i)
                checked += 1
    # every band of every crude variant: at least ash ×3, dust ×3, natural colour ×2, day microphysics ×3, SO2 ×2
    assert checked == 3 * crude and crude >= 13


def test_every_recipe_has_title_legend_and_says_what_true_colour_lacks():
    recipes = rgb.load_recipes()
    assert list(recipes) == ["ash", "dust", "natural_color", "true_color", "day_microphysics", "so2"]
    for recipe in recipes.values():
        assert recipe.title and recipe.description and recipe.legend
    tc = recipes["true_color"]
    assert "Rayleigh" in tc.title and "Rayleigh" in tc.legend and "Rayleigh" in tc.description
    info = rgb.describe("ash", "abi")
    assert info["bands"] == ["R: C15 (12.3 µm) − C13 (10.35 µm), −6.7 … 2.6 K",
                             "G: C14 (11.2 µm) − C11 (8.5 µm), −6 … 6.3 K",
                             "B: C13 (10.35 µm), 243.6 … 302.4 K"]
    assert rgb.describe("dust", "seviri")["bands"][1] == "G: IR_108 (10.8 µm) − IR_087 (8.7 µm), 0 … 15 K, γ 2.5"


def test_malformed_recipe_files_are_named(tmp_path):
    bad = tmp_path / "rgb.yaml"
    bad.write_text("recipes:\n  x:\n    variants:\n      - sensors: [abi]\n"
                   "        red: {expr: ir_999 - ir_108, min: 0, max: 1}\n"
                   "        green: {expr: ir_108, min: 0, max: 1}\n        blue: {expr: ir_108, min: 0, max: 1}\n")
    with pytest.raises(rgb.RecipeError, match=r"recipe 'x', variant 1, red: 'ir_999' in 'ir_999 - ir_108' is not"):
        rgb.load_recipes(bad)
    bad.write_text(bad.read_text().replace("ir_999 - ir_108", "__import__(ir_108)"))
    with pytest.raises(rgb.RecipeError, match="only sunz_corrected"):
        rgb.load_recipes(bad)


# ------------------------------------------------------------------------------------- against satpy


@pytest.mark.parametrize(("slot", "name"), SATPY_CASES, indirect=["slot"])
def test_composite_matches_satpy(slot, name):
    platform = slot["platform"]
    variant = rgb.load_recipes()[name].variant(SLOTS[platform]["sensor"])
    theirs = _enhanced(slot["satpy"][variant.satpy_composite])
    ours = rgb.compose(slot["scene"], name, sharpen=True)
    assert ours.dtype == np.float32 and ours.dims == ("band", "y", "x")
    got = _agreement(ours.values, theirs)
    assert got["n"] > 0.5 * ours.shape[1] * ours.shape[2]
    assert got["within"] >= 0.999, got
    assert got["nan_agree"] >= 0.999, got
    if variant.sharpen is None:
        assert got["max"] <= ONE, got
    else:  # the 2×2 blocks of sharpening: a pixel off by more is in a block that holds a pixel only one has
        off = (np.abs(ours.values - theirs) > ONE).any(axis=0)
        one_only = np.isfinite(ours.values).all(axis=0) != np.isfinite(theirs).all(axis=0)
        blocks = np.zeros(((one_only.shape[0] + 1) // 2, (one_only.shape[1] + 1) // 2), dtype=bool)
        rows, cols = np.nonzero(one_only)
        blocks[rows // 2, cols // 2] = True
        rows, cols = np.nonzero(off & np.isfinite(ours.values).all(axis=0) & np.isfinite(theirs).all(axis=0))
        assert blocks[rows // 2, cols // 2].all(), got


@pytest.mark.parametrize(("slot", "name"), sorted(SATPY_UNSHARPENED), indirect=["slot"])
def test_unsharpened_composite_matches_satpys_inputs(slot, name):
    from satpy import DataQuery
    from satpy.composites.core import GenericCompositor

    platform = slot["platform"]
    scn = slot["satpy"]
    queries = [DataQuery(name=n, modifiers=("sunz_corrected",)) if sunz else n
               for n, sunz in SATPY_UNSHARPENED[(platform, name)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn.load(queries)
        standard = "true_color" if name == "true_color" else "natural_color"
        comp = GenericCompositor(name, standard_name=standard)([scn[q] for q in queries])
    got = _agreement(rgb.compose(slot["scene"], name).values, _enhanced(comp))
    assert got["max"] <= ONE and got["nan_agree"] >= 0.999, got


@_one("H08")
def test_ahi_so2_matches_satpys_compositors_and_enhancement(slot):
    from satpy.composites.arithmetic import DifferenceCompositor
    from satpy.composites.core import GenericCompositor

    scn = slot["satpy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn.load(["B09", "B10", "B11", "B13"])
        red = DifferenceCompositor("red")([scn["B09"], scn["B10"]])
        green = DifferenceCompositor("green")([scn["B13"], scn["B11"]])
        comp = GenericCompositor("volcanic_emissions", standard_name="volcanic_emissions")([red, green, scn["B13"]])
    comp.attrs["sensor"] = "abi"  # the volcanic_emissions enhancement lives in satpy's abi.yaml
    got = _agreement(rgb.compose(slot["scene"], "so2").values, _enhanced(comp))
    assert got["max"] <= ONE and got["nan_agree"] >= 0.999, got


@ALL_SLOTS
def test_day_microphysics_matches_satpy_with_our_39um_reflectance(slot):
    from satpy import DataQuery
    from satpy.composites.core import GenericCompositor

    platform = slot["platform"]
    (red, sunz), nir, blue = SATPY_DAY_MICROPHYSICS[platform]
    scn = slot["satpy"]
    red_q = DataQuery(name=red, modifiers=("sunz_corrected",)) if sunz else red
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn.load([red_q, nir, blue])
    ours = rgb.compose(slot["scene"], "day_microphysics")
    variant = rgb.load_recipes()["day_microphysics"].variant(SLOTS[platform]["sensor"])
    env_scene = slot["scene"]
    cos_sza = rgb.cos_solar_zenith(env_scene)
    wavelength = band_for_generic(SLOTS[platform]["sensor"], "ir_39").central_wavelength_um
    r39 = rgb.nir_reflectance(
        env_scene["ir_39"].values, env_scene[variant.nir["thermal"]].values, np.degrees(np.arccos(cos_sza)),
        wavelength_um=wavelength, tb_co2=env_scene["ir_133"].values)
    green = scn[nir].copy(data=r39)
    green.attrs["units"] = "%"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = GenericCompositor("day_microphysics", standard_name="day_microphysics")([scn[red_q], green, scn[blue]])
    got = _agreement(ours.values, _enhanced(comp))
    assert got["n"] > 0.3 * ours.shape[1] * ours.shape[2]
    assert got["max"] <= ONE and got["nan_agree"] >= 0.999, got


# --------------------------------------------------------------------------------- physics and pixels


@_one("G16")
def test_39um_reflectance_of_the_scenario_clouds(slot):
    from app.sample.geo.scene import cloud_top
    from app.sample.scenario import get_scenario

    scene = slot["scene"]
    lon, lat = rgb._lonlat(scene)
    sza = np.degrees(np.arccos(rgb.cos_solar_zenith(scene)))
    ok = np.isfinite(lon) & (sza < 60)
    clouds = cloud_top(get_scenario("soufriere-tiny"), lat[ok].astype(float), lon[ok].astype(float),
                       np.datetime64(SLOTS["G16"]["time"]))
    r39 = rgb.nir_reflectance(scene["ir_39"].values[ok], scene["ir_112"].values[ok], sza[ok], wavelength_um=3.9,
                              tb_co2=scene["ir_133"].values[ok])
    thick = (clouds.fraction > 0.95) & (clouds.optical_depth > 15)
    water, ice = thick & ~clouds.is_ice, thick & clouds.is_ice
    assert water.sum() > 100 and ice.sum() > 100
    # the scene model reflects 20 % (1 − e^(−τ/5)) at 3.9 µm from water cloud, 5 % from ice
    assert 16.0 < np.nanmedian(r39[water]) < 24.0
    assert 4.0 < np.nanmedian(r39[ice]) < 6.5


def _t39(lam: float, t11: float, t13: float, rho: float, sza: float) -> tuple[float, float]:
    """The 3.9 µm brightness temperature of a pixel reflecting ``rho``, by hand; and the thermal radiance."""
    e_sun = rgb.solar_irradiance_39(lam)
    co2 = (t11 - 0.25 * (t11 - t13)) ** 4 / t11**4
    thermal = 1.191042e8 / (lam**5 * np.expm1(1.4387752e4 / (lam * t11))) * co2
    radiance = thermal + rho * (e_sun * np.cos(np.radians(min(sza, 85.0))) / np.pi - thermal)
    return 1.4387752e4 / (lam * np.log1p(1.191042e8 / (lam**5 * radiance))), thermal


def test_39um_reflectance_by_hand():
    lam = 3.9
    assert rgb.solar_irradiance_39(lam) == pytest.approx(9.599)  # E-490 at 3.9 µm
    warm, _ = _t39(lam, 285.0, 255.0, 0.25, 40.0)  # low cloud, sun at 40°
    cold, _ = _t39(lam, 215.0, 210.0, 0.10, 87.0)  # high cloud near the terminator: the sun is held at 85°
    got = rgb.nir_reflectance([warm, cold, cold, np.nan, warm], [285.0, 215.0, 215.0, 285.0, 285.0],
                              [40.0, 87.0, 89.0, 40.0, 87.0], wavelength_um=lam,
                              tb_co2=[255.0, 210.0, 210.0, 255.0, 255.0])
    assert got[0] == pytest.approx(25.0, abs=1e-3)
    assert got[1] == pytest.approx(10.0, abs=1e-3)
    assert np.isnan(got[2])  # beyond 88°
    assert np.isnan(got[3])  # no 3.9 µm value
    assert np.isnan(got[4])  # the thermal emission of a warm scene outweighs the low sun: no solution
    no_co2 = rgb.nir_reflectance([warm], [285.0], [40.0], wavelength_um=lam)
    assert no_co2[0] < got[0]  # without the CO2 correction more of the 3.9 µm radiance is taken as thermal


def test_sun_zenith_correction_is_satpys():
    pytest.importorskip("satpy")
    from satpy.modifiers.angles import _sunzen_corr_cos_ndarray

    sza = np.array([0, 30, 60, 80, 87.9, 88.5, 90, 94, 96, np.nan])
    cos_zen = np.cos(np.radians(sza)).astype(np.float32)
    data = np.full(sza.shape, 50.0, dtype=np.float32)
    ours = data * rgb.sun_zenith_correction(cos_zen)
    with np.errstate(invalid="ignore"):
        theirs = _sunzen_corr_cos_ndarray(data, np.where(cos_zen >= np.cos(np.radians(95)), cos_zen, np.nan),
                                          88.0, 95.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[0] == 50.0 and ours[-2] == 0.0


def _pixel_scene(sensor: str, **channels) -> xr.Dataset:
    return xr.Dataset({k: (("y", "x"), np.full((2, 2), v, dtype=np.float32)) for k, v in channels.items()},
                      coords={"y": [1.0, 0.0], "x": [0.0, 1.0]}, attrs={"sensor": sensor, "platform": "test"})


def test_ash_rgb_of_a_pixel_by_hand():
    # T(12.0) − T(10.8) = −1 K, T(10.8) − T(8.7) = 0 K, T(10.8) = 273 K
    scene = _pixel_scene("seviri", ir_108=273.0, ir_120=272.0, ir_87=273.0)
    got = rgb.compose(scene, "ash").values[:, 0, 0]
    np.testing.assert_allclose(got, [(-1 + 4) / 6, (0 + 4) / 9, (273 - 243) / 60], atol=1e-6)
    # the CIRA (ABI) numbers for the same differences
    scene = _pixel_scene("abi", ir_105=273.0, ir_120=272.0, ir_112=273.0, ir_87=273.0)
    got = rgb.compose(scene, "ash").values[:, 0, 0]
    np.testing.assert_allclose(got, [(-1 + 6.7) / 9.3, 6.0 / 12.3, (273 - 243.6) / 58.8], atol=1e-6)
    # a gamma: the Dust RGB green is ((x − 0) / 15) ** (1 / 2.5)
    scene = _pixel_scene("seviri", ir_108=280.0, ir_120=279.0, ir_87=274.0)
    assert rgb.compose(scene, "dust").values[1, 0, 0] == pytest.approx((6 / 15) ** 0.4, abs=1e-6)


@_one("G16")
def test_ash_of_the_scenario_is_red_in_the_ash_rgb(slot):
    from app.sample.scenario import get_scenario

    scene = slot["scene"]
    lon, lat = rgb._lonlat(scene)
    ok = np.isfinite(lon)
    load = np.zeros(lon.shape)
    load[ok] = get_scenario("soufriere-tiny").ash_loading_g_m2(lat[ok].astype(float), lon[ok].astype(float),
                                                                np.datetime64(SLOTS["G16"]["time"]))
    ash = load > 0.5
    assert ash.sum() >= 10
    r, g, b = rgb.compose(scene, "ash").values[:, ash]
    assert np.all((r > g) & (r > b))
    assert np.median(r) > 0.8


@ALL_SLOTS
def test_output_range_and_off_disk(slot):
    scene = slot["scene"]
    off = ~np.isfinite(scene[rgb.load_recipes()["ash"].variant(scene.attrs["sensor"]).bands[2].channels[0]].values)
    assert 0.1 < off.mean() < 0.5
    for name in rgb.available_composites(scene):
        values = rgb.compose(scene, name).values
        assert np.isnan(values[:, off]).all(), name
        finite = values[np.isfinite(values)]
        assert finite.min() >= 0.0 and finite.max() <= 1.0, name


@ALL_SLOTS
def test_available_composites(slot):
    expected = {
        "G16": ["ash", "dust", "natural_color", "true_color", "day_microphysics", "so2"],
        "H08": ["ash", "dust", "natural_color", "true_color", "day_microphysics", "so2"],
        "MSG4": ["ash", "dust", "natural_color", "day_microphysics"],
    }
    assert rgb.available_composites(slot["scene"]) == expected[slot["platform"]]
    assert rgb.available_composites(slot["scene"].drop_vars(["ir_87"])) == [
        n for n in expected[slot["platform"]] if n in ("natural_color", "true_color", "day_microphysics")]


def test_a_missing_channel_is_named():
    scene = _pixel_scene("abi", ir_105=273.0, ir_120=272.0, ir_112=273.0)
    with pytest.raises(UserInputError, match=r"the Ash RGB needs channel ir_87 \(C11, 8\.5 µm\), which this test "
                                             r"scene lacks \(it has ir_105, ir_120, ir_112\)"):
        rgb.compose(scene, "ash")
    with pytest.raises(UserInputError, match="SO2 RGB .* has no recipe for sensor SEVIRI; it exists for ABI, AHI"):
        rgb.compose(_pixel_scene("seviri", ir_108=280.0), "so2")
    with pytest.raises(UserInputError, match="unknown RGB composite 'airmass'; composites are ash, dust"):
        rgb.compose(scene, "airmass")


def test_rgba_uint8():
    data = np.array([[[0.0, 0.5, 1.2]], [[1.0, 0.2, -0.1]], [[0.002, np.nan, 1.0]]], dtype=np.float32)
    got = rgb.to_rgba_uint8(xr.DataArray(data, dims=("band", "y", "x")))
    assert got.shape == (1, 3, 4) and got.dtype == np.uint8
    assert got[0, 0].tolist() == [0, 255, 1, 255]
    assert got[0, 1].tolist() == [128, 51, 0, 0]  # a band without value: transparent
    assert got[0, 2].tolist() == [255, 0, 255, 255]


def test_rows_in_blocks_and_threads_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(1)
    n = 64
    scene = xr.Dataset({c: (("y", "x"), (250 + 40 * rng.random((n, n))).astype(np.float32))
                        for c in ("ir_105", "ir_112", "ir_120", "ir_87")}, attrs={"sensor": "abi"})
    whole = rgb.compose(scene, "ash", workers=1).values
    monkeypatch.setattr(rgb, "_BLOCK_PIXELS", 5 * n)
    np.testing.assert_array_equal(rgb.compose(scene, "ash", workers=2).values, whole)
    shaded = rgb.compose(scene.assign(vis_04=scene.ir_105 / 4, vis_06=scene.ir_112 / 4, vis_05=scene.ir_87 / 4,
                                      nir_08=scene.ir_120 / 4), "true_color", sharpen=True, workers=2).values
    monkeypatch.setattr(rgb, "_BLOCK_PIXELS", 10**9)
    np.testing.assert_array_equal(
        rgb.compose(scene.assign(vis_04=scene.ir_105 / 4, vis_06=scene.ir_112 / 4, vis_05=scene.ir_87 / 4,
                                 nir_08=scene.ir_120 / 4), "true_color", sharpen=True, workers=1).values, shaded)
