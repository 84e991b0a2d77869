"""Per-unit system of the optimisation models (S_base = 1 MVA, so 1 pu of power = 1 MW)."""

from __future__ import annotations

import math

S_BASE_MVA = 1.0


def z_base_ohm(vn_kv: float) -> float:
    """Impedance base (ohm) at nominal voltage ``vn_kv``."""
    return vn_kv**2 / S_BASE_MVA


def i_base_ka(vn_kv: float) -> float:
    """Current base (kA) at nominal voltage ``vn_kv``."""
    return S_BASE_MVA / (math.sqrt(3) * vn_kv)
