"""The bilevel ADMM as communicating agents: a DSO coordinator and one agent per microgrid.

Real HiGHS solves, real mosaik worlds. Sources of the reference values:

* ``admm_reference_0802477.json``: the single-object ``BilevelADMM`` before the split
  (commit 0802477), same horizon (default scenario, hour 8, 4 periods, 3 wind scenarios),
  cold then warm; the split code must reproduce it to 1e-9 (the arithmetic is the same, and
  the messages carry floats through JSON, whose ``repr`` encoding round-trips exactly);
* message count, by hand: every inner iteration is one request and one reply per
  microgrid, and the horizon ends with one ``finish`` request and reply per microgrid.
"""

from __future__ import annotations

import gc
import json
import types
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest
from test_admm import S, T, small_horizon

from mgcosim.controllers.admm import ADMMCoordinator, BilevelADMM
from mgcosim.controllers.admm_messages import encode
from mgcosim.controllers.dso import dso_data
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import MicrogridParams
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.units import stochastic_units

REFERENCE = json.loads((Path(__file__).parent / "admm_reference_0802477.json").read_text())
REQUEST_KEYS = {"kind", "first", "pm_anchor", "rho_pm", "trade_anchor", "rho_trade"}
REPLY_KEYS = {"pm", "trade", "cost"}


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(default_scenario_path())


@pytest.fixture(scope="module")
def dd(scenario):
    return dso_data(build_ieee33(scenario.data), scenario.data)


def recording(respond, log: list):
    """The agents' answers, every request and reply kept (as it crossed the boundary)."""

    def wrapped(requests):
        replies = respond(requests)
        log.append((requests, replies))
        return replies

    return wrapped


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_split_admm_reproduces_the_single_object_iterates(scenario, dd):
    h = small_horizon(scenario, stochastic_units(scenario), dd, REFERENCE["hour"])
    admm = BilevelADMM(dd, scenario.data, T, S)
    log: list = []
    admm._respond = recording(admm._respond, log)
    cold = admm.solve(h)
    results = [cold, admm.solve(h, cold.state.shifted(1))]
    for res, ref in zip(results, REFERENCE["runs"], strict=True):
        assert (res.outer_iterations, res.inner_iterations) == (ref["outer"], ref["inner"])
        assert res.converged == ref["converged"]
        assert close(res.objective, ref["objective"]), (res.objective, ref["objective"])
        assert all(close(res.costs[a], c) for a, c in ref["costs"].items()), res.costs
        objectives = [row["objective"] for row in res.history]
        assert all(map(close, objectives, ref["history_objective"]))
        for g in admm.names:
            pm = [pyo.value(admm.mgs[g].model.pm[t]) for t in range(T)]
            assert all(map(close, pm, ref["pm_mg"][g])), (g, pm)
            dso = [pyo.value(admm.dso.model.pm[g, t]) for t in range(T)]
            assert all(map(close, dso, ref["pm_dso"][g])), (g, dso)
        np.testing.assert_allclose(res.state.z, ref["z"], rtol=0, atol=1e-9)
    # the messages: counted by hand, JSON as sent, and nothing but boundary quantities
    n_mg = len(admm.names)
    assert cold.messages == 2 * n_mg * (cold.inner_iterations + 1)
    cold_log = log[: cold.inner_iterations + 1]
    sizes = sum(len(encode(m)) for batch in cold_log for part in batch for m in part.values())
    assert cold.bytes == sizes
    for requests, replies in cold_log[:-1]:
        assert all(set(m) == REQUEST_KEYS for m in requests.values())
        assert all(set(m) == REPLY_KEYS for m in replies.values())
        for g, m in requests.items():
            assert len(m["pm_anchor"]) == T and set(m["trade_anchor"]) == set(admm.nbrs[g])
    finish_requests, finish_replies = cold_log[-1]
    assert all(m == {"kind": "finish"} for m in finish_requests.values())
    assert set(cold.mg_plans) == set(admm.names)
    assert all(set(r) == {"plan"} for r in finish_replies.values())


def instances_reachable(root: object, cls: type) -> list:
    """Every ``cls`` instance in ``root``'s object graph (modules, classes and functions
    are not followed: they lead to the whole interpreter, not to what ``root`` holds)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen, stack, found = {id(root)}, [root], []
    while stack:
        obj = stack.pop()
        if isinstance(obj, cls):
            found.append(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, skip):
                seen.add(id(ref))
                stack.append(ref)
    return found


def test_coordinator_holds_no_microgrid_parameters(scenario, dd):
    """The DSO's side knows the microgrids by name and PCC (its network data) only."""
    names = [mg.name for mg in scenario.data.microgrids]
    coordinator = ADMMCoordinator(dd, names, T)
    assert instances_reachable(coordinator, MicrogridParams) == []
    # the check can fail: the in-process composite holds its microgrid agents
    in_process = BilevelADMM(dd, scenario.data, T, S)
    assert len(instances_reachable(in_process, MicrogridParams)) == len(names)
