"""The MESS recourse LP as a linear form, and the worst-case subproblem built from its dual.

Worst case ``max_u Q(x, u)`` by strong duality of the recourse LP (complete recourse):
``max_{u, lam} b(x)'lam + sum dev u mu`` subject to ``A'lam = c`` and each row's multiplier
sign, mu = -lam >= 0 the multiplier of the PV row ``p <= forecast - dev u`` (variable bounds
are rows too). :func:`linear_form` reads the recourse model's rows mechanically (its first-stage
Params kept as expressions, so b(x) can be re-evaluated per first stage), so the primal and the
dual cannot disagree; :func:`build_worst_case_model` builds the MILP with u binary and
w = u mu linearised by ``w <= mu``, ``w <= M u``. Builders return models and never solve:
:class:`controllers.robust_ccg.WorstCase` solves (and doubles M while it binds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from mgcosim.controllers.robust_data import RobustCase, RobustInputError

# Initial M of w <= M u, times the highest shed cost of a period. There is no a-priori bound
# on a PV row's multiplier once voltage limits bind, so M is a generous guess, doubled while it
# binds at the chosen u; the worst case is re-solved as an LP, and the tests compare the
# subproblem with every vertex of the uncertainty set on a small case.
DUAL_BOUND_FACTOR = 10.0


# --- the recourse as a linear form, and its dual -------------------------------------------
@dataclass
class LinearForm:
    """``min c'y + c0 s.t. a_i'y (sense_i) rhs_i``; rhs_i are expressions of the first stage.

    sense: +1 for >=, -1 for <=, 0 for ==. Variable bounds are rows too.
    """

    variables: list
    coefs: list[list[tuple[int, float]]] = field(default_factory=list)  # per row
    rhs: list = field(default_factory=list)  # float or Pyomo expression of Params
    sense: list[int] = field(default_factory=list)
    cost: dict[int, float] = field(default_factory=dict)
    cost_constant: float = 0.0
    rows_of: dict[object, int] = field(default_factory=dict)  # uncertain PV rows

    def add_row(self, coefs: list[tuple[int, float]], rhs, sense: int) -> int:
        self.coefs.append(coefs)
        self.rhs.append(rhs)
        self.sense.append(sense)
        return len(self.sense) - 1


def linear_form(b: pyo.Block, cost) -> LinearForm:
    """The linear form of the recourse block ``b`` (its Params held as expressions)."""
    variables = list(b.component_data_objects(pyo.Var, descend_into=True))
    index = {id(v): j for j, v in enumerate(variables)}
    form = LinearForm(variables=variables)
    uncertain = {id(c): key for key, c in b.pv_cap.items()}
    for con in b.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        repn = generate_standard_repn(con.body, compute_values=False, quadratic=False)
        if not repn.is_linear():
            raise RobustInputError(f"recourse row {con.name} is not linear")
        coefs = [
            (index[id(v)], pyo.value(a))
            for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True)
        ]
        if con.equality:
            form.add_row(coefs, con.upper - repn.constant, 0)
            continue
        if con.has_lb():
            form.add_row(coefs, con.lower - repn.constant, 1)
        if con.has_ub():
            row = form.add_row(coefs, con.upper - repn.constant, -1)
            if id(con) in uncertain:
                form.rows_of[uncertain[id(con)]] = row
    for j, v in enumerate(variables):
        if v.fixed:
            raise RobustInputError(f"recourse variable {v.name} is fixed")
        if v.has_lb():
            form.add_row([(j, 1.0)], pyo.value(v.lb), 1)
        if v.has_ub():
            form.add_row([(j, 1.0)], pyo.value(v.ub), -1)
    repn = generate_standard_repn(cost, compute_values=True, quadratic=False)
    for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        form.cost[index[id(v)]] = form.cost.get(index[id(v)], 0.0) + float(a)
    form.cost_constant = float(repn.constant)
    return form


def default_dual_bound(case: RobustCase) -> float:
    """Initial M of ``w <= M u``: a generous bound on a PV row's multiplier (CNY/MW)."""
    return DUAL_BOUND_FACTOR * max(case.mess.shed_cost_cny_per_mwh.values()) * case.dt_h


def build_worst_case_model(case: RobustCase, form: LinearForm, big_m: float) -> pyo.ConcreteModel:
    """The subproblem max_u min_y as one MILP: the dual of the recourse plus u (binary)."""
    d = pyo.ConcreteModel(name="mess_worst_case")
    bounds = {1: (0, None), -1: (None, 0), 0: (None, None)}
    d.R = pyo.RangeSet(0, len(form.sense) - 1)
    d.lam = pyo.Var(d.R, bounds=lambda _, i: bounds[form.sense[i]])
    d.b = pyo.Param(d.R, mutable=True, initialize=0.0)
    columns: list[list[tuple[int, float]]] = [[] for _ in form.variables]
    for i, coefs in enumerate(form.coefs):
        for j, a in coefs:
            columns[j].append((i, a))
    cost = [form.cost.get(j, 0.0) for j in range(len(columns))]
    for j, col in enumerate(columns):
        if not col and cost[j] != 0:
            raise RobustInputError(f"{form.variables[j].name}: a cost but no row (unbounded)")
    d.J = pyo.Set(initialize=[j for j, col in enumerate(columns) if col])
    d.dual_feasibility = pyo.Constraint(
        d.J, rule=lambda _, j: pyo.quicksum(a * d.lam[i] for i, a in columns[j]) == cost[j]
    )
    dev = case.pv_dev_mw
    d.T = pyo.RangeSet(0, case.n_periods - 1)
    d.PV = pyo.Set(initialize=sorted(case.pv_forecast_mw))
    d.u = pyo.Var(d.PV, d.T, within=pyo.Binary)
    d.w = pyo.Var(d.PV, d.T, within=pyo.NonNegativeReals)  # = u * mu
    d.big_m = pyo.Param(mutable=True, initialize=big_m)
    d.w_mu = pyo.Constraint(d.PV, d.T, rule=lambda _, k, t: d.w[k, t] <= -d.lam[form.rows_of[k, t]])
    d.w_u = pyo.Constraint(d.PV, d.T, rule=lambda _, k, t: d.w[k, t] <= d.big_m * d.u[k, t])
    d.budget = pyo.Constraint(
        d.T, rule=lambda _, t: pyo.quicksum(d.u[k, t] for k in d.PV) <= case.budget
    )
    d.obj = pyo.Objective(
        expr=pyo.quicksum(d.b[i] * d.lam[i] for i in d.R)
        + pyo.quicksum(float(dev[k][t]) * d.w[k, t] for k in d.PV for t in d.T)
        + form.cost_constant,
        sense=pyo.maximize,
    )
    return d
