"""IEEE 33 feeders with more microgrids: the built-in three, replicated and scaled down.

A feeder with ``n`` microgrids keeps the total microgrid capacity of the built-in case:
microgrid ``k`` (``MG1`` .. ``MGn``) copies the parameters of built-in microgrid ``k mod 3``
with every power, energy and current rating multiplied by ``3 / n`` (prices, efficiencies,
power factors and impedances kept), and sits at IEEE bus ``2 + floor(32 k / n)``, so the
microgrids spread evenly along the feeder (two per bus from 33 microgrids up). Everything
else (feeder, loads, DSO PV, tariff) is the built-in data. The shipped folders
``networks/data/ieee33_mg12`` and ``ieee33_mg48`` are written by
``python -m mgcosim.networks.scaled 12 48`` (a test checks they match).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mgcosim.networks.params import DATA_DIR

SCALED = (
    "pcc_max_i_ka",
    "pcc_p_max_mw",
    "grid_buy_max_mw",
    "grid_sell_max_mw",
    "mt_p_min_mw",
    "mt_p_max_mw",
    "mt_ramp_mw_per_h",
    "ess_p_ch_max_mw",
    "ess_p_dis_max_mw",
    "ess_e_min_mwh",
    "ess_e_max_mwh",
    "ess_e_init_mwh",
    "wind_p_rated_mw",
    "load_p_peak_mw",
)
FEEDER_BUSES = 32  # IEEE buses 2..33 (bus 1 is the substation)


def folder(n_microgrids: int) -> Path:
    """The data folder of the feeder with ``n_microgrids`` microgrids."""
    return DATA_DIR / f"ieee33_mg{n_microgrids}"


def scaled_microgrids(base: pd.DataFrame, n_microgrids: int) -> pd.DataFrame:
    """``n_microgrids`` rows of ``microgrids.csv``, built from the rows of ``base``."""
    share = len(base) / n_microgrids
    rows = []
    for k in range(n_microgrids):
        row = base.iloc[k % len(base)].copy()
        row["name"] = f"MG{k + 1}"
        row["bus_ieee"] = 2 + (FEEDER_BUSES * k) // n_microgrids
        row[list(SCALED)] = (row[list(SCALED)].astype(float) * share).round(6)
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def write(n_microgrids: int) -> Path:
    """Write ``microgrids.csv`` of the feeder with ``n_microgrids`` microgrids."""
    base = pd.read_csv(DATA_DIR / "microgrids.csv")
    out = folder(n_microgrids)
    out.mkdir(exist_ok=True)
    path = out / "microgrids.csv"
    scaled_microgrids(base, n_microgrids).to_csv(path, index=False, lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mgcosim.networks.scaled",
        description="Write the microgrids.csv of IEEE 33 feeders with more microgrids.",
    )
    parser.add_argument("counts", nargs="+", type=int, help="numbers of microgrids, e.g. 12 48")
    for n in parser.parse_args(argv).counts:
        if n < 1:
            parser.error(f"{n} microgrids: give a number >= 1")
        print(write(n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
