"""Benchmark: restoration plans against AC at their own operating point (README: Model accuracy).

For each fault case (nominal load, 2 periods, the centralised restoration MILP proven to a
1e-4 gap), prints the first period's model losses against pandapower's AC losses of the
plan's own injections (:class:`controllers.restoration_check.RestorationACCheck`), max
|V_model - V_ac| over the energised buses and the AC voltage violations: once with the
MILP's fixed-voltage loss estimate, once refined
(:func:`controllers.restoration_losses.refine_plan_losses`). Targets: loss error <= 0.5 %
of AC losses, max |V_opt - V_ac| <= 0.003 pu, no violations. Usage::

    python benchmarks/bench_restore_accuracy.py
"""

from __future__ import annotations

import time

from mgcosim.controllers.dso import dso_data
from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_check import RestorationACCheck
from mgcosim.controllers.restoration_data import nominal_inputs
from mgcosim.controllers.restoration_losses import refine_plan_losses
from mgcosim.controllers.restoration_solve import extract_result, solve_restoration
from mgcosim.controllers.solve import MipLimits
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_network_data

CASES = {
    "branch 12 lost, main grid on": ({12}, True),
    "branches 4, 24 lost, main grid on": ({4, 24}, True),
    "main grid, 12, 22 lost (islands)": ({12, 22}, False),
}
LIMITS = MipLimits(rel_gap=1e-4, node_limit=20_000)
ROW = "{:36} {:8} {:>9} {:>9} {:>10} {:>11} {:>5} {:>7}"


def main() -> None:
    data = load_network_data()
    dd = dso_data(build_ieee33(data), data)
    check = RestorationACCheck(data)
    head = ("case", "losses", "model kW", "AC kW", "loss err %", "|dV| max pu", "viol", "s")
    print(ROW.format(*head))
    for name, (faulted, main_grid) in CASES.items():
        inp = nominal_inputs(dd, data, n_periods=2, faulted=faulted, main_grid_available=main_grid)
        model = build_restoration_model(dd, data, inp)
        t0 = time.perf_counter()
        milp = solve_restoration(model, LIMITS)
        t1 = time.perf_counter()
        record, _ = refine_plan_losses(model, dd)
        t2 = time.perf_counter()
        refined = extract_result(model, record)
        for label, result, seconds in (("V=0.95", milp, t1 - t0), ("refined", refined, t2 - t1)):
            out = check.check(result.periods[0], inp, dd)
            print(
                ROW.format(
                    name,
                    label,
                    f"{1000 * out['model_loss_mw']:.2f}",
                    f"{1000 * out['ac_loss_mw']:.2f}",
                    f"{out['loss_error_pct']:+.3f}",
                    f"{out['v_error_max_pu']:.5f}",
                    out["ac_v_violations"],
                    f"{seconds:.1f}",
                )
            )


if __name__ == "__main__":
    main()
