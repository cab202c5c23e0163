"""Intake v2 catalogues: the sample/tiny/template catalogues, per-granule reading through intake, clear errors."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import intake
import netCDF4
import numpy as np
import pytest
import xarray as xr
import yaml
from pyhdf.SD import SD, SDC

from app.data import catalog
from app.data.errors import CatalogError
from app.data.filenames import PATTERNS, caliop_filename, tropomi_filename

REPO = Path(__file__).parents[1]
START = dt.datetime(2021, 4, 12, 16, 59, 31)
GEO_PRODUCTS = ["geo_abi_l1b", "geo_ahi_hsd", "geo_seviri_nc", "geo_fci_l1c", "nwcsaf_ctth"]


def write_tiny_tropomi(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / tropomi_filename(START, START + dt.timedelta(minutes=101), 18112)
    lat = np.linspace(-20, 40, 6 * 4).reshape(1, 6, 4)
    with netCDF4.Dataset(path, "w") as ds:
        ds.orbit = np.int32(18112)
        ds.time_coverage_start = f"{START:%Y-%m-%dT%H:%M:%SZ}"
        g = ds.createGroup("PRODUCT")
        for name, n in (("time", 1), ("scanline", 6), ("ground_pixel", 4)):
            g.createDimension(name, n)
        for name, values in (("latitude", lat), ("longitude", -60.0 - lat / 10)):
            v = g.createVariable(name, "f4", ("time", "scanline", "ground_pixel"))
            v.units = "degrees_north" if name == "latitude" else "degrees_east"
            v[:] = values
    return path


def write_tiny_caliop(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / caliop_filename(dt.datetime(2021, 4, 12, 5, 36, 44), "N")
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for name, kind, values in (
        ("Latitude", SDC.FLOAT32, np.linspace(10, 20, 8, dtype="f4")),
        ("Longitude", SDC.FLOAT32, np.full(8, -61.0, dtype="f4")),
        ("Profile_Time", SDC.FLOAT64, 8.9e8 + np.arange(8.0)),
    ):
        sds = sd.create(name, kind, (8, 1))
        sds[:] = values.reshape(8, 1)
        sds.endaccess()
    sd.end()
    return path


@pytest.fixture
def tiny(tmp_path):
    """The real catalogs/tiny.yaml, copied next to a temporary data/tiny/ archive with one granule per product."""
    (tmp_path / "catalogs").mkdir()
    yaml_path = tmp_path / "catalogs" / "tiny.yaml"
    shutil.copy(REPO / "catalogs" / "tiny.yaml", yaml_path)
    root = tmp_path / "data" / "tiny"
    tropomi = write_tiny_tropomi(root / "tropomi" / "2021" / "04" / "12")
    caliop = write_tiny_caliop(root / "caliop" / "2021" / "04" / "12")
    return yaml_path, root, tropomi, caliop


# --- the shipped catalogues ----------------------------------------------------------------------------------


def test_sample_catalogue_products_and_metadata():
    cat = catalog.open_catalog("sample")
    assert catalog.products(cat) == ["tropomi_so2", "caliop_l1b", *GEO_PRODUCTS]
    assert catalog.archive_root(cat) == str(REPO / "data" / "sample")

    so2 = catalog.product_info(cat, "tropomi_so2")
    assert so2.root_url == str(REPO / "data" / "sample" / "tropomi")
    assert so2.glob == "*/*/*/S5P_*_L2__SO2____*.nc"
    assert so2.pattern == PATTERNS["tropomi_so2"].pattern and so2.filename_pattern() is PATTERNS["tropomi_so2"]
    assert so2.reader == "tropomi_l2_so2" and so2.entry == "tropomi_so2"
    assert so2.units["so2_7km"] == "DU" and so2.labels["so2_pbl"].startswith("SO2 column")
    assert so2.defaults["clim"] == [0.0, 20.0] and so2.defaults["cmap"] == "rainbow4"
    assert so2.defaults["log"] is False and so2.defaults["qa_min"] == 0.5
    assert so2.is_local and so2.catalog == str(REPO / "catalogs" / "sample.yaml")

    cal = catalog.product_info(cat, "caliop_l1b")
    assert cal.root_url == str(REPO / "data" / "sample" / "caliop")
    assert cal.defaults["clim"] == [1e-4, 1e-1] and cal.defaults["log"] is True
    assert cal.units["total_attenuated_backscatter_532"] == "km-1 sr-1"
    assert cal.reader == "caliop_l1b"


def test_default_catalogue_is_the_environment_then_sample(monkeypatch, tmp_path):
    monkeypatch.delenv(catalog.CATALOG_ENV, raising=False)
    assert catalog.open_catalog().metadata["name"] == "sample"
    monkeypatch.setenv(catalog.CATALOG_ENV, "tiny")
    assert catalog.open_catalog().metadata["name"] == "tiny"
    monkeypatch.setenv(catalog.CATALOG_ENV, str(REPO / "catalogs" / "tiny.yaml"))
    cat = catalog.open_catalog()
    assert catalog.product_info(cat, "tropomi_so2").root_url == str(REPO / "data" / "tiny" / "tropomi")


def test_tiny_is_the_twin_of_sample():
    sample = yaml.safe_load((REPO / "catalogs" / "sample.yaml").read_text())
    tiny = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text().replace("data/tiny", "data/sample"))
    for doc in (sample, tiny):
        doc["metadata"].pop("name")
        doc["metadata"].pop("title")
    assert tiny == sample


def test_real_archive_template_opens():
    cat = catalog.open_catalog(REPO / "catalogs" / "real-archive.template.yaml")
    assert catalog.products(cat) == ["tropomi_so2", "caliop_l1b", *GEO_PRODUCTS]
    so2 = catalog.product_info(cat, "tropomi_so2")
    assert so2.root_url == "/data/satellite/S5P/L2__SO2___" and so2.glob == "*/*/*/S5P_*_L2__SO2____*.nc"
    assert catalog.archive_root(cat) == "/data/satellite"


def test_catalogue_written_by_intake_reads_back(tmp_path):
    """The YAML layout is intake's own: a catalogue saved by intake opens in Fumarole, and ours in intake."""
    cat = catalog.open_catalog("sample")
    out = tmp_path / "resaved.yaml"
    cat.to_yaml_file(str(out))
    again = catalog.open_catalog(out)
    assert sorted(catalog.products(again)) == sorted(catalog.products(cat))
    assert catalog.product_info(again, "caliop_l1b").defaults == catalog.product_info(cat, "caliop_l1b").defaults


# --- reading one granule through intake ----------------------------------------------------------------------


def test_intake_opens_a_tropomi_granule_through_the_catalogue(tiny):
    yaml_path, _, tropomi, _ = tiny
    cat = catalog.open_catalog(yaml_path)
    reader = catalog.granule_reader(cat, "tropomi_so2", tropomi)
    assert type(reader).__name__ == "XArrayDatasetReader"
    assert reader.metadata["product"] == "tropomi_so2" and reader.metadata["units"]["so2_7km"] == "DU"
    ds = reader.read()
    assert isinstance(ds, xr.Dataset)
    assert ds["latitude"].shape == (1, 6, 4) and ds["latitude"].attrs["units"] == "degrees_north"
    np.testing.assert_allclose(ds["latitude"].values.ravel(), np.linspace(-20, 40, 24), rtol=1e-6)
    ds.close()


def test_plain_intake_reads_our_catalogue(tiny):
    """No Fumarole code: the catalogue is a plain Intake v2 file ({CATALOG_DIR} and {granule} templates)."""
    yaml_path, root, tropomi, _ = tiny
    cat = intake.from_yaml_file(str(yaml_path))
    files = cat["tropomi_so2_files"]
    assert files.url.startswith("file://") and files.url.endswith("/data/tiny/tropomi/*/*/*/S5P_*_L2__SO2____*.nc")
    ds = cat(granule=str(tropomi))["tropomi_so2"].read()
    assert ds["longitude"].dtype == np.float32 and ds.sizes == {"time": 1, "scanline": 6, "ground_pixel": 4}
    ds.close()


def test_intake_opens_a_caliop_granule_through_the_catalogue(tiny):
    yaml_path, _, _, caliop = tiny
    cat = catalog.open_catalog(yaml_path)
    ds = catalog.granule_reader(cat, "caliop_l1b", caliop).read()
    assert set(ds.data_vars) == {"Latitude", "Longitude", "Profile_Time"}
    np.testing.assert_allclose(ds["Latitude"].values[:, 0], np.linspace(10, 20, 8), rtol=1e-6)
    assert ds["Profile_Time"].dtype == np.float64
    part = catalog.granule_reader(cat, "caliop_l1b", caliop).read(variables=["Longitude"])
    assert list(part.data_vars) == ["Longitude"]


# --- errors --------------------------------------------------------------------------------------------------


def test_missing_catalogue_names_path_and_choices(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(CatalogError) as e:
        catalog.open_catalog(missing)
    message = str(e.value)
    assert str(missing) in message and "does not exist" in message
    assert "real-archive.template, sample, tiny" in message
    with pytest.raises(CatalogError, match=r"catalogs/nope\.yaml does not exist"):
        catalog.open_catalog("nope")
    with pytest.raises(CatalogError, match=rf"catalogue {tmp_path} cannot be read: .*directory"):
        catalog.open_catalog(tmp_path)


def test_malformed_yaml_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nentries: [unclosed\n")
    with pytest.raises(CatalogError, match=rf"(?s)catalogue {bad} is not valid YAML: .*line 2, column 10"):
        catalog.open_catalog(bad)


def test_intake_v1_catalogue_is_named(tmp_path):
    v1 = tmp_path / "v1.yaml"
    v1.write_text("sources:\n  x:\n    driver: netcdf\n    args: {urlpath: x.nc}\n")
    with pytest.raises(CatalogError, match=rf"catalogue {v1} is not an Intake v2 catalogue"):
        catalog.open_catalog(v1)


def test_unknown_product_lists_the_available_ones(tiny):
    cat = catalog.open_catalog(tiny[0])
    with pytest.raises(CatalogError) as e:
        catalog.product_info(cat, "modis_aod")
    assert str(e.value) == (
        f"catalogue {tiny[0]} has no product 'modis_aod'; available products: tropomi_so2, caliop_l1b, "
        "geo_abi_l1b, geo_ahi_hsd, geo_seviri_nc, geo_fci_l1c, nwcsaf_ctth"
    )
    with pytest.raises(CatalogError, match="has no product 'modis_aod'"):
        catalog.granule_reader(cat, "modis_aod", tiny[2])


def test_entry_lacking_metadata_is_named(tmp_path):
    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    del doc["entries"]["caliop_l1b"]["metadata"]["units"]
    del doc["entries"]["caliop_l1b"]["metadata"]["plot_defaults"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"product 'caliop_l1b' lacks the metadata units, plot_defaults"):
        catalog.open_catalog(broken)
    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    doc["entries"]["tropomi_so2"]["metadata"]["files"] = "tropomi_files"
    broken.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"names files: 'tropomi_files', which is not in the data section"):
        catalog.open_catalog(broken)


def test_split_glob_and_urls():
    assert catalog.split_glob("s3://bucket/S5P/**/S5P_*.nc") == ("s3://bucket/S5P", "**/S5P_*.nc")
    assert catalog.split_glob("/data/s5p") == ("/data/s5p", "")
    assert catalog.normalise_url("file:///a/catalogs/../data/x") == "/a/data/x"
    assert catalog.normalise_url("https://host/cat/../data") == "https://host/data"


@pytest.mark.parametrize("partition, live, problem", [
    ("%Y/%m/%d/", None, r"partition must be a relative folder template with a \{time:<strftime format>\} field"),
    ("/abs/{time:%Y}/", None, r"partition must be a relative folder template"),
    ("{time:%Y/%m/%d}/", {"poll_seconds": 1}, r"live needs poll_seconds >= 10 and days from 1 to 31"),
    ("{time:%Y/%m/%d}/", {"every": 60}, r"live has unknown keys every \(known: poll_seconds, days\)"),
    ("{time:%Y/%m/%d}/", "often", r"live must be a mapping such as \{poll_seconds: 300\}, not 'often'"),
])
def test_partition_and_live_are_checked(tmp_path, partition, live, problem):
    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    meta = doc["entries"]["tropomi_so2"]["metadata"]
    meta["partition"] = partition
    if live is not None:
        meta["live"] = live
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"product 'tropomi_so2': " + problem):
        catalog.open_catalog(broken)


def test_partition_and_live_and_the_storage_options_of_a_root(tmp_path):
    from app.data import storage

    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    meta = doc["entries"]["tropomi_so2"]["metadata"]
    meta["partition"] = "{time:%Y/%m/%d}"
    meta["live"] = {"poll_seconds": 60}
    doc["data"]["tropomi_so2_files"]["kwargs"]["url"] = "s3://some-bucket/S5P/*/*/*/S5P_*_L2__SO2____*.nc"
    doc["data"]["tropomi_so2_files"]["kwargs"]["storage_options"] = {"anon": True}
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(doc))
    info = catalog.product_info(catalog.open_catalog(path), "tropomi_so2")
    assert info.partition == "{time:%Y/%m/%d}/" and info.live == {"poll_seconds": 60.0, "days": 2}
    assert info.root_url == "s3://some-bucket/S5P"
    assert storage.options_for("s3://some-bucket/S5P/2021/04/12/x.nc")["anon"] is True


@pytest.mark.parametrize("stac, problem", [
    ("https://stac.example.org", r"stac must be a mapping such as \{url: https://..., collection: ...\}"),
    ({"url": "ftp://host/stac", "collection": "c"}, r"stac: url must be the http\(s\) address of a STAC API"),
    ({"url": "https://host/stac"}, r"stac: collection must name the API's collection of the granules, not None"),
    ({"url": "https://host/stac", "collection": "c", "filter": "x"}, r"stac has unknown keys filter"),
])
def test_a_stac_entry_is_checked(tmp_path, stac, problem):
    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    doc["entries"]["tropomi_so2"]["metadata"]["stac"] = stac
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"product 'tropomi_so2': " + problem):
        catalog.open_catalog(broken)


def test_a_stac_entry_and_a_root_per_platform(tmp_path):
    from app.data import storage

    doc = yaml.safe_load((REPO / "catalogs" / "tiny.yaml").read_text())
    doc["entries"]["tropomi_so2"]["metadata"]["stac"] = {"url": "https://stac.example.org/v1/",
                                                         "collection": "s5p-so2", "asset": "product"}
    abi = doc["entries"]["geo_abi_l1b"]["metadata"]
    abi["partition"] = "{time:%Y/%j/%H}/"
    abi["platforms"] = {"goes18": {"platform": "G18"}, "goes19": {"platform": "G19"}}
    doc["data"]["geo_abi_l1b_files"]["kwargs"]["url"] = "s3://noaa-{platform}/ABI-L1b-RadF/**/OR_ABI-*.nc"
    doc["data"]["geo_abi_l1b_files"]["kwargs"]["storage_options"] = {"anon": True}
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(doc))
    cat = catalog.open_catalog(path)
    assert catalog.product_info(cat, "tropomi_so2").stac == {"url": "https://stac.example.org/v1",
                                                             "collection": "s5p-so2", "asset": "product"}
    assert catalog.product_info(cat, "geo_abi_l1b").root_url == "s3://noaa-{platform}/ABI-L1b-RadF"
    # each platform's bucket reads with the product's options
    assert storage.options_for("s3://noaa-goes18/ABI-L1b-RadF/2025/189/15/x.nc")["anon"] is True
    assert storage.options_for("s3://noaa-goes19/ABI-L1b-RadF/2025/189/15/x.nc")["anon"] is True
    abi["partition"] = "{platform}/{time:%Y/%j/%H}/"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"name it once, in the URL or in the partition, not in both"):
        catalog.open_catalog(path)
