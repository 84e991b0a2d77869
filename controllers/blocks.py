"""Network physics written once, for every model that needs it.

Each ``declare_*`` adds variables or constraints to a Pyomo block; the data it needs
(ratings, per-unit values, incidence) is extracted by the caller and passed in. Sets are
indexed by IEEE branch ``m.L`` and period ``m.T`` as in every model of this library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyomo.environ as pyo

# Tangent points of the loss cuts, per unit of the branch rating (squares of k / 8: dense
# near zero, where most flows are); mirrored for negative flows.
LOSS_CUT_POINTS = np.array([0.0, 1 / 64, 1 / 16, 9 / 64, 1 / 4, 25 / 64, 9 / 16, 49 / 64, 1.0])


def loss_cut_offsets() -> np.ndarray:
    """Cut points of both signs, -1 .. 1 (per unit of the rating)."""
    return np.concatenate([-LOSS_CUT_POINTS[:0:-1], LOSS_CUT_POINTS])


def declare_loss_cuts(
    m: pyo.Block,
    s_max_pu: Mapping[int, float],
    v_hat2: Callable[[int], object],
    ell_p: pyo.Var,
    ell_q: pyo.Var,
) -> None:
    """Squared current ``ell = ell_p + ell_q >= (P^2 + Q^2) / v_hat^2`` by tangent cuts.

    ``v_hat^2 ell_p >= 2 a P - a^2`` at every cut point ``a`` (and the same in Q): a linear
    outer approximation of the DistFlow cone, exact at the points. ``v_hat2(line)`` is the
    squared voltage the losses are estimated at (a number or a fixed parameter).
    """
    points = loss_cut_offsets()
    m.K = pyo.RangeSet(0, len(points) - 1)

    def cut(flow, part):
        def rule(_, line, t, k):
            a = points[k] * s_max_pu[line]
            return v_hat2(line) * part[line, t] >= 2 * a * flow[line, t] - a * a

        return rule

    m.cut_p = pyo.Constraint(m.L, m.T, m.K, rule=cut(m.P, ell_p))
    m.cut_q = pyo.Constraint(m.L, m.T, m.K, rule=cut(m.Q, ell_q))
