"""Geostationary imager bands, platforms and fixed grids, as data: what the readers and the sample writers share.

Generic channel names
---------------------
Everything above ``app/data`` names a GEO channel by its *generic* name, so an RGB recipe does not depend on the
satellite. A name says the role the channel plays; each sensor maps its own bands onto them:

========  =========  =====================================================  ==========  ==========  ===========  ======
generic   λ (µm)     role                                                   ABI         AHI         SEVIRI       FCI
========  =========  =====================================================  ==========  ==========  ===========  ======
vis_04    0.47       blue (true colour, aerosol)                            C01         B01                      vis_04
vis_05    0.51       green (true colour) — AHI, FCI                                     B02                      vis_05
vis_06    0.64       red (true and natural colour, clouds by day)           C02         B03         VIS006       vis_06
nir_08    0.81–0.86  vegetation, land/water (natural colour, microphysics)  C03         B04         VIS008       vis_08
vis_09    0.91       near-infrared, water vapour absorption — FCI only                                           vis_09
nir_13    1.38       thin cirrus (water vapour hides the surface)           C04                                  nir_13
nir_16    1.6        snow/ice versus water cloud (natural colour)           C05         B05         IR_016       nir_16
nir_22    2.25–2.3   cloud particle size                                    C06         B06                      nir_22
ir_39     3.9        shortwave window, fires, fog; solar part by day        C07         B07         IR_039       ir_38
wv_62     6.2        upper-tropospheric water vapour                        C08         B08         WV_062       wv_63
wv_69     6.9        mid-tropospheric water vapour (SO2 RGB red)            C09         B09
wv_73     7.3        lower-tropospheric water vapour, SO2 absorption        C10         B10         WV_073       wv_73
ir_87     8.5–8.7    SO2 and silicate absorption, cloud phase               C11         B11         IR_087       ir_87
ir_96     9.6        ozone                                                  C12         B12         IR_097       ir_97
ir_105    10.35–10.4 clean longwave window                                  C13         B13                      ir_105
ir_108    10.8       longwave window (SEVIRI)                                                       IR_108
ir_112    11.2       longwave window                                        C14         B14
ir_120    12.0–12.4  dirty window: split window with the 10–11 µm window    C15         B15         IR_120       ir_123
ir_133    13.3–13.4  CO2 absorption, cloud height                           C16         B16         IR_134       ir_133
hrv       0.4–1.1    SEVIRI high-resolution visible (broad band)                                    HRV
========  =========  =====================================================  ==========  ==========  ===========  ======

The longwave *window* of a sensor is ``ir_108`` for SEVIRI and ``ir_105`` for ABI, AHI and FCI (the CIRA recipes use
C13/B13 as the window and C15−C13 as the split window); :func:`window_channel` picks it from the names at hand.
Reflectances are in %, brightness temperatures in K.

Calibration data
----------------
- ABI (GOES-R PUG L1b vol. 3): per band the radiance packing of ``Rad`` (bit depth, ``scale_factor``,
  ``add_offset``), ``esun`` (W m⁻² µm⁻¹) for the reflective bands (reflectance factor
  ``kappa0 = π d² / esun``), and the Planck coefficients ``planck_fk1/fk2/bc1/bc2`` for the emissive bands
  (``BT = (fk2 / ln(fk1 / L + 1) − bc1) / bc2``, L in mW m⁻² sr⁻¹ (cm⁻¹)⁻¹). Values are those of GOES-16 L1b
  files; every file carries its own, and readers read them from the file.
- AHI: the nominal central wavelength (µm) HSD block 5 carries (Himawari-8); the Planck function there uses
  the physical constants below (c, h, k in SI) at that wavelength.
- FCI (FCI L1 PUG): per channel the count packing of ``effective_radiance`` (``scale_factor``, ``add_offset``),
  the solar channels' effective solar irradiance and the IR channels' wavenumber and ``a``/``b`` (see
  :data:`FCI_BANDS`).
- SEVIRI (EUMETSAT, as in satpy's ``seviri`` base module): per Meteosat satellite the IR channels' central
  wavenumber ``VC`` (cm⁻¹) and the ``ALPHA``/``BETA`` of the effective-temperature fit
  (``BT = (c2·VC / ln(1 + c1·VC³ / L) − BETA) / ALPHA``), and the solar channels' band irradiance ``F``.

Platforms and fixed grids
-------------------------
The satellites are data: ``assets/platforms.yaml`` (read by :mod:`app.data.platforms`) lists every platform we
read, with its instrument, file ids, NWC SAF id, fixed-grid projection and the ring positions it held, when.
:data:`GEO_PLATFORMS` is a view of it, keyed by platform id (``G16`` … ``G19``, ``H08``, ``H09``, ``MSG1`` …
``MSG4``, ``MTI1``): each satellite's projection longitude (the fixed grid's ``lon_0``), its nominal sub-satellite
longitude (that of its latest ring period: GOES-East −75.2°, GOES-West −137.2°, Meteosat 0°, Meteosat-8 over the
Indian Ocean 41.5°, Meteosat-9 45.5°, Himawari 140.7°), the Earth model and satellite height of its projection,
and the sweep axis. Who held which position on a given day is :func:`app.data.platforms.ring_on`'s answer.
:data:`FULL_DISK` gives each sensor's full-disk infrared grid: number of pixels and scan-angle step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import radians

from app.data import platforms as _platforms
from app.data.errors import UserInputError
from app.data.platforms import GeosProjection

#: Physical constants (SI) of the Planck function, as HSD block 5 stores them.
SPEED_OF_LIGHT = 2.99792458e8
PLANCK_CONSTANT = 6.62606957e-34
BOLTZMANN_CONSTANT = 1.3806488e-23
#: Radiation constants for wavelength radiance: B = C1 / (λ⁵ (exp(C2 / λT) − 1)), λ in µm, B in W m⁻² sr⁻¹ µm⁻¹.
C1_UM = 1.191042e8
C2_UM = 1.4387752e4
#: The same for wavenumber radiance (SEVIRI): ν in cm⁻¹, L in mW m⁻² sr⁻¹ (cm⁻¹)⁻¹.
C1_CM = 1.19104273e-5
C2_CM = 1.43877523


@dataclass(frozen=True)
class GenericChannel:
    """A sensor-independent channel: nominal wavelength, the quantity readers give, and its role."""

    name: str
    wavelength_um: float
    quantity: str  # "reflectance" (%) or "brightness_temperature" (K)
    role: str

    @property
    def units(self) -> str:
        """``%`` for reflectances, ``K`` for brightness temperatures."""
        return "%" if self.quantity == "reflectance" else "K"

    @property
    def is_solar(self) -> bool:
        """True for reflectance channels."""
        return self.quantity == "reflectance"


_R, _T = "reflectance", "brightness_temperature"

#: Generic channel name -> :class:`GenericChannel`.
GENERIC_CHANNELS: dict[str, GenericChannel] = {
    c.name: c
    for c in (
        GenericChannel("vis_04", 0.47, _R, "blue"),
        GenericChannel("vis_05", 0.51, _R, "green (AHI only)"),
        GenericChannel("vis_06", 0.64, _R, "red"),
        GenericChannel("nir_08", 0.86, _R, "near-infrared: vegetation, land and water"),
        GenericChannel("vis_09", 0.914, _R, "near-infrared water vapour absorption (FCI only)"),
        GenericChannel("nir_13", 1.38, _R, "thin cirrus"),
        GenericChannel("nir_16", 1.61, _R, "snow and ice versus water cloud"),
        GenericChannel("nir_22", 2.25, _R, "cloud particle size"),
        GenericChannel("hrv", 0.75, _R, "SEVIRI broad-band high-resolution visible"),
        GenericChannel("ir_39", 3.9, _T, "shortwave window (solar part by day)"),
        GenericChannel("wv_62", 6.2, _T, "upper-level water vapour"),
        GenericChannel("wv_69", 6.9, _T, "mid-level water vapour"),
        GenericChannel("wv_73", 7.3, _T, "lower-level water vapour, SO2"),
        GenericChannel("ir_87", 8.6, _T, "SO2 and silicate absorption, cloud phase"),
        GenericChannel("ir_96", 9.6, _T, "ozone"),
        GenericChannel("ir_105", 10.35, _T, "clean longwave window (ABI C13, AHI B13)"),
        GenericChannel("ir_108", 10.8, _T, "longwave window (SEVIRI IR_108)"),
        GenericChannel("ir_112", 11.2, _T, "longwave window (ABI C14, AHI B14)"),
        GenericChannel("ir_120", 12.3, _T, "dirty window (split window)"),
        GenericChannel("ir_133", 13.3, _T, "CO2 absorption"),
    )
}

#: Longwave window channels in order of preference (SEVIRI's 10.8 µm, then the ABI/AHI clean window).
WINDOW_CHANNELS: tuple[str, ...] = ("ir_108", "ir_105", "ir_112")


def window_channel(names) -> str:
    """The longwave window channel among ``names`` (``ir_108``, else ``ir_105``, else ``ir_112``)."""
    names = set(names)
    for name in WINDOW_CHANNELS:
        if name in names:
            return name
    raise KeyError(f"no longwave window channel ({', '.join(WINDOW_CHANNELS)}) among {sorted(names)}")


@dataclass(frozen=True)
class Band:
    """One band of one sensor: its own id, the generic channel it plays, and the numbers its format needs.

    ``calibration`` holds the format's constants (see the module docstring); its keys depend on the sensor.
    """

    sensor: str
    band_id: str  # as the format names it: C13, B13, IR_108
    number: int
    generic: str
    central_wavelength_um: float
    resolution_km: float  # nominal at the sub-satellite point
    calibration: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_solar(self) -> bool:
        """True for reflective bands (calibrated to reflectance)."""
        return GENERIC_CHANNELS[self.generic].is_solar


def _abi(n, generic, wl, res, bits, scale, offset, *, esun=None, fk1=None, fk2=None, bc1=None, bc2=None):
    cal = {"bit_depth": bits, "scale_factor": scale, "add_offset": offset}
    if esun is not None:
        cal["esun"] = esun
    else:
        cal.update(planck_fk1=fk1, planck_fk2=fk2, planck_bc1=bc1, planck_bc2=bc2)
    return Band("abi", f"C{n:02d}", n, generic, wl, res, cal)


#: GOES-R ABI bands (GOES-16 calibration constants), by band number.
ABI_BANDS: dict[int, Band] = {
    b.number: b
    for b in (
        _abi(1, "vis_04", 0.47, 1.0, 10, 0.8121064, -25.936647, esun=2017.1648),
        _abi(2, "vis_06", 0.64, 0.5, 12, 0.15859237, -20.289911, esun=1631.3351),
        _abi(3, "nir_08", 0.865, 1.0, 10, 0.37691253, -12.037643, esun=957.0699),
        _abi(4, "nir_13", 1.378, 2.0, 11, 0.07073108, -4.5223684, esun=360.90176),
        _abi(5, "nir_16", 1.61, 1.0, 10, 0.09580004, -3.0596137, esun=242.54037),
        _abi(6, "nir_22", 2.25, 2.0, 10, 0.030088475, -0.9609507, esun=76.8999),
        _abi(7, "ir_39", 3.9, 2.0, 14, 0.001564351, -0.0376, fk1=202263.0, fk2=3698.19, bc1=0.43361, bc2=0.99939),
        _abi(8, "wv_62", 6.185, 2.0, 12, 0.007104763, -0.5586, fk1=50687.1, fk2=2331.58, bc1=1.55228, bc2=0.99667),
        _abi(9, "wv_69", 6.95, 2.0, 11, 0.022539102, -0.8236, fk1=35828.3, fk2=2076.95, bc1=0.34427, bc2=0.99918),
        _abi(10, "wv_73", 7.34, 2.0, 12, 0.02004128, -0.9561, fk1=30174.0, fk2=1961.38, bc1=0.05651, bc2=0.99986),
        _abi(11, "ir_87", 8.5, 2.0, 12, 0.03335779, -1.3022, fk1=19779.9, fk2=1703.83, bc1=0.18733, bc2=0.99948),
        _abi(12, "ir_96", 9.61, 2.0, 11, 0.05443998, -1.5394, fk1=13432.1, fk2=1497.61, bc1=0.09102, bc2=0.99971),
        _abi(13, "ir_105", 10.35, 2.0, 12, 0.04572892, -1.6443, fk1=10803.3, fk2=1392.74, bc1=0.0755, bc2=0.99975),
        _abi(14, "ir_112", 11.2, 2.0, 12, 0.049492206, -1.7187, fk1=8510.22, fk2=1286.27, bc1=0.22516, bc2=0.9992),
        _abi(15, "ir_120", 12.3, 2.0, 12, 0.05277411, -1.7558, fk1=6454.62, fk2=1173.03, bc1=0.21702, bc2=0.99916),
        _abi(16, "ir_133", 13.3, 2.0, 10, 0.17605852, -5.2392, fk1=5101.27, fk2=1084.53, bc1=0.06266, bc2=0.99974),
    )
}

#: Himawari AHI bands (Himawari-8 nominal central wavelengths), by band number.
AHI_BANDS: dict[int, Band] = {
    b.number: b
    for b in (
        Band("ahi", "B01", 1, "vis_04", 0.4703, 1.0),
        Band("ahi", "B02", 2, "vis_05", 0.5105, 1.0),
        Band("ahi", "B03", 3, "vis_06", 0.6399, 0.5),
        Band("ahi", "B04", 4, "nir_08", 0.8563, 1.0),
        Band("ahi", "B05", 5, "nir_16", 1.6098, 2.0),
        Band("ahi", "B06", 6, "nir_22", 2.2570, 2.0),
        Band("ahi", "B07", 7, "ir_39", 3.8848, 2.0),
        Band("ahi", "B08", 8, "wv_62", 6.2383, 2.0),
        Band("ahi", "B09", 9, "wv_69", 6.9395, 2.0),
        Band("ahi", "B10", 10, "wv_73", 7.3471, 2.0),
        Band("ahi", "B11", 11, "ir_87", 8.5905, 2.0),
        Band("ahi", "B12", 12, "ir_96", 9.6347, 2.0),
        Band("ahi", "B13", 13, "ir_105", 10.4029, 2.0),
        Band("ahi", "B14", 14, "ir_112", 11.2432, 2.0),
        Band("ahi", "B15", 15, "ir_120", 12.3828, 2.0),
        Band("ahi", "B16", 16, "ir_133", 13.2844, 2.0),
    )
}

#: Meteosat SEVIRI channels (nominal central wavelengths), by channel number as in the native format.
SEVIRI_BANDS: dict[int, Band] = {
    b.number: b
    for b in (
        Band("seviri", "VIS006", 1, "vis_06", 0.635, 3.0),
        Band("seviri", "VIS008", 2, "nir_08", 0.81, 3.0),
        Band("seviri", "IR_016", 3, "nir_16", 1.64, 3.0),
        Band("seviri", "IR_039", 4, "ir_39", 3.92, 3.0),
        Band("seviri", "WV_062", 5, "wv_62", 6.25, 3.0),
        Band("seviri", "WV_073", 6, "wv_73", 7.35, 3.0),
        Band("seviri", "IR_087", 7, "ir_87", 8.70, 3.0),
        Band("seviri", "IR_097", 8, "ir_96", 9.66, 3.0),
        Band("seviri", "IR_108", 9, "ir_108", 10.80, 3.0),
        Band("seviri", "IR_120", 10, "ir_120", 12.00, 3.0),
        Band("seviri", "IR_134", 11, "ir_133", 13.40, 3.0),
        Band("seviri", "HRV", 12, "hrv", 0.75, 1.0),
    )
}


def _seviri_cal(f, ir):
    out = {name: {"F": value} for name, value in zip(("HRV", "VIS006", "VIS008", "IR_016"), f, strict=True)}
    names = ("IR_039", "WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134")
    for name, (vc, alpha, beta) in zip(names, ir, strict=True):
        out[name] = {"VC": vc, "ALPHA": alpha, "BETA": beta}
    return out


#: SEVIRI calibration constants by satellite (MSG1 = Meteosat-8 … MSG4 = Meteosat-11): band irradiance ``F`` of
#: the solar channels, and ``VC`` (cm⁻¹), ``ALPHA``, ``BETA`` of the IR channels (EUMETSAT; as in satpy).
SEVIRI_CALIB: dict[str, dict[str, dict[str, float]]] = {
    "MSG1": _seviri_cal(
        (78.7599, 65.2296, 73.0127, 62.3715),
        ((2567.33, 0.9956, 3.41), (1598.103, 0.9962, 2.218), (1362.081, 0.9991, 0.478), (1149.069, 0.9996, 0.179),
         (1034.343, 0.9999, 0.06), (930.647, 0.9983, 0.625), (839.66, 0.9988, 0.397), (752.387, 0.9981, 0.578)),
    ),
    "MSG2": _seviri_cal(
        (79.0113, 65.2065, 73.1869, 61.9923),
        ((2568.832, 0.9954, 3.438), (1600.548, 0.9963, 2.185), (1360.330, 0.9991, 0.47), (1148.620, 0.9996, 0.179),
         (1035.289, 0.9999, 0.056), (931.7, 0.9983, 0.64), (836.445, 0.9988, 0.408), (751.792, 0.9981, 0.561)),
    ),
    "MSG3": _seviri_cal(
        (78.9416, 65.5148, 73.1807, 62.0208),
        ((2547.771, 0.9915, 2.9002), (1595.621, 0.9960, 2.0337), (1360.337, 0.9991, 0.4340),
         (1148.130, 0.9996, 0.1714), (1034.715, 0.9999, 0.0527), (929.842, 0.9983, 0.6084),
         (838.659, 0.9988, 0.3882), (750.653, 0.9982, 0.5390)),
    ),
    "MSG4": _seviri_cal(
        (79.0035, 65.2656, 73.1692, 61.9416),
        ((2555.280, 0.9916, 2.9438), (1596.080, 0.9959, 2.0780), (1361.748, 0.9990, 0.4929),
         (1147.433, 0.9996, 0.1731), (1034.851, 0.9998, 0.0597), (931.122, 0.9983, 0.6256),
         (839.113, 0.9988, 0.4002), (748.585, 0.9981, 0.5635)),
    ),
}

def _fci(n, name, generic, wl, res, scale, offset, *, cesi=None, vc=None, a=None, b=None):
    cal = {"scale_factor": scale, "add_offset": offset, "radiance_unit_conversion_coefficient": 10.0 / wl**2}
    if cesi is not None:
        cal["channel_effective_solar_irradiance"] = cesi
    else:
        cal.update(wavenumber=vc, a=a, b=b)
    return Band("fci", name, n, generic, wl, res, cal)


#: MTG-I FCI channels of the FDHSI product (FCI L1 PUG, EUMETSAT doc 45923), by channel number. The format names a
#: channel by its group ``data/<name>/measured`` (``ir_38``); radiances are per wavenumber,
#: mW m⁻² sr⁻¹ (cm⁻¹)⁻¹, stored as 12-bit counts (``effective_radiance`` with ``scale_factor``/``add_offset``).
#: Calibration (nominal values for the sample writer; every real file carries its own and readers read them from
#: the file): solar channels ``channel_effective_solar_irradiance`` (mW m⁻² (cm⁻¹)⁻¹, reflectance
#: ``100 π L d² / cesi``); IR channels the central wavenumber (cm⁻¹) and ``a``/``b`` of
#: ``BT = c2 ν / (a ln(1 + c1 ν³ / L)) − b / a``. ``radiance_unit_conversion_coefficient`` (10 / λ² with λ in µm)
#: converts to W m⁻² sr⁻¹ µm⁻¹.
FCI_BANDS: dict[int, Band] = {
    b.number: b
    for b in (
        _fci(1, "vis_04", "vis_04", 0.444, 1.0, 0.00448, -0.00448, cesi=37.5),
        _fci(2, "vis_05", "vis_05", 0.510, 1.0, 0.0059, -0.0059, cesi=49.4),
        _fci(3, "vis_06", "vis_06", 0.640, 1.0, 0.00797, -0.00797, cesi=66.8),
        _fci(4, "vis_08", "nir_08", 0.865, 1.0, 0.00857, -0.00857, cesi=71.8),
        _fci(5, "vis_09", "vis_09", 0.914, 1.0, 0.00827, -0.00827, cesi=69.3),
        _fci(6, "nir_13", "nir_13", 1.380, 1.0, 0.00819, -0.00819, cesi=68.6),
        _fci(7, "nir_16", "nir_16", 1.610, 1.0, 0.00752, -0.00752, cesi=63.0),
        _fci(8, "nir_22", "nir_22", 2.250, 1.0, 0.00466, -0.00466, cesi=39.0),
        _fci(9, "ir_38", "ir_39", 3.800, 2.0, 0.0009, -0.0009, vc=2576.9, a=0.9991, b=0.5),
        _fci(10, "wv_63", "wv_62", 6.300, 2.0, 0.0135, -0.0135, vc=1596.0, a=0.9963, b=2.2),
        _fci(11, "wv_73", "wv_73", 7.350, 2.0, 0.022, -0.022, vc=1362.0, a=0.9991, b=0.48),
        _fci(12, "ir_87", "ir_87", 8.700, 2.0, 0.034, -0.034, vc=1149.0, a=0.9996, b=0.18),
        _fci(13, "ir_97", "ir_96", 9.660, 2.0, 0.04, -0.04, vc=1035.0, a=0.9999, b=0.06),
        _fci(14, "ir_105", "ir_105", 10.500, 2.0, 0.045, -0.045, vc=951.8, a=0.9983, b=0.63),
        _fci(15, "ir_123", "ir_120", 12.300, 2.0, 0.051, -0.051, vc=812.0, a=0.9988, b=0.40),
        _fci(16, "ir_133", "ir_133", 13.300, 2.0, 0.053, -0.053, vc=751.0, a=0.9981, b=0.58),
    )
}

#: Sensor name -> its band table.
SENSOR_BANDS: dict[str, dict[int, Band]] = {"abi": ABI_BANDS, "ahi": AHI_BANDS, "seviri": SEVIRI_BANDS,
                                            "fci": FCI_BANDS}


def bands_for(sensor: str) -> dict[int, Band]:
    """The band table of a sensor (``abi``, ``ahi``, ``seviri``)."""
    try:
        return SENSOR_BANDS[sensor]
    except KeyError:
        raise KeyError(f"unknown GEO sensor {sensor!r}; known sensors: {', '.join(SENSOR_BANDS)}") from None


def band_for_generic(sensor: str, generic: str) -> Band:
    """The band of ``sensor`` that plays the generic channel ``generic``."""
    for band in bands_for(sensor).values():
        if band.generic == generic:
            return band
    have = ", ".join(b.generic for b in bands_for(sensor).values())
    raise KeyError(f"{sensor} has no {generic!r} channel; its channels are {have}")


def generic_channels(sensor: str) -> tuple[str, ...]:
    """The generic channel names a sensor provides, in band order."""
    return tuple(b.generic for b in bands_for(sensor).values())


# ----------------------------------------------------------------------------------------------- projections


@dataclass(frozen=True)
class GeoPlatform:
    """One geostationary satellite: names, sensor, position and fixed-grid projection.

    A view of ``assets/platforms.yaml`` (see :mod:`app.data.platforms`).
    """

    key: str  # our short key (the platform id of the file names: G16, H09, MSG2, MTI1)
    name: str  # satpy's platform_name
    sensor: str
    sub_lon: float  # nominal sub-satellite longitude (degrees): that of its latest ring period
    projection: GeosProjection
    nwcsaf_id: str  # the satellite id in NWC SAF GEO file names and attributes
    slot: str = ""  # orbital slot name (GOES files carry it)
    instrument_id: str = ""  # flight model (ABI files carry it)

    @property
    def lon_0(self) -> float:
        """Projection longitude of the fixed grid."""
        return self.projection.lon_0


def _view(p: _platforms.Platform) -> GeoPlatform:
    return GeoPlatform(p.key, p.name, p.instrument, p.sub_lon, p.projection, p.nwcsaf_id, p.orbital_slot,
                       p.instrument_id)


#: Satellite key -> :class:`GeoPlatform`, for every platform of ``assets/platforms.yaml``.
GEO_PLATFORMS: dict[str, GeoPlatform] = {key: _view(p) for key, p in _platforms.platforms().items()}


def geo_platform(key: str) -> GeoPlatform:
    """The platform registered under ``key`` (``G16`` … ``G19``, ``H08``, ``H09``, ``MSG1`` … ``MSG4``, ``MTI1``).

    The NWC SAF satellite ids (``GOES16``, ``HIMAWARI8``, ``MSG4`` …), the file ids, satellite names and aliases of
    ``assets/platforms.yaml`` are accepted too.
    """
    if key in GEO_PLATFORMS:
        return GEO_PLATFORMS[key]
    try:
        return GEO_PLATFORMS[_platforms.platform(key).key]
    except UserInputError:
        raise KeyError(f"unknown GEO platform {key!r}; known platforms: {', '.join(GEO_PLATFORMS)} (NWC SAF ids "
                       f"{', '.join(p.nwcsaf_id for p in GEO_PLATFORMS.values())})") from None


@dataclass(frozen=True)
class FullDisk:
    """A sensor's full-disk grid at its infrared resolution: size and scan-angle step (radians per pixel)."""

    n_pixels: int
    resolution_km: float
    step_rad: float
    repeat_minutes: int  # full-disk repeat cycle


#: Sensor -> full-disk infrared grid. ABI: 5424 × 5424 at 56 µrad (PUG); AHI: 5500 × 5500, CFAC 20466275
#: (2¹⁶ / CFAC degrees per column); SEVIRI: 3712 × 3712, CFAC 13642337. Full disk every 10 min (ABI mode 6, AHI)
#: or 15 min (SEVIRI).
FULL_DISK: dict[str, FullDisk] = {
    "abi": FullDisk(5424, 2.0, 56e-6, 10),
    "ahi": FullDisk(5500, 2.0, radians(2**16 / 20466275), 10),
    "seviri": FullDisk(3712, 3.0, radians(2**16 / 13642337), 15),
    # FCI FDHSI (FCI L1 PUG): 5568 × 5568 infrared pixels of 2 km (the 1 km solar grid is 11136²), the x/y
    # scale_factor 5.58871526031607e-05 rad per pixel; a full disk every 10 min in 40 body chunks.
    "fci": FullDisk(5568, 2.0, 5.58871526031607e-05, 10),
}
