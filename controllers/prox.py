"""Piecewise-linear proximal terms: (rho / 2) (x - a)^2 as an LP epigraph.

HiGHS's QP solver is far too slow for the ADMM subproblems here (a separable 2000-variable
QP took 22 s on this machine), so each quadratic penalty is replaced by its tangent cuts
at offsets ``c`` around the anchor ``a``, on a scaled epigraph variable ``e`` (cost rho e):

    e >= c (x - a) - c^2 / 2   for c in OFFSETS_MW   (so rho e >= rho/2 (x - a)^2 at the c),

exact at the offsets, an under-estimate by at most rho (gap)^2 / 8 between them. Offsets
are dense near zero (1e-4 MW) so the approximation is sharp where the ADMM iterates
converge. The anchor only moves the cuts' right-hand sides and rho only the epigraph's
cost, so an iteration changes no matrix coefficient (see :class:`controllers.solve.FastLP`).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

_HALF = np.array(
    [
        0.0,
        1e-4,
        2e-4,
        5e-4,
        1e-3,
        2e-3,
        5e-3,
        0.01,
        0.02,
        0.035,
        0.05,
        0.07,
        0.1,
        0.13,
        0.16,
        0.2,
        0.25,
        0.3,
        0.4,
        0.5,
        0.7,
        1.0,
        1.5,
        3.0,
    ]
)
OFFSETS_MW = np.concatenate([-_HALF[:0:-1], _HALF])


def add_prox(m: pyo.Block, name: str, index: list, var) -> pyo.Expression:
    """Add anchor/rho params, epigraph vars and cuts for ``var[i]``, i in ``index``.

    Returns the expression rho * sum_i e_i for the objective.
    """
    block = pyo.Block()
    m.add_component(name, block)
    block.I = pyo.Set(initialize=index, dimen=None, ordered=True)
    block.C = pyo.RangeSet(0, len(OFFSETS_MW) - 1)
    block.anchor = pyo.Param(block.I, mutable=True, initialize=0.0)
    block.rho = pyo.Param(mutable=True, initialize=1.0)
    block.e = pyo.Var(block.I, within=pyo.NonNegativeReals)

    def cut(b, *args):
        *i, k = args
        i = i[0] if len(i) == 1 else tuple(i)
        c = float(OFFSETS_MW[k])
        return b.e[i] - c * var[i] >= -c * b.anchor[i] - 0.5 * c * c

    block.cut = pyo.Constraint(block.I, block.C, rule=cut)
    block.total = pyo.Expression(expr=block.rho * pyo.quicksum(block.e[i] for i in block.I))
    return block.total


def cut_lower_bounds(anchors: np.ndarray) -> np.ndarray:
    """Right-hand sides of all cuts, ordered like ``block.cut`` (index-major, offset-minor)."""
    a = np.asarray(anchors, dtype=float)[:, None]
    return (-OFFSETS_MW[None, :] * a - 0.5 * OFFSETS_MW[None, :] ** 2).ravel()


def set_anchor(block: pyo.Block, anchors: dict, rho: float) -> None:
    """Move the proximal centre and penalty through the Pyomo parameters."""
    block.rho = rho
    for i, a in anchors.items():
        block.anchor[i] = float(a)
