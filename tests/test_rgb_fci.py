"""The FCI variants of the RGB recipes are satpy's: same channels, same numbers, same picture within 1/255."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.science import rgb
from tests.test_rgb import satpy_enhancements

# one 40-chunk FCI slot written and read by satpy and by us (~15 s); satpy in one thread (conftest)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("satpy_one_thread")]

SLOT = "2025-07-07T06:00"  # morning over Africa and the Indian Ocean: day and night on one disk
RES_KM = 96.0  # 116 × 116
ONE = 1.0 / 255 + 1e-6
#: recipe -> satpy's composite for FCI (composites/visir.yaml by wavelength, or composites/fci.yaml) and the FCI
#: channels it loads.
SATPY = {
    "ash": ("ash", {"ir_123", "ir_105", "ir_87"}),
    "dust": ("dust", {"ir_123", "ir_105", "ir_87"}),
    "natural_color": ("natural_color", {"nir_16", "vis_08", "vis_06"}),
    "true_color": ("true_color_raw", {"vis_06", "vis_05", "vis_04"}),
    "so2": ("volcanic_emissions", {"wv_63", "wv_73", "ir_105", "ir_87"}),
}




def test_every_recipe_has_an_fci_variant_with_satpys_numbers():
    enhancements = satpy_enhancements("fci")  # fci.yaml overrides generic.yaml
    checked = 0
    for name, recipe in rgb.load_recipes().items():
        variant = recipe.variant("fci")
        assert set(variant.channels) <= set(rgb_channels_of_fci()), name
        ops = {op["name"]: op.get("kwargs", {}) for op in enhancements[variant.satpy_enhancement]["operations"]}
        if variant.stretch == "cira":
            assert "cira_stretch" in ops
            continue
        kwargs = ops["stretch"]
        lo, hi = np.broadcast_to(kwargs["min_stretch"], 3), np.broadcast_to(kwargs["max_stretch"], 3)
        gamma = np.broadcast_to(ops.get("gamma", {}).get("gamma", 1.0), 3)
        for i, band in enumerate(variant.bands):
            assert (band.min, band.max, band.gamma) == (lo[i], hi[i], gamma[i]), (name, i)
            checked += 1
    assert checked == 3 * 5  # ash, dust, natural colour, day microphysics, SO2 (true colour: the CIRA stretch)
    assert rgb.describe("ash", "fci")["bands"][0] == "R: ir_123 (12.3 µm) − ir_105 (10.5 µm), −4 … 2 K"


def rgb_channels_of_fci() -> tuple[str, ...]:
    from app.data.geo_bands import generic_channels

    return generic_channels("fci")


@pytest.fixture(scope="module")
def fci(tmp_path_factory):
    from satpy import Scene

    from app.data.geo_fci import read_fci
    from app.sample.geo.fci import write_fci_slot
    from app.sample.scenario import get_scenario

    paths = write_fci_slot(get_scenario("lewotobi-2025-tiny"), "MTI1", SLOT, tmp_path_factory.mktemp("fci"),
                           resolution_km=RES_KM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = Scene([str(p) for p in paths], reader="fci_l1c_nc")
        scn.load([composite for composite, _ in SATPY.values()], unload=False)
    ours = read_fci(paths, sorted({c for name in SATPY for c in rgb.load_recipes()[name].variant("fci").channels}))
    return scn, ours


def _enhanced(data_arr) -> np.ndarray:
    from satpy.enhancements.enhancer import get_enhanced_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.clip(get_enhanced_image(data_arr).data.values, 0.0, 1.0)


@pytest.mark.parametrize("name", sorted(SATPY))
def test_fci_composite_matches_satpy(fci, name):
    scn, ours_scene = fci
    composite, channels = SATPY[name]
    loaded = {str(k["name"]) for k in scn.keys()}
    assert channels <= loaded, (name, loaded)  # satpy resolves its wavelengths to the FCI channels we use
    theirs = _enhanced(scn[composite])[:, ::-1, :]  # satpy keeps FCI's south-up rows
    ours = rgb.compose(ours_scene, name).values
    both = np.isfinite(ours).all(axis=0) & np.isfinite(theirs).all(axis=0)
    assert both.sum() > 0.3 * both.size
    err = np.abs(ours - theirs)[:, both]
    assert (err <= ONE).all(axis=0).mean() >= 0.999, (name, float(err.max()))
    assert (np.isfinite(ours) == np.isfinite(theirs)).mean() >= 0.999
    assert float(np.nanmax(ours)) > 0.2  # not a blank picture
