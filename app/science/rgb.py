"""RGB composites of geostationary imagery (Ash, Dust, Natural Colour, True Colour, Day Microphysics, SO2).

The recipes are data, in ``assets/recipes/rgb.yaml``: for each composite and sensor family three channel
expressions over *generic* channel names (see :mod:`app.data.geo_bands`), their stretch range and gamma, the stretch
type, and the satpy composite and enhancement each variant reproduces. This module only evaluates them, with numpy,
on a canonical GeoScene (an ``xarray.Dataset`` of ``(y, x)`` variables named by generic channel, brightness
temperatures in K, reflectances in %)::

    rgb = compose(scene, "ash")            # (band=3, y, x) float32 in 0–1, NaN off the disk
    rgba = to_rgba_uint8(rgb)              # (y, x, 4) uint8, alpha 0 where a band has no value
    available_composites(scene)            # ["ash", "dust", ...]: those whose channels the scene has
    describe("ash", "abi")                 # title, description, legend, one line per band

What satpy does, and what we do
-------------------------------
The reference is satpy 0.60 (``etc/composites/*.yaml``, ``etc/enhancements/{generic,abi}.yaml``). The order of
operations is satpy's: channel modifiers and arithmetic (differences, weighted sums), then the enhancement — a
"crude" stretch ``(x − min) / (max − min)`` (satpy computes it in float32 as ``x·scale + offset``, and so do we) or
the logarithmic CIRA stretch of true colour —, then the gamma ``x ** (1/γ)`` applied to values clipped at 0, then
the clip to 0–1 that satpy's image writers apply. A pixel where one band has no value has none in any band (satpy's
"common channel mask"), e.g. Day Microphysics beyond SZA 88°.

- **Sun-zenith correction** (``sunz_corrected(ch)`` in a recipe), as satpy's ``SunZenithCorrector``: reflectance
  divided by cos(SZA) up to 88°, a correction fading to none at 95°, 0 beyond. The sun is placed at the time satpy's
  reader calls ``start_time`` (ABI: scan start; AHI, SEVIRI: nominal slot; the ``sensors`` block of the YAML), with
  :func:`pyorbital.astronomy.cos_zen` at the pixel's longitude/latitude in float32, as satpy computes them.
- **True colour** mirrors satpy's ``true_color_nocorr``: reflectances with neither Rayleigh correction (satpy's
  needs look-up tables downloaded at run time) nor sun-zenith correction. We chose it over ABI's ``true_color_raw``
  (sun-zenith corrected, no Rayleigh) because AHI has no such variant and one sensor's image should look like the
  next one's in the ring and the mosaic.
- **3.9 µm reflectance** (``nir_reflectance(ch)``, Day Microphysics): pyspectral's method as satpy's
  ``NIRReflectance`` calls it — CO2 correction of the thermal part from the 13.4 µm channel (Rosenfeld), SZA held
  at 85° beyond 85°, no value beyond 88° — with monochromatic Planck radiances and the E-490 solar irradiance at
  the band's central wavelength, where pyspectral integrates over the band's spectral response (which it downloads
  at run time). pyspectral is not installed here, so satpy cannot compute this channel at all.
- **Self-sharpening**: satpy builds its ABI/AHI true and natural colour with ``SelfSharpenedRGB``, which multiplies
  two bands by the ratio of the third to its 2×2 block mean. That is meant for a band at twice the resolution of the
  others; on one grid (our readers average finer bands onto the coarsest) it only adds colour fringes at sharp edges
  (on the demo slots 20–40 % of the pixels move by more than 1/255, up to 90/255), and it does not commute with
  regridding to the screen. :func:`compose` skips it unless ``sharpen=True``, which mirrors satpy exactly (blocks
  aligned on the scene's first row and column).

Speed: everything is vectorised in float32, in place, over row blocks run on two threads (numpy releases the GIL);
an Ash RGB of a 5424 × 5424 full disk (random data) took 0.18–0.38 s (best of 7) on 2 cores shared with other work.
Composites with a sun-zenith term also compute every pixel's longitude/latitude (pyproj; cached per grid) and
cos(SZA): seconds on a full disk, a fraction of a second on a 1000-pixel-wide view.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

from app.core.cache import cached
from app.data.errors import FumaroleError, UserInputError
from app.data.geo_bands import C1_UM, C2_UM, GENERIC_CHANNELS, band_for_generic
from app.paths import ASSETS

__all__ = [
    "RECIPES_PATH",
    "RecipeError",
    "ChannelRecipe",
    "Variant",
    "Recipe",
    "load_recipes",
    "available_composites",
    "describe",
    "compose",
    "to_rgba_uint8",
    "cos_solar_zenith",
    "sun_zenith_correction",
    "nir_reflectance",
    "solar_irradiance_39",
    "self_sharpen",
]

#: The recipe file.
RECIPES_PATH = ASSETS / "recipes" / "rgb.yaml"

#: Modifiers a recipe expression may call, each on one channel.
FUNCTIONS = ("sunz_corrected", "nir_reflectance")
STRETCHES = ("crude", "cira")
BAND_NAMES = ("red", "green", "blue")

# satpy's constants (modifiers/geometry.py, modifiers/angles.py, enhancements/contrast.py; pyspectral).
SUNZ_CORRECTION_LIMIT_DEG = 88.0
SUNZ_MAX_DEG = 95.0
CIRA_LOG_ROOT = np.log10(0.0223, dtype=np.float32)
CIRA_DENOM = (np.float32(1.0) - CIRA_LOG_ROOT) * np.float32(0.75)
NIR_EPSILON = 0.005
#: Pixels per block of rows computed at once (the blocks are shared among threads).
_BLOCK_PIXELS = 1_000_000


class RecipeError(FumaroleError):
    """The recipe file is malformed: names the recipe, variant and field at fault."""


# --------------------------------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class ChannelRecipe:
    """One band of a composite: an expression over generic channels, a stretch range and a gamma."""

    expr: str
    tree: ast.expr = field(repr=False, compare=False)
    min: float | None = None
    max: float | None = None
    gamma: float = 1.0

    @property
    def channels(self) -> tuple[str, ...]:
        """The generic channels the expression reads, in order of appearance."""
        return _names(self.tree)

    @property
    def functions(self) -> tuple[str, ...]:
        """The modifiers the expression calls."""
        return tuple(dict.fromkeys(n.func.id for n in ast.walk(self.tree) if isinstance(n, ast.Call)))

    @property
    def units(self) -> str:
        """``K`` for brightness temperatures and their differences, ``%`` for reflectances."""
        if "nir_reflectance" in self.functions:
            return "%"
        return "%" if all(GENERIC_CHANNELS[c].is_solar for c in self.channels) else "K"


@dataclass(frozen=True)
class Variant:
    """A recipe as one sensor family makes it: three bands, stretch, and the satpy composite it reproduces."""

    sensors: tuple[str, ...]
    generic: bool
    flavour: str
    satpy_composite: str | None
    satpy_enhancement: str | None
    stretch: str
    bands: tuple[ChannelRecipe, ChannelRecipe, ChannelRecipe]
    sharpen: str | None = None
    nir: dict = field(default_factory=dict, compare=False)

    @property
    def channels(self) -> tuple[str, ...]:
        """Every generic channel the composite needs (the 3.9 µm reflectance's thermal channel included)."""
        names = [c for b in self.bands for c in b.channels]
        if self.uses("nir_reflectance"):
            names.append(self.nir["thermal"])
        return tuple(dict.fromkeys(names))

    @property
    def optional_channels(self) -> tuple[str, ...]:
        """Channels used when present (the CO2 band of the 3.9 µm reflectance)."""
        co2 = self.nir.get("co2") if self.uses("nir_reflectance") else None
        return (co2,) if co2 else ()

    def uses(self, function: str) -> bool:
        """True if a band calls ``function`` (``sunz_corrected``, ``nir_reflectance``)."""
        return any(function in b.functions for b in self.bands)

    @property
    def needs_sun(self) -> bool:
        """True if the composite needs the solar zenith angle."""
        return any(self.uses(f) for f in FUNCTIONS)


@dataclass(frozen=True)
class Recipe:
    """An RGB composite: title, description, legend, and its variants by sensor family."""

    name: str
    title: str
    description: str
    legend: str
    variants: tuple[Variant, ...]

    @property
    def sensors(self) -> tuple[str, ...]:
        """Sensors with a variant of their own."""
        return tuple(s for v in self.variants for s in v.sensors)

    def variant(self, sensor: str | None) -> Variant:
        """The variant for ``sensor``; the generic one for a sensor none names; UserInputError if there is none."""
        for v in self.variants:
            if sensor in v.sensors:
                return v
        for v in self.variants:
            if v.generic:
                return v
        raise UserInputError(f"the {self.title} has no recipe for {_sensor_label(sensor)}; it exists for "
                             f"{', '.join(s.upper() for s in self.sensors)}")


def _sensor_label(sensor) -> str:
    return f"sensor {sensor.upper()}" if sensor else "a scene without a 'sensor' attribute"


def _names(tree: ast.AST) -> tuple[str, ...]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            continue
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            out.append(node.id)
    return tuple(dict.fromkeys(out))


def _parse_expr(expr: str, where: str) -> ast.expr:
    """Parse and check a channel expression: numbers, generic channels, + − *, and the modifier functions."""
    try:
        tree = ast.parse(str(expr).strip(), mode="eval").body
    except SyntaxError as exc:
        raise RecipeError(f"{where}: expression {expr!r} is not valid ({exc.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords \
                    or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise RecipeError(f"{where}: in {expr!r}, only {', '.join(f + '(channel)' for f in FUNCTIONS)} "
                                  f"may be called")
        elif isinstance(node, ast.Name):
            if node.id not in GENERIC_CHANNELS and node.id not in FUNCTIONS:
                raise RecipeError(f"{where}: {node.id!r} in {expr!r} is not a generic channel; channels are "
                                  f"{', '.join(GENERIC_CHANNELS)}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise RecipeError(f"{where}: {node.value!r} in {expr!r} is not a number")
        elif not isinstance(node, ast.BinOp | ast.UnaryOp | ast.Add | ast.Sub | ast.Mult | ast.USub | ast.UAdd
                                  | ast.Load):
            raise RecipeError(f"{where}: {expr!r} may only add, subtract and multiply channels and numbers")
    return tree


def _channel(spec, stretch: str, where: str) -> ChannelRecipe:
    if not isinstance(spec, dict) or "expr" not in spec:
        raise RecipeError(f"{where}: needs a mapping with 'expr' (and 'min', 'max', 'gamma')")
    unknown = set(spec) - {"expr", "min", "max", "gamma"}
    if unknown:
        raise RecipeError(f"{where}: unknown field {', '.join(sorted(unknown))}")
    lo, hi = spec.get("min"), spec.get("max")
    if stretch == "crude" and (lo is None or hi is None or float(lo) == float(hi)):
        raise RecipeError(f"{where}: a crude stretch needs different 'min' and 'max'")
    gamma = float(spec.get("gamma", 1.0))
    if gamma <= 0:
        raise RecipeError(f"{where}: gamma must be positive, got {gamma}")
    return ChannelRecipe(str(spec["expr"]), _parse_expr(spec["expr"], where),
                         None if lo is None else float(lo), None if hi is None else float(hi), gamma)


def _variant(spec: dict, where: str) -> Variant:
    stretch = spec.get("stretch", "crude")
    if stretch not in STRETCHES:
        raise RecipeError(f"{where}: unknown stretch {stretch!r}; stretches are {', '.join(STRETCHES)}")
    bands = tuple(_channel(spec.get(b), stretch, f"{where}, {b}") for b in BAND_NAMES)
    sharpen = spec.get("sharpen")
    if sharpen is not None and sharpen not in BAND_NAMES:
        raise RecipeError(f"{where}: sharpen must be one of {', '.join(BAND_NAMES)}, got {sharpen!r}")
    satpy = spec.get("satpy") or {}
    v = Variant(tuple(spec.get("sensors", ())), bool(spec.get("generic", False)), str(spec.get("flavour", "")),
                satpy.get("composite"), satpy.get("enhancement"), stretch, bands, sharpen,
                dict(spec.get("nir_reflectance") or {}))
    if v.uses("nir_reflectance") and v.nir.get("thermal") not in GENERIC_CHANNELS:
        raise RecipeError(f"{where}: nir_reflectance(...) needs 'nir_reflectance: {{thermal: <channel>}}'")
    return v


# a handful of recipe files of a few KB each: a constant table, so lru_cache (bounded by count) is enough
@lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict[str, Recipe], dict]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"{path}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("recipes"), dict):
        raise RecipeError(f"{path}: has no 'recipes' mapping")
    recipes = {}
    for name, spec in data["recipes"].items():
        where = f"{Path(path).name}: recipe {name!r}"
        variants = tuple(_variant(v, f"{where}, variant {i + 1}") for i, v in enumerate(spec.get("variants", ())))
        if not variants:
            raise RecipeError(f"{where}: has no variants")
        recipes[name] = Recipe(name, str(spec.get("title", name)), " ".join(str(spec.get("description", "")).split()),
                               " ".join(str(spec.get("legend", "")).split()), variants)
    settings = {"sensors": data.get("sensors") or {}, "constants": data.get("constants") or {}}
    return recipes, settings


def load_recipes(path: str | Path | None = None) -> dict[str, Recipe]:
    """The RGB recipes (name -> :class:`Recipe`) of ``path`` (default :data:`RECIPES_PATH`), read once."""
    return dict(_load(str(path or RECIPES_PATH))[0])


def _settings(path: str | Path | None = None) -> dict:
    return _load(str(path or RECIPES_PATH))[1]


def _recipe(name: str, path=None) -> Recipe:
    recipes = load_recipes(path)
    if name not in recipes:
        raise UserInputError(f"unknown RGB composite {name!r}; composites are {', '.join(recipes)}")
    return recipes[name]


def _scene_sensor(scene: xr.Dataset, sensor: str | None) -> str | None:
    """The sensor asked for, else the scene's ``sensor`` attribute, lower case; None if neither is known."""
    value = sensor or scene.attrs.get("sensor")
    return str(value).lower() if value else None


def available_composites(scene: xr.Dataset, sensor: str | None = None) -> list[str]:
    """Names of the composites that can be made from ``scene`` (its sensor has a recipe, its channels exist)."""
    sensor = _scene_sensor(scene, sensor)
    out = []
    for name, recipe in load_recipes().items():
        try:
            variant = recipe.variant(sensor)
        except UserInputError:
            continue
        if all(c in scene.data_vars for c in variant.channels):
            out.append(name)
    return out


def describe(name: str, sensor: str | None = None) -> dict:
    """Title, description, legend and one line per band (``R: C15 − C13 (12.3 − 10.35 µm), −6.7 … 2.6 K``)."""
    recipe = _recipe(name)
    variant = recipe.variant(sensor)
    lines = []
    for letter, band in zip("RGB", variant.bands, strict=True):
        text = _label(band.expr, sensor)
        if variant.stretch == "cira":
            rng = "logarithmic (CIRA) stretch"
        else:
            rng = f"{_num(band.min)} … {_num(band.max)} {band.units}"
        gamma = f", γ {_num(band.gamma)}" if band.gamma != 1 else ""
        lines.append(f"{letter}: {text}, {rng}{gamma}")
    return {"name": name, "title": recipe.title, "description": recipe.description, "legend": recipe.legend,
            "flavour": variant.flavour, "bands": lines, "satpy_composite": variant.satpy_composite}


def _num(x: float) -> str:
    return f"{x:g}".replace("-", "−")


def _label(expr: str, sensor: str | None) -> str:
    tree = _parse_expr(expr, "label")

    def name(ch):
        if sensor:
            try:
                band = band_for_generic(sensor, ch)
                return f"{band.band_id} ({band.central_wavelength_um:g} µm)"
            except KeyError:
                pass
        return f"{GENERIC_CHANNELS[ch].wavelength_um:g} µm"

    def walk(node):
        if isinstance(node, ast.Name):
            return name(node.id)
        if isinstance(node, ast.Constant):
            return f"{node.value:g}"
        if isinstance(node, ast.Call):
            what = {"sunz_corrected": "/ cos(SZA)", "nir_reflectance": "reflected part"}[node.func.id]
            return f"{walk(node.args[0])} {what}"
        if isinstance(node, ast.UnaryOp):
            return f"−{walk(node.operand)}" if isinstance(node.op, ast.USub) else walk(node.operand)
        op = {ast.Add: " + ", ast.Sub: " − ", ast.Mult: "·"}[type(node.op)]
        return f"{walk(node.left)}{op}{walk(node.right)}"

    return walk(tree)


# ---------------------------------------------------------------------------------------------- sun angles


def _parse_time(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, np.datetime64):
        t = value.astype("datetime64[us]").astype(dt.datetime)
    else:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def _sun_time(scene: xr.Dataset, sensor: str | None) -> dt.datetime:
    sensors = _settings()["sensors"]
    attr = (sensors.get(sensor) or sensors.get("default") or {}).get("sun_time", "start_time")
    value = scene.attrs.get(attr, scene.attrs.get("start_time"))
    if value is None:
        raise UserInputError(f"this scene has no '{attr}' attribute: the sun's position for the sun-zenith "
                             f"correction cannot be computed")
    return _parse_time(value)


# every pixel's lon/lat of a grid (8 bytes a pixel): in the byte-bounded "geo-grids" cache shared with
# app.render.geo's grid indices and coastlines (5 % of the memory budget)
@cached("geo-grids", 0.05, key=lambda *args: ("sun-lonlat", *args))
def _geos_lonlat(proj4: str, x: bytes, y: bytes) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Proj

    xs, ys = np.frombuffer(x, dtype=np.float64), np.frombuffer(y, dtype=np.float64)
    xx, yy = np.meshgrid(xs, ys)
    lon, lat = Proj(proj4)(xx, yy, inverse=True, errcheck=False)
    bad = ~(np.abs(lon) < 1e29) | ~(np.abs(lat) < 1e29)
    lon, lat = lon.astype(np.float32), lat.astype(np.float32)
    lon[bad] = np.nan
    lat[bad] = np.nan
    lon.flags.writeable = False
    lat.flags.writeable = False
    return lon, lat


def _lonlat(scene: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (float32, NaN off the disk) of every pixel: from the scene or its projection."""
    if "longitude" in scene.variables and "latitude" in scene.variables:
        lon, lat = xr.broadcast(scene["longitude"], scene["latitude"])
        return (lon.transpose("y", "x").values.astype(np.float32),
                lat.transpose("y", "x").values.astype(np.float32))
    proj4 = scene.attrs.get("crs_proj4")
    if not proj4 or "x" not in scene.coords or "y" not in scene.coords:
        raise UserInputError("this scene has neither longitude/latitude nor a 'crs_proj4' attribute with x/y "
                             "coordinates: the solar zenith angle cannot be computed")
    x = np.ascontiguousarray(scene["x"].values, dtype=np.float64)
    y = np.ascontiguousarray(scene["y"].values, dtype=np.float64)
    return _geos_lonlat(str(proj4), x.tobytes(), y.tobytes())


def cos_solar_zenith(scene: xr.Dataset, sensor: str | None = None) -> np.ndarray:
    """cos(SZA) of every pixel (float32, NaN off the disk) at the time satpy's reader calls ``start_time``."""
    from pyorbital.astronomy import cos_zen

    lon, lat = _lonlat(scene)
    with np.errstate(invalid="ignore"):
        return np.asarray(cos_zen(_sun_time(scene, _scene_sensor(scene, sensor)), lon, lat), dtype=np.float32)


def sun_zenith_correction(cos_sza: np.ndarray, limit: float = SUNZ_CORRECTION_LIMIT_DEG,
                          max_sza: float = SUNZ_MAX_DEG) -> np.ndarray:
    """The factor satpy's SunZenithCorrector multiplies a reflectance by (float32).

    1/cos(SZA) up to ``limit``; beyond, ``(1 − log2(1 + (SZA − limit)/(max_sza − limit))) / cos(limit)``, falling
    to 0 at ``max_sza``; 0 beyond ``max_sza`` and where the angle is unknown.
    """
    cos_zen = np.asarray(cos_sza, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_zen = np.where(cos_zen >= np.cos(np.deg2rad(max_sza)), cos_zen, np.nan).astype(np.float32)
        limit_rad, max_rad = np.deg2rad(limit), np.deg2rad(max_sza)
        limit_cos = np.cos(limit_rad)
        corr = (1.0 / cos_zen).astype(np.float32)
        grad = (np.arccos(cos_zen) - limit_rad) / (max_rad - limit_rad)
        grad = (1.0 - np.log(grad + 1) / np.log(2)).clip(0.0)
        corr = np.where(cos_zen > limit_cos, corr, (grad / limit_cos).astype(np.float32))
    corr[np.isnan(cos_zen)] = 0
    return corr.astype(np.float32, copy=False)


def _planck(wavelength_um: float, t_k: np.ndarray) -> np.ndarray:
    """Spectral radiance (W m⁻² sr⁻¹ µm⁻¹) of a black body at ``t_k`` (K) and ``wavelength_um``."""
    lam = float(wavelength_um)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return C1_UM / (lam**5 * np.expm1(C2_UM / (lam * np.asarray(t_k, dtype=np.float64))))


def solar_irradiance_39(wavelength_um: float) -> float:
    """E-490 solar spectral irradiance (W m⁻² µm⁻¹, 1 AU) at a wavelength near 3.9 µm (from the recipe file)."""
    table = _settings()["constants"]["solar_irradiance_e490"]
    return float(np.interp(wavelength_um, table["wavelength_um"], table["w_m2_um"]))


def nir_reflectance(tb_nir, tb_thermal, sun_zenith_deg, *, wavelength_um: float = 3.9, tb_co2=None,
                    solar_irradiance: float | None = None, sunz_threshold: float = 85.0,
                    masking_limit: float | None = 88.0) -> np.ndarray:
    """The reflected solar part (%) of a 3.9 µm channel, as pyspectral derives it (monochromatic).

    ``R = (B(T3.9) − c·B(T11)) / (E cos(SZA)/π − c·B(T11))`` with B the Planck radiance at ``wavelength_um``, E
    the solar irradiance there, ``c = (T11 − (T11 − T13.4)/4)⁴ / T11⁴`` the CO2 correction (1 without
    ``tb_co2``), SZA held at ``sunz_threshold`` beyond it; NaN beyond ``masking_limit``, where the denominator is
    below 0.005 and where T3.9 is missing. Returns float32 percent.
    """
    tb_nir = np.asarray(tb_nir, dtype=np.float64)
    tb_thermal = np.asarray(tb_thermal, dtype=np.float64)
    sza = np.asarray(sun_zenith_deg, dtype=np.float64)
    e_sun = solar_irradiance_39(wavelength_um) if solar_irradiance is None else float(solar_irradiance)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu0 = np.cos(np.deg2rad(np.clip(sza, 0.0, sunz_threshold)))
        thermal = _planck(wavelength_um, tb_thermal)
        if tb_co2 is not None:
            tb_co2 = np.asarray(tb_co2, dtype=np.float64)
            thermal = thermal * (tb_thermal - 0.25 * (tb_thermal - tb_co2)) ** 4 / tb_thermal**4
        denom = e_sun * mu0 / np.pi - thermal
        refl = (_planck(wavelength_um, tb_nir) - thermal) / denom
        mask = ~(denom >= NIR_EPSILON) | np.isnan(tb_nir) | (sza < 0.0) | np.isnan(sza)
        if masking_limit is not None:
            mask |= sza > masking_limit
    return np.where(mask, np.nan, refl * 100.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- composing


def _mean2x2(data: np.ndarray) -> np.ndarray:
    """Satpy's ``_mean4``: the NaN-mean of aligned 2×2 blocks, repeated back to the input shape (edges padded)."""
    rows, cols = data.shape
    av = np.pad(data, ((0, rows % 2), (0, cols % 2)), "edge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks off the disk
        mean = np.nanmean(av.reshape(av.shape[0] // 2, 2, av.shape[1] // 2, 2), axis=(1, 3))
    return np.repeat(np.repeat(mean, 2, axis=0), 2, axis=1)[:rows, :cols]


def self_sharpen(rgb: np.ndarray, high: int) -> None:
    """Satpy's SelfSharpenedRGB on a (3, y, x) array, in place: the two other bands × band[high] / 2×2 mean.

    The ratio is 1 where it is not finite or negative and is clipped to 0–1.5. Blocks are aligned on row and
    column 0 of the array given.
    """
    hi = rgb[high]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = hi / _mean2x2(hi)
    ratio[~np.isfinite(ratio) | (ratio < 0)] = 1.0
    np.clip(ratio, 0, 1.5, out=ratio)
    for i in range(3):
        if i != high:
            rgb[i] *= ratio


class _Env:
    """What an expression can read: the scene's channels (row block) and the precomputed sun terms."""

    def __init__(self, channels: dict[str, np.ndarray], sun: dict[str, np.ndarray], variant: Variant, sensor):
        self.channels = channels
        self.sun = sun
        self.variant = variant
        self.sensor = sensor

    def rows(self, rows: slice) -> _Env:
        return _Env({k: v[rows] for k, v in self.channels.items()}, {k: v[rows] for k, v in self.sun.items()},
                    self.variant, self.sensor)

    def call(self, function: str, channel: str) -> np.ndarray:
        data = self.channels[channel]
        if function == "sunz_corrected":
            return data * self.sun["sunz_factor"]
        nir = self.variant.nir
        co2 = nir.get("co2")
        try:
            wavelength = band_for_generic(self.sensor, channel).central_wavelength_um
        except KeyError:
            wavelength = GENERIC_CHANNELS[channel].wavelength_um
        return nir_reflectance(data, self.channels[nir["thermal"]], self.sun["sza"], wavelength_um=wavelength,
                               tb_co2=self.channels.get(co2) if co2 else None,
                               sunz_threshold=float(nir.get("sunz_threshold", 85.0)),
                               masking_limit=nir.get("masking_limit", 88.0))


_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply}


def _evaluate(node: ast.expr, env: _Env, out: np.ndarray | None = None):
    """Evaluate a parsed expression; the top-level result goes into ``out`` (scene arrays are never written)."""
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, env), _evaluate(node.right, env)
        if out is None:
            return _BINOPS[type(node.op)](left, right)
        if np.ndim(left) == 0 and np.ndim(right) == 0:
            out[...] = _BINOPS[type(node.op)](left, right)
            return out
        return _BINOPS[type(node.op)](left, right, out=out, casting="same_kind")
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, env)
        result = -value if isinstance(node.op, ast.USub) else value
    elif isinstance(node, ast.Constant):
        result = float(node.value)
    elif isinstance(node, ast.Name):
        result = env.channels[node.id]
    else:  # ast.Call
        result = env.call(node.func.id, node.args[0].id)
    if out is None:
        return result
    out[...] = result
    return out


def _stretch_band(v: np.ndarray, band: ChannelRecipe, stretch: str) -> None:
    """Stretch, clip to 0–1 and gamma one band in place, as satpy's enhancement and image writer do."""
    if stretch == "cira":
        v *= np.float32(0.01)
        np.maximum(v, np.float32(np.finfo(float).eps), out=v)  # NaN stays NaN
        np.log10(v, out=v)
        v -= CIRA_LOG_ROOT
        v /= CIRA_DENOM
    else:
        lo, hi = np.float32(band.min), np.float32(band.max)
        scale = np.float32(1.0 / (hi - lo))
        offset = np.float32(-lo * scale)
        v *= scale
        v += offset
    np.clip(v, np.float32(0.0), np.float32(1.0), out=v)
    if band.gamma != 1.0:
        np.power(v, np.float32(1.0 / band.gamma), out=v)


def _compose_rows(variant: Variant, env: _Env, out: np.ndarray, sharpen: bool) -> None:
    for i, band in enumerate(variant.bands):
        _evaluate(band.tree, env, out=out[i])
    if sharpen and variant.sharpen:
        self_sharpen(out, BAND_NAMES.index(variant.sharpen))
    for i, band in enumerate(variant.bands):
        _stretch_band(out[i], band, variant.stretch)
    # satpy's GenericCompositor masks every band where one has no value ("common channel mask")
    missing = np.isnan(out[0] + out[1] + out[2])
    for i in range(3):
        out[i][missing] = np.nan


def _row_blocks(ny: int, nx: int) -> list[slice]:
    """Blocks of rows of about :data:`_BLOCK_PIXELS` pixels, so that one block's temporaries stay in cache.

    Each block has an even number of rows: satpy's 2×2 sharpening blocks stay aligned.
    """
    step = max(2, _BLOCK_PIXELS // max(nx, 1))
    step += step % 2
    return [slice(r, min(r + step, ny)) for r in range(0, ny, step)]


def _run_blocks(function, ny: int, nx: int, workers: int | None) -> None:
    """Call ``function(rows)`` for every row block, on up to ``workers`` threads (default: 2 or the CPU count)."""
    blocks = _row_blocks(ny, nx)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if workers == 1 or len(blocks) == 1:
        for rows in blocks:
            function(rows)
        return
    with ThreadPoolExecutor(min(workers, len(blocks))) as pool:
        list(pool.map(function, blocks))


def _missing_message(recipe: Recipe, variant: Variant, scene: xr.Dataset, missing: list[str], sensor) -> str:
    def what(ch):
        try:
            band = band_for_generic(sensor, ch) if sensor else None
        except KeyError:
            band = None
        wl = GENERIC_CHANNELS[ch].wavelength_um
        return f"{ch} ({band.band_id}, {band.central_wavelength_um:g} µm)" if band else f"{ch} ({wl:g} µm)"

    platform = scene.attrs.get("platform") or (sensor.upper() if sensor else "this")
    have = ", ".join(str(v) for v in scene.data_vars) or "none"
    noun = "channel" if len(missing) == 1 else "channels"
    return (f"the {recipe.title} needs {noun} {', '.join(what(c) for c in missing)}, which this {platform} scene "
            f"lacks (it has {have})")


def compose(scene: xr.Dataset, name: str, sensor: str | None = None, *, sharpen: bool = False,
            workers: int | None = None) -> xr.DataArray:
    """The RGB composite ``name`` of a GeoScene: DataArray ``(band=3, y, x)`` float32 in 0–1, NaN off the disk.

    ``sensor`` (``abi``, ``ahi``, ``seviri``) picks the recipe variant; by default the scene's ``sensor``
    attribute. ``sharpen=True`` applies satpy's self-sharpening where satpy does (see the module docstring).
    ``workers`` threads share the rows (default: up to 2). Raises :class:`UserInputError` naming the recipe and
    the missing channel when the scene lacks one.
    """
    recipe = _recipe(name)
    sensor = _scene_sensor(scene, sensor)
    variant = recipe.variant(sensor)
    missing = [c for c in variant.channels if c not in scene.data_vars]
    if missing:
        raise UserInputError(_missing_message(recipe, variant, scene, missing, sensor))
    names = list(variant.channels) + [c for c in variant.optional_channels if c in scene.data_vars]
    arrays = {c: np.asarray(scene[c].transpose("y", "x").values, dtype=np.float32) for c in names}
    ny, nx = next(iter(arrays.values())).shape
    sun = {}
    if variant.needs_sun:
        cos_sza = cos_solar_zenith(scene, sensor)
        if variant.uses("sunz_corrected"):
            sun["sunz_factor"] = sun_zenith_correction(cos_sza)
        if variant.uses("nir_reflectance"):
            with np.errstate(invalid="ignore"):
                sun["sza"] = np.rad2deg(np.arccos(cos_sza))
    env = _Env(arrays, sun, variant, sensor)
    out = np.empty((3, ny, nx), dtype=np.float32)
    _run_blocks(lambda rows: _compose_rows(variant, env.rows(rows), out[:, rows], sharpen), ny, nx, workers)
    info = describe(name, sensor)
    attrs = {
        "name": name,
        "title": recipe.title,
        "sensor": sensor or "",
        "platform": scene.attrs.get("platform", ""),
        "start_time": scene.attrs.get("start_time", ""),
        "flavour": variant.flavour,
        "satpy_composite": variant.satpy_composite or "",
        "stretch": variant.stretch,
        "sharpened": bool(sharpen and variant.sharpen),
        "channels": [b.expr for b in variant.bands],
        "band_legend": info["bands"],
        "legend": recipe.legend,
        "description": recipe.description,
    }
    coords = {"band": ("band", ["R", "G", "B"])}
    for c in ("y", "x"):
        if c in scene.coords:
            coords[c] = scene.coords[c]
    return xr.DataArray(out, dims=("band", "y", "x"), coords=coords, attrs=attrs, name=name)


def to_rgba_uint8(rgb, workers: int | None = None) -> np.ndarray:
    """An RGB composite (3, y, x) in 0–1 as an RGBA image (y, x, 4) uint8; alpha 0 where a band has no value.

    Values are clipped to 0–1 and rounded to the nearest of 0 … 255, as satpy's image writers do; a band without
    value is written 0.
    """
    data = rgb.transpose("band", ...).values if isinstance(rgb, xr.DataArray) else np.asarray(rgb)
    if data.ndim != 3 or data.shape[0] != 3:
        raise UserInputError(f"an RGB composite has shape (3, y, x); got {data.shape}")
    _, ny, nx = data.shape
    out = np.empty((ny, nx, 4), dtype=np.uint8)

    def block(rows):
        alpha = out[rows, :, 3]
        alpha[...] = 255
        tmp = np.empty((rows.stop - rows.start, nx), dtype=np.float32)
        for i in range(3):
            np.multiply(data[i, rows], np.float32(255.0), out=tmp)
            np.clip(tmp, 0.0, 255.0, out=tmp)
            np.rint(tmp, out=tmp)
            nan = np.isnan(tmp)
            tmp[nan] = 0
            alpha[nan] = 0
            out[rows, :, i] = tmp

    _run_blocks(block, ny, nx, workers)
    return out
