"""Our readers read NWC SAF GEO CTTH (v2018, v2021, v2025) and FCI L1c files laid out as the real products are.

The fixtures (``nwcsaf_geo.build``, ``fci_l1c.build``) are built from the products' public descriptions and from
how satpy's own reader tests build theirs, never with our sample writers; expected values are computed by hand
from what the builders stored, and satpy's readers must agree with ours on the same files.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.data.errors import GranuleError
from app.data.nwcsaf import read_ctth

from . import nwcsaf_geo as nw

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

# --- NWC SAF GEO CTTH -------------------------------------------------------------------------------------------

#: Hand-decoded row 0, columns 0..3 (stored × scale + offset; fill and out-of-valid-range -> NaN), and the change
#: per row (stored + 10 per row; + 1 for the effective cloudiness).
CTTH_ROW0 = {
    "cloud_top_height": ([12000 * 1.0 - 2000, 3000 * 1.0 - 2000, np.nan, np.nan], 10.0),  # m
    "cloud_top_pressure": ([2650 * 10 / 100, 8990 * 10 / 100, np.nan, np.nan], 1.0),  # hPa
    "cloud_top_temperature": ([9320 * 0.01 + 130, 15200 * 0.01 + 130, np.nan, np.nan], 0.1),  # K
    "effective_cloudiness": ([0.95, 0.40, np.nan, np.nan], 0.01),
}


@pytest.mark.parametrize("version", nw.VERSIONS)
def test_read_ctth_decodes_every_version(tmp_path, version):
    ds = read_ctth(nw.build(tmp_path, version))
    assert ds.cloud_top_height.dims == ("y", "x") and ds.cloud_top_height.shape == (nw.NY, nw.NX)
    for name, (row0, step) in CTTH_ROW0.items():
        for j in (0, nw.NY - 1):
            expected = np.array(row0) + step * j
            np.testing.assert_allclose(ds[name].values[j, :4], expected, rtol=1e-5, err_msg=f"{version} {name}")
    # the grid: pixel centres inside the gdal corners, north first
    px = nw.pixel_size(version)
    assert ds.x.values[0] == pytest.approx(-nw.NX / 2 * px + px / 2)
    assert ds.y.values[0] == pytest.approx(1_500_000.0 + nw.NY * px - px / 2)
    assert ds.attrs["h"] == pytest.approx(35786400.0 if version == "v2025" else 35785863.0)
    if version == "v2025":
        # no nominal_product_time: the slot is the file name's, not the scan start (12:00:12)
        assert ds.attrs["start_time"] == "2025-07-07T12:00:00.000Z"
        assert ds.attrs["platform_id"] == "MTI1"
    else:
        assert ds.attrs["start_time"] == "2021-04-12T12:00:00.000Z"
        assert ds.attrs["platform_id"] == "MSG4"


@pytest.mark.parametrize("version", nw.VERSIONS)
def test_satpy_nwcsaf_geo_agrees(tmp_path, version):
    from satpy import Scene

    path = nw.build(tmp_path, version)
    ours = read_ctth(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = Scene([str(path)], reader="nwcsaf-geo")
        scn.load(["ctth_alti", "ctth_pres", "ctth_tempe"])
        theirs = {name: scn[name].values for name in ("ctth_alti", "ctth_pres", "ctth_tempe")}
        area = scn["ctth_alti"].attrs["area"]
    assert theirs["ctth_alti"].shape == (nw.NY, nw.NX)
    np.testing.assert_allclose(ours.cloud_top_height.values, theirs["ctth_alti"], rtol=1e-6)
    np.testing.assert_allclose(ours.cloud_top_pressure.values, theirs["ctth_pres"] / 100.0, rtol=1e-6)
    np.testing.assert_allclose(ours.cloud_top_temperature.values, theirs["ctth_tempe"], rtol=1e-6)
    x0, y0, x1, y1 = area.area_extent
    px = (x1 - x0) / nw.NX
    np.testing.assert_allclose(ours.x.values, x0 + px * (np.arange(nw.NX) + 0.5))
    np.testing.assert_allclose(ours.y.values, y1 - px * (np.arange(nw.NY) + 0.5))


def test_v2025_with_two_times_is_refused_naming_file_and_variable(tmp_path):
    path = nw.build(tmp_path, "v2025", n_times=2)
    with pytest.raises(GranuleError) as err:
        read_ctth(path)
    text = str(err.value)
    assert path.name in text and "ctth_alti" in text and "2 times" in text


def test_unexpected_leading_dimension_is_refused(tmp_path):
    path = nw.build(tmp_path, "v2021", dims=("band", "ny", "nx"))
    with pytest.raises(GranuleError) as err:
        read_ctth(path)
    text = str(err.value)
    assert path.name in text and "ctth_alti" in text and "(band, ny, nx)" in text


# --- FCI L1c FDHSI ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fci_slot(tmp_path_factory):
    """The 40 body chunks of one FDHSI repeat cycle (2025-07-07 12:00), built from the PUG and satpy's tests."""
    from . import fci_l1c as fx

    return fx.build(tmp_path_factory.mktemp("fci"))


@pytest.fixture(scope="module")
def fci_scene(fci_slot):
    from app.data.geo_fci import read_fci

    return read_fci(fci_slot, ["ir_105", "ir_120", "vis_06"])


@pytest.mark.slow  # shares the 40-chunk fixture and its satpy read (~10 s)
def test_read_fci_calibrates_as_the_pug_says(fci_scene):
    from . import fci_l1c as fx

    ds = fci_scene
    n = fx.N_IR
    assert ds.ir_105.dims == ("y", "x") and ds.ir_105.shape == (n, n)
    # north up, west left: canonical row 0 is full-disk row n (the last row of chunk 40), column 0 is column 1
    rows, cols = np.arange(n, 0, -1)[:, None], np.arange(1, n + 1)[None, :]
    for name, fci_name in (("ir_105", "ir_105"), ("ir_120", "ir_123")):
        expected = fx.expected_bt(fx.counts(fci_name, rows, cols))
        np.testing.assert_allclose(ds[name].values, expected, atol=1e-3, err_msg=name)
        assert ds[name].attrs["units"] == "K"
    assert np.isnan(ds.ir_105.values[:, 0]).all() and np.isfinite(ds.ir_105.values[:, 1:]).all()
    # one pixel by hand: row 1 (south-most), column 2 of ir_105: counts 200 + 12 + 6 + 20 × 13 = 478
    counts = 200 + 12 * 1 + 3 * 2 + 20 * fx.CHANNELS.index("ir_105")
    radiance = counts * 0.05 - 1.0
    c1, c2 = 1.1910429723971884e-05, 1.438776877503933
    bt = c2 * 955.0 / np.log(1 + c1 * 955.0**3 / radiance) - 0.4
    assert ds.ir_105.values[n - 1, 1] == pytest.approx(bt, abs=1e-3)


@pytest.mark.slow  # shares the 40-chunk fixture and its satpy read (~10 s)
def test_read_fci_puts_the_1km_solar_grid_onto_the_2km_grid(fci_scene):
    from . import fci_l1c as fx

    n, nv = fx.N_IR, fx.N_VIS
    rows, cols = np.arange(nv, 0, -1)[:, None], np.arange(1, nv + 1)[None, :]
    fine = fx.expected_reflectance(fx.counts("vis_06", rows, cols))
    expected = fine.reshape(n, 2, n, 2).mean(axis=(1, 3))  # a fill pixel makes its block NaN
    np.testing.assert_allclose(fci_scene.vis_06.values, expected, rtol=1e-5)
    assert fci_scene.vis_06.attrs["units"] == "%"


@pytest.mark.slow  # shares the 40-chunk fixture and its satpy read (~10 s)
def test_read_fci_grid_and_attributes(fci_scene):
    from . import fci_l1c as fx

    ds = fci_scene
    h = 35786400.0
    half = fx.IR_STEP * (fx.N_IR - 1) / 2 * h  # the centre of the westernmost column, metres
    assert ds.x.values[0] == pytest.approx(-half, abs=1.0) and ds.x.values[-1] == pytest.approx(half, abs=1.0)
    assert ds.y.values[0] == pytest.approx(half, abs=1.0) and ds.y.values[-1] == pytest.approx(-half, abs=1.0)
    assert ds.attrs["platform_id"] == "MTI1" and ds.attrs["platform"] == "Meteosat-12"
    assert ds.attrs["sensor"] == "fci" and ds.attrs["h"] == pytest.approx(h) and ds.attrs["sweep"] == "y"
    assert ds.attrs["start_time"] == "2025-07-07T12:00:00.000Z" and ds.attrs["end_time"] == "2025-07-07T12:10:00.000Z"
    assert ds.attrs["observation_start_time"] == "2025-07-07T12:00:07.000Z"


def test_fci_chunk_names_index_as_geo_fci_l1c(fci_slot):
    from app.data.filenames import parse_filename

    f = parse_filename(fci_slot[0])
    assert f["product"] == "geo_fci_l1c" and f["platform"] == "MTI1" and f["chunk"] == 1
    assert f["repeat_cycle"] == 73 and f["slot"].isoformat() == "2025-07-07T12:00:00"
    assert parse_filename(fci_slot[-1])["chunk"] == 40


def test_chunks_of_two_repeat_cycles_are_refused_before_reading(fci_slot, tmp_path):
    import shutil

    from app.data.geo_fci import read_fci

    other = tmp_path / fci_slot[1].name.replace("_0073_0002.nc", "_0074_0002.nc")
    shutil.copy(fci_slot[1], other)
    with pytest.raises(GranuleError) as err:
        read_fci([fci_slot[0], other], ["ir_105"])
    assert "different slots" in str(err.value) and "12:10" in str(err.value)
