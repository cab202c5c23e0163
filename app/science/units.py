"""Units of SO2 columns, masses and fluxes, with every constant spelled out.

The Dobson Unit (DU) is a column amount: 1 DU is the number of molecules that would make a layer 10 µm thick
at standard temperature and pressure (273.15 K, 101325 Pa), which is 2.6867e20 molecules m⁻² (Loschmidt's
number 2.6867811e25 m⁻³ × 1e-5 m). Dividing by Avogadro's number (6.02214076e23 mol⁻¹) gives

    1 DU = 2.6867e20 / 6.02214076e23 mol m⁻² = 4.4615e-4 mol m⁻².

With the molar mass of SO2, 64.066 g mol⁻¹ (S 32.06 + 2 × O 15.999, rounded as in SCIENCE.md),

    1 DU of SO2 over 1 m²  = 4.4615e-4 mol × 64.066e-3 kg mol⁻¹ = 2.8583e-5 kg,
    1 DU of SO2 over 1 km² = 2.8583e-5 kg × 1e6 = 28.583 kg.

TROPOMI stores columns in mol m⁻² and gives the factor to DU in each file
(``multiplication_factor_to_convert_to_DU``, 2241.15 in the product, 1 / 4.4615e-4 = 2241.40 to 0.01 %);
readers apply that factor, so everything above ``app/data`` works in DU. Masses are reported in tonnes (1 t =
1000 kg) and fluxes in t/day (1 kg/s = 86.4 t/day).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Molecules per m² in one Dobson Unit.
DU_MOLECULES_M2 = 2.6867e20
#: Avogadro's number, mol⁻¹ (exact since the 2019 SI).
AVOGADRO_PER_MOL = 6.02214076e23
#: Moles per m² in one Dobson Unit (= DU_MOLECULES_M2 / AVOGADRO_PER_MOL, rounded as in SCIENCE.md).
DU_MOL_M2 = 4.4615e-4
#: Molar mass of SO2, g mol⁻¹.
SO2_MOLAR_MASS_G_MOL = 64.066
#: Mass of SO2 in a 1 DU column over 1 m², kg (= DU_MOL_M2 × SO2_MOLAR_MASS_G_MOL / 1000 ≈ 2.8583e-5).
SO2_KG_M2_PER_DU = DU_MOL_M2 * SO2_MOLAR_MASS_G_MOL * 1e-3
#: Mass of SO2 in a 1 DU column over 1 km², kg (≈ 28.58).
SO2_KG_PER_DU_KM2 = SO2_KG_M2_PER_DU * 1e6
#: Seconds in a day.
SECONDS_PER_DAY = 86400.0
#: Kilograms in a (metric) tonne.
KG_PER_TONNE = 1000.0


def du_to_kg_per_km2(column_du: ArrayLike) -> np.ndarray:
    """SO2 column in DU -> areal mass density in kg km⁻² (1 DU -> 28.58 kg km⁻²).

    Multiply by a pixel area in km² to get the SO2 mass of the pixel in kg.
    """
    return np.asarray(column_du, dtype=float) * SO2_KG_PER_DU_KM2


def du_to_kg_per_m2(column_du: ArrayLike) -> np.ndarray:
    """SO2 column in DU -> areal mass density in kg m⁻² (1 DU -> 2.8583e-5 kg m⁻²)."""
    return np.asarray(column_du, dtype=float) * SO2_KG_M2_PER_DU


def kg_per_m2_to_du(column_kg_m2: ArrayLike) -> np.ndarray:
    """SO2 areal mass density in kg m⁻² -> column in DU (inverse of :func:`du_to_kg_per_m2`)."""
    return np.asarray(column_kg_m2, dtype=float) / SO2_KG_M2_PER_DU


def mol_m2_to_du(column_mol_m2: ArrayLike) -> np.ndarray:
    """Column in mol m⁻² -> DU: divide by 4.4615e-4 mol m⁻² per DU (i.e. multiply by 2241.4)."""
    return np.asarray(column_mol_m2, dtype=float) / DU_MOL_M2


def du_to_mol_m2(column_du: ArrayLike) -> np.ndarray:
    """Column in DU -> mol m⁻²: multiply by 4.4615e-4 mol m⁻² per DU."""
    return np.asarray(column_du, dtype=float) * DU_MOL_M2


def kg_to_tonnes(mass_kg: ArrayLike) -> np.ndarray:
    """Mass in kg -> tonnes (divide by 1000)."""
    return np.asarray(mass_kg, dtype=float) / KG_PER_TONNE


def tonnes_to_kg(mass_t: ArrayLike) -> np.ndarray:
    """Mass in tonnes -> kg (multiply by 1000)."""
    return np.asarray(mass_t, dtype=float) * KG_PER_TONNE


def kg_s_to_t_day(flux_kg_s: ArrayLike) -> np.ndarray:
    """Mass flux in kg s⁻¹ -> t day⁻¹: × 86400 s/day / 1000 kg/t = × 86.4."""
    return np.asarray(flux_kg_s, dtype=float) * SECONDS_PER_DAY / KG_PER_TONNE


def t_day_to_kg_s(flux_t_day: ArrayLike) -> np.ndarray:
    """Mass flux in t day⁻¹ -> kg s⁻¹: × 1000 kg/t / 86400 s/day (1 kt/day ≈ 11.57 kg/s)."""
    return np.asarray(flux_t_day, dtype=float) * KG_PER_TONNE / SECONDS_PER_DAY
