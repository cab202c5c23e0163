"""Intake v2 catalogues: the only module of Fumarole that imports intake.

A Fumarole catalogue (see ``catalogs/sample.yaml``) describes, per product:

- ``data/<product>_files``: every granule of the product, as a glob URL under the archive root (local folder or
  fsspec URL). Swaths of different shapes do not make one dataset, so this description is listed and read file by
  file by the granule index (:mod:`app.data.index`), not by an intake reader;
- ``data/<product>_granule``: one granule, whose URL is the catalogue parameter ``granule``;
- ``entries/<product>``: the intake reader of one granule (the raw file: :class:`XArrayDatasetReader` on the
  netCDF group ``PRODUCT`` for TROPOMI, :class:`HDF4SDSReader` for CALIOP) whose metadata carry the product's
  labels, units, plot defaults, file-name pattern and the name of the Fumarole reader that returns the canonical
  dataset.

Everything the rest of Fumarole needs is in :class:`ProductInfo`; only this module touches intake objects.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import intake
import yaml
from intake.readers import datatypes
from intake.readers.readers import FileReader
from intake.readers.user_parameters import set_values

from app.core.locks import HDF_LOCK
from app.data import storage
from app.data.errors import CatalogError
from app.data.filenames import PATTERNS, FilenamePattern
from app.paths import CATALOGS, default_archive

__all__ = [
    "CATALOGS_DIR",
    "HDF4",
    "HDF4SDSReader",
    "ProductInfo",
    "archive_root",
    "catalog_path",
    "granule_reader",
    "normalise_url",
    "open_catalog",
    "product_info",
    "products",
    "split_glob",
    "wind_spec",
    "WindSpec",
]

#: The ``catalogs/`` folder (of the repository, or shipped in the installed package: :mod:`app.paths`).
CATALOGS_DIR = CATALOGS
#: Environment variable naming the catalogue to open by default (a path, a URL or a name in ``catalogs/``).
CATALOG_ENV = "FUMAROLE_CATALOG"
CATALOG_VERSION = 1
_REQUIRED = ("product", "files", "reader", "labels", "units", "plot_defaults")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ProductInfo:
    """What Fumarole knows of one product of a catalogue.

    Attributes
    ----------
    product : the product id (``tropomi_so2``, ``caliop_l1b``).
    title : a human title.
    platform, instrument : e.g. ``S5P``/``TROPOMI``, ``CALIPSO``/``CALIOP``.
    root_url : the folder under which the product's granules are (a local absolute path, or an fsspec URL).
    glob : the glob, relative to ``root_url``, that lists every granule (``*/*/*/S5P_*_L2__SO2____*.nc``).
    pattern : the file-name pattern (trollsift syntax, see :mod:`app.data.filenames`).
    reader : the Fumarole reader returning canonical data: a key of :data:`app.data.readers.READERS`.
    entry : the catalogue entry that reads one granule with intake.
    labels, units : per canonical variable.
    defaults : plot defaults (``variable``, ``clim``, ``log``, ``cmap``, ...).
    storage_options : fsspec options for ``root_url`` (credentials stay out of Fumarole: use the fsspec config).
    catalog : the path or URL of the catalogue the product came from.
    platforms : GEO products: the catalogue's overrides of ``assets/platforms.yaml`` (platform id -> satellite,
        ring_position, sub_lon, from/until), applied by :func:`app.data.geo.constellation`.
    root_url may name ``{platform}`` (``s3://noaa-{platform}/ABI-L1b-RadF``: NOAA's bucket per satellite); the
        keys of ``platforms`` then fill it, one tree per platform (:mod:`app.data.geo_slots`).
    partition : the time-partitioned folder layout below ``root_url`` (metadata ``partition``), e.g.
        ``{platform}/{time:%Y/%m/%d}/`` or NOAA's ``ABI-L1b-RadF/{time:%Y/%j/%H}/``: listings touch only the folders
        around the times asked for. Empty: the product is listed whole by ``glob``.
    live : metadata ``live``: ``{poll_seconds: N}`` for a near-real-time source whose newest folders are re-listed at
        most every N seconds; empty for an archive that does not grow.
    stac : metadata ``stac``: ``{url, collection, asset}`` of a STAC API whose search gives each granule's footprint,
        times and file (the asset's href) without opening the files (:mod:`app.data.index`); empty: the files are
        listed and their headers read.
    """

    product: str
    title: str
    platform: str
    instrument: str
    root_url: str
    glob: str
    pattern: str
    reader: str
    entry: str
    labels: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    catalog: str = ""
    platforms: Mapping[str, Any] = field(default_factory=dict)
    partition: str = ""
    live: Mapping[str, Any] = field(default_factory=dict)
    stac: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The glob URL of every granule: ``root_url/glob``."""
        return f"{self.root_url.rstrip('/')}/{self.glob}"

    @property
    def is_local(self) -> bool:
        """Whether the granules are on the local file system."""
        return "://" not in self.root_url and "::" not in self.root_url

    def filename_pattern(self) -> FilenamePattern:
        """The compiled file-name pattern (with the registry's constants such as ``platform``)."""
        known = PATTERNS.get(self.product)
        if known is not None and known.pattern == self.pattern:
            return known
        return FilenamePattern(
            product=self.product,
            pattern=self.pattern,
            description=known.description if known else self.title,
            constants=dict(known.constants) if known else {"platform": self.platform},
            derive=known.derive if known else None,
        )


# --- an intake datatype and reader for HDF4 (CALIOP), which intake does not have ----------------------------


class HDF4(datatypes.FileData):
    """HDF4 file (e.g. CALIOP L1B): scientific data sets (SDS) and Vdata tables."""

    filepattern = "(hdf4?|h4)$"
    structure = {"array", "table"}
    magic = {b"\x0e\x03\x13\x01"}


class HDF4SDSReader(FileReader):
    """The scientific data sets of an HDF4 file as an ``xarray.Dataset``, raw (no scaling or fill masking).

    ``variables`` limits the SDS read (all by default). Remote files are copied to the per-user cache first (pyhdf
    needs a local file; :func:`app.data.storage.local_copy`).
    """

    output_instance = "xarray:Dataset"
    implements = {HDF4}
    imports = {"pyhdf", "xarray"}

    def _read(self, data, variables=None, **kw):
        import xarray as xr
        from pyhdf.SD import SD, SDC

        url = data.url
        if data.storage_options:
            storage.register(url.rsplit("/", 1)[0], data.storage_options)
        with storage.local_copy(url) as local, HDF_LOCK:  # HDF4 is not thread-safe (app.core.locks)
            return self._read_sds(SD(local, SDC.READ), variables, xr)

    @staticmethod
    def _read_sds(sd, variables, xr):
        try:
            names = list(variables) if variables is not None else list(sd.datasets())
            dims: dict[str, int] = {}
            arrays = {}
            for name in names:
                sds = sd.select(name)
                shape = sds.info()[2]
                shape = [shape] if isinstance(shape, int) else list(shape)
                sds_dims = []
                for i, n in enumerate(shape):
                    dim = sds.dim(i).info()[0]
                    if dims.setdefault(dim, n) != n:  # same name, another length: keep them apart
                        dim = f"{name}_dim{i}"
                        dims[dim] = n
                    sds_dims.append(dim)
                arrays[name] = (sds_dims, sds.get(), sds.attributes())
                sds.endaccess()
            return xr.Dataset(arrays, attrs=sd.attributes())
        finally:
            sd.end()


# --- opening catalogues ---------------------------------------------------------------------------------------


#: Kiosk playlists live beside the catalogues (``*.playlist.yaml``) but are not catalogues.
PLAYLIST_SUFFIX = ".playlist.yaml"


def _available_names() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in CATALOGS_DIR.glob("*.yaml") if not p.name.endswith(PLAYLIST_SUFFIX))


def catalog_path(path_or_url: str | os.PathLike | None = None) -> str:
    """The path or URL of the catalogue to open: a name in ``catalogs/`` ("sample", "tiny"), a path or a URL.

    ``None`` means the environment variable ``FUMAROLE_CATALOG``, else ``catalogs/sample.yaml``.
    """
    if path_or_url is None:
        path_or_url = os.environ.get(CATALOG_ENV) or "sample"
    text = os.fspath(path_or_url)
    if "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml")):
        return str(CATALOGS_DIR / f"{text}.yaml")
    if "://" in text or "::" in text:
        return text
    return str(Path(text).expanduser().resolve())


def open_catalog(path_or_url: str | os.PathLike | None = None) -> intake.Catalog:
    """Open a Fumarole catalogue (Intake v2) and check every product entry in it.

    Raises :class:`~app.data.errors.CatalogError` when the catalogue does not exist, is not valid YAML, is not an
    Intake v2 catalogue, or a product entry lacks what Fumarole needs; the message names the file and what is
    available or missing.
    """
    path = catalog_path(path_or_url)
    try:
        fs, fs_path = fsspec.core.url_to_fs(path)
        exists = fs.exists(fs_path)
    except (OSError, ValueError, ImportError) as e:
        raise CatalogError(f"catalogue {path} cannot be reached: {e}") from e
    if not exists:
        raise CatalogError(
            f"catalogue {path} does not exist; give a path or URL of a .yaml file, or one of the catalogue names "
            f"in {CATALOGS_DIR}: {', '.join(_available_names())}"
        )
    try:
        cat = intake.from_yaml_file(path)
    except yaml.YAMLError as e:
        raise CatalogError(f"catalogue {path} is not valid YAML: {e}") from e
    except OSError as e:
        raise CatalogError(f"catalogue {path} cannot be read: {e}") from e
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CatalogError(
            f"catalogue {path} is not an Intake v2 catalogue ('version: 2' with the sections metadata, "
            f"user_parameters, aliases, data and entries): {type(e).__name__}: {e}"
        ) from e
    _follow_sample_archive(cat, path)
    version = (cat.metadata or {}).get("fumarole_catalog_version", CATALOG_VERSION)
    if version != CATALOG_VERSION:
        raise CatalogError(
            f"catalogue {path} has fumarole_catalog_version {version!r}; this Fumarole reads version {CATALOG_VERSION}"
        )
    if not products(cat):
        raise CatalogError(f"catalogue {path} has no product entry (an entry whose metadata has 'product')")
    for product in products(cat):
        product_info(cat, product)  # raises if an entry lacks something
    return cat


def _follow_sample_archive(cat: intake.Catalog, path: str) -> None:
    """The built-in sample catalogue reads the archive where ``fumarole sample`` writes it.

    That is :func:`app.paths.default_archive`: ``FUMAROLE_ARCHIVE`` if set, else ``data/sample`` of the checkout
    (or the user's data folder in an install). Every URL of the catalogue that starts with its ``archive`` template
    is moved to that folder; any other catalogue is left as it is written.
    """
    if os.path.realpath(path) != os.path.realpath(CATALOGS_DIR / "sample.yaml"):
        return
    template = (cat.metadata or {}).get("archive")
    if not template:
        return
    root = str(default_archive())
    cat.metadata["archive"] = root
    for desc in cat.data.values():
        url = desc.kwargs.get("url")
        if isinstance(url, str) and url.startswith(template):
            desc.kwargs["url"] = root + url[len(template):]


def _source(cat: intake.Catalog) -> str:
    return str(getattr(cat.user_parameters.get("CATALOG_PATH"), "default", cat.user_parameters.get("CATALOG_PATH")))


def products(cat: intake.Catalog) -> list[str]:
    """The product ids of the catalogue, in the order of its entries."""
    return [name for name, entry in cat.entries.items() if "product" in (entry.metadata or {})]


def _template(cat: intake.Catalog, value: Any) -> Any:
    """Expand ``{CATALOG_DIR}``-style templates in a metadata value, as intake does in kwargs."""
    return set_values(cat.user_parameters, {"value": value})["value"]


def normalise_url(url: str) -> str:
    """A local absolute path for ``file://`` URLs and plain paths, the URL (with ``..`` resolved) otherwise."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" not in url and "::" not in url:
        return os.path.normpath(os.path.abspath(os.path.expanduser(url)))
    head, sep, rest = url.rpartition("://")
    return head + sep + posixpath.normpath(rest)


def split_glob(url: str) -> tuple[str, str]:
    """Split a glob URL into the folder before the first glob character and the glob after it."""
    parts = url.split("/")
    for i, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return "/".join(parts[:i]), "/".join(parts[i:])
    return url.rstrip("/"), ""


def product_info(cat: intake.Catalog, product: str) -> ProductInfo:
    """What Fumarole needs to know of one product of the catalogue.

    Raises :class:`~app.data.errors.CatalogError` for an unknown product (listing the available ones) or an entry
    that lacks a required metadata field.
    """
    source = _source(cat)
    if product not in products(cat):
        raise CatalogError(
            f"catalogue {source} has no product {product!r}; available products: {', '.join(products(cat))}"
        )
    meta = dict(cat.entries[product].metadata)
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise CatalogError(f"catalogue {source}: product {product!r} lacks the metadata {', '.join(missing)}")
    if meta["product"] != product:
        raise CatalogError(
            f"catalogue {source}: entry {product!r} says product: {meta['product']!r}; the two must be equal"
        )
    files = meta["files"]
    if files not in cat.data:
        raise CatalogError(
            f"catalogue {source}: product {product!r} names files: {files!r}, which is not in the data section "
            f"(data entries: {', '.join(cat.data)})"
        )
    try:
        files_data = cat[files]
    except Exception as e:  # intake raises many kinds; say which entry is wrong
        raise CatalogError(f"catalogue {source}: data entry {files!r} cannot be built: {e}") from e
    root, glob = split_glob(normalise_url(files_data.url))
    pattern = meta.get("filename_pattern") or (PATTERNS[product].pattern if product in PATTERNS else None)
    if pattern is None:
        raise CatalogError(
            f"catalogue {source}: product {product!r} has no filename_pattern and is not a product Fumarole knows "
            f"({', '.join(PATTERNS)})"
        )
    if not glob:
        glob = "**/" + FilenamePattern(product, pattern, product).glob
    options = dict(files_data.storage_options or {})
    platforms = _platforms_map(source, product, meta.get("platforms"))
    partition = _partition(source, product, meta.get("partition"))
    for one_root in [root, *_platform_roots(source, product, root, partition, platforms)]:
        storage.register(one_root, options)  # every read under this root uses them (app.data.storage)
    return ProductInfo(
        product=product,
        title=meta.get("title", product),
        platform=meta.get("platform", ""),
        instrument=meta.get("instrument", ""),
        root_url=root,
        glob=glob,
        pattern=pattern,
        reader=meta["reader"],
        entry=product,
        labels=dict(meta["labels"]),
        units=dict(meta["units"]),
        defaults=dict(meta["plot_defaults"]),
        storage_options=options,
        catalog=source,
        platforms=platforms,
        partition=partition,
        live=_live(source, product, meta.get("live")),
        stac=_stac(source, product, meta.get("stac")),
    )


def archive_root(cat: intake.Catalog) -> str:
    """The root of the archive (``metadata.archive``), where the granule index is kept by default."""
    archive = (cat.metadata or {}).get("archive")
    if archive:
        return normalise_url(_template(cat, archive))
    roots = [product_info(cat, p).root_url for p in products(cat)]
    return posixpath.commonpath(roots) if all("://" not in r for r in roots) else roots[0]


@dataclass(frozen=True)
class WindSpec:
    """The catalogue's wind source for the flux (:mod:`app.data.wind` reads it).

    ``kind`` is ``constant``, ``csv`` or ``era5``; ``url`` the file (a local absolute path or an fsspec URL; None
    for a constant); ``speed_ms`` and ``direction_deg`` those of a constant; ``entry`` the catalogue entry's name,
    ``title`` its title; ``catalog`` the catalogue's path or URL.
    """

    kind: str
    entry: str
    title: str
    catalog: str
    url: str | None = None
    speed_ms: Any = None
    direction_deg: Any = None


WIND_KINDS = ("constant", "csv", "era5")


def _wind_entry(cat: intake.Catalog) -> str | None:
    """The name of the catalogue's wind entry: ``wind``, else the first entry with ``metadata.wind_source``."""
    named = [name for name, entry in cat.entries.items() if "wind_source" in (entry.metadata or {})]
    if not named:
        return None
    return "wind" if "wind" in named else named[0]


def wind_spec(cat: intake.Catalog) -> WindSpec | None:
    """The catalogue's wind source (the entry whose metadata has ``wind_source``), or None when it has none.

    A wind entry is one of (see ``catalogs/real-archive.template.yaml``): ``wind_source: constant`` with the
    reader's keywords ``speed_ms`` (and ``direction_deg``); ``wind_source: csv`` or ``era5`` with ``files:`` naming
    the data entry of the file. Raises CatalogError for an unknown kind, a constant without a speed, or a file
    entry that is missing.
    """
    name = _wind_entry(cat)
    if name is None:
        return None
    source = _source(cat)
    entry = cat.entries[name]
    meta = dict(entry.metadata or {})
    kind = meta["wind_source"]
    title = str(meta.get("title", name))
    if kind not in WIND_KINDS:
        raise CatalogError(f"catalogue {source}: entry {name!r} has wind_source: {kind!r}; known kinds: "
                           f"{', '.join(WIND_KINDS)}")
    if kind == "constant":
        kwargs = dict(getattr(entry, "kwargs", {}) or {})
        speed = kwargs.get("speed_ms", meta.get("speed_ms"))
        if speed is None:
            raise CatalogError(f"catalogue {source}: the constant wind entry {name!r} has no speed_ms")
        return WindSpec(kind, name, title, source, None, speed, kwargs.get("direction_deg", meta.get("direction_deg")))
    files = meta.get("files")
    if files not in cat.data:
        raise CatalogError(f"catalogue {source}: the {kind} wind entry {name!r} names files: {files!r}, which is not "
                           f"in the data section (data entries: {', '.join(cat.data)})")
    try:
        data = cat[files]
        url = normalise_url(data.url)
    except Exception as e:  # intake raises many kinds; say which entry is wrong
        raise CatalogError(f"catalogue {source}: data entry {files!r} cannot be built: {e}") from e
    storage.register(url.rsplit("/", 1)[0], dict(getattr(data, "storage_options", None) or {}))
    return WindSpec(kind, name, title, source, url)


def _partition(source: str, product: str, found) -> str:
    """A product's ``partition:`` metadata: a relative folder template whose only field is ``{time:<strftime>}``.

    E.g. ``{time:%Y/%m/%d}/`` (TROPOMI's day folders) or ``{platform}/{time:%Y/%j/%H}/``. Empty when absent.
    """
    if found is None or found == "":
        return ""
    text = str(found)
    if not isinstance(found, str) or "{time:" not in text or text.startswith("/") or ".." in text.split("/"):
        raise CatalogError(f"catalogue {source}: product {product!r}: partition must be a relative folder template "
                           f"with a {{time:<strftime format>}} field, e.g. '{{time:%Y/%m/%d}}/', not {found!r}")
    return text if text.endswith("/") else text + "/"


#: The field of a product's root that names the platform's own bucket (``s3://noaa-{platform}/ABI-L1b-RadF``).
PLATFORM_FIELD = "{platform}"
_FOLDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def _platform_roots(source: str, product: str, root: str, partition: str, platforms: Mapping) -> list[str]:
    """The roots of a product whose root names ``{platform}``, one per key of its ``platforms:`` map.

    NOAA keeps each satellite in its own bucket: ``s3://noaa-{platform}/ABI-L1b-RadF`` with ``platforms:
    {goes18: {platform: G18}, goes19: {platform: G19}}`` reads ``s3://noaa-goes18/ABI-L1b-RadF`` and
    ``s3://noaa-goes19/ABI-L1b-RadF``. Such a product needs a ``partition`` (it is read by
    :mod:`app.data.geo_slots`, never listed whole) that does not name ``{platform}`` again, and map keys fit for
    a bucket name. Empty for a root without the field.
    """
    if PLATFORM_FIELD not in root:
        return []
    where = f"catalogue {source}: product {product!r}: its files' URL names {PLATFORM_FIELD}"
    if root.count(PLATFORM_FIELD) != 1 or PLATFORM_FIELD in partition:
        raise CatalogError(f"{where}; name it once, in the URL or in the partition, not in both")
    if not partition:
        raise CatalogError(f"{where}, so it needs a partition (its time folders, e.g. '{{time:%Y/%j/%H}}/')")
    if not platforms:
        raise CatalogError(f"{where}: list the platforms it takes in its platforms: map, whose keys fill the field "
                           "(goes18: {platform: G18})")
    bad = [str(k) for k in platforms if not _FOLDER_ID.fullmatch(str(k))]
    if bad:
        raise CatalogError(f"{where}: the platforms: keys {', '.join(map(repr, bad))} cannot be put in a URL "
                           "(letters, digits, '.', '_' and '-' only)")
    return [root.replace(PLATFORM_FIELD, str(k)) for k in platforms]


def _live(source: str, product: str, found) -> dict:
    """A product's ``live:`` metadata: ``{poll_seconds: N}`` (N >= 10) for a near-real-time source; ``{}`` if absent."""
    if found is None or found is False or found == {}:
        return {}
    if found is True:
        found = {}
    if not isinstance(found, Mapping):
        raise CatalogError(f"catalogue {source}: product {product!r}: live must be a mapping such as "
                           f"{{poll_seconds: 300}}, not {found!r}")
    unknown = sorted(set(found) - {"poll_seconds", "days"})
    if unknown:
        raise CatalogError(f"catalogue {source}: product {product!r}: live has unknown keys {', '.join(unknown)} "
                           f"(known: poll_seconds, days)")
    try:
        poll = float(found.get("poll_seconds", 300))
        days = int(found.get("days", 2))
    except (TypeError, ValueError):
        raise CatalogError(f"catalogue {source}: product {product!r}: live poll_seconds and days must be numbers, "
                           f"not {dict(found)!r}") from None
    if poll < 10 or not 1 <= days <= 31:
        raise CatalogError(f"catalogue {source}: product {product!r}: live needs poll_seconds >= 10 and days from "
                           f"1 to 31, not {dict(found)!r}")
    return {"poll_seconds": poll, "days": days}


def _stac(source: str, product: str, found) -> dict:
    """A product's ``stac:`` metadata: ``{url: <STAC API>, collection: <id>, asset: <key>}``; ``{}`` if absent.

    ``url`` is the API's landing page (``https://``, or ``http://`` for a server of your own); ``asset`` the key of
    the granule file among each item's assets (default: the asset whose file name fits the product's pattern).
    """
    if not found:
        return {}
    where = f"catalogue {source}: product {product!r}: stac"
    if not isinstance(found, Mapping):
        raise CatalogError(f"{where} must be a mapping such as {{url: https://..., collection: ...}}, not {found!r}")
    unknown = sorted(set(found) - {"url", "collection", "asset"})
    if unknown:
        raise CatalogError(f"{where} has unknown keys {', '.join(unknown)} (known: url, collection, asset)")
    url, collection = found.get("url"), found.get("collection")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise CatalogError(f"{where}: url must be the http(s) address of a STAC API, not {url!r}")
    if not isinstance(collection, str) or not collection:
        raise CatalogError(f"{where}: collection must name the API's collection of the granules, not {collection!r}")
    asset = found.get("asset")
    if asset is not None and not isinstance(asset, str):
        raise CatalogError(f"{where}: asset must be the key of the granule's file among an item's assets")
    return {"url": url.rstrip("/"), "collection": collection, **({"asset": asset} if asset else {})}


def _platforms_map(source: str, product: str, found) -> dict:
    """A product's ``platforms:`` metadata as a dict (empty when absent); anything but a mapping is refused."""
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise CatalogError(f"catalogue {source}: product {product!r}: platforms must map platform ids to their "
                           f"satellite, ring_position, sub_lon, not {found!r}")
    return dict(found)


def granule_reader(cat: intake.Catalog, product: str, path: str | os.PathLike):
    """An intake reader of one granule of ``product`` (``.read()`` returns the raw file as an xarray Dataset)."""
    product_info(cat, product)  # unknown product -> CatalogError
    url = os.fspath(path)
    if "://" not in url and "::" not in url:
        url = os.path.abspath(url)
    return cat(granule=url)[product]
