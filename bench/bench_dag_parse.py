"""DAG-file parse time: each file imported in a fresh interpreter after ``airflow.sdk`` (what the DAG
processor pays per file and parse loop), best of five, against the cost of importing ``airflow.sdk`` itself
measured the same way in the same run. The budget the project keeps: 0.2 s per file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dags"))
sys.path.insert(0, str(ROOT / "tests"))

from test_dag_integrity import DAG_FILES, HEAVY, PROBE  # noqa: E402 - after the path set-up

BASELINE = """
import json, sys, time
start = time.perf_counter()
import airflow.sdk
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def best_of(args: list[str], runs: int = 5) -> float:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", *args], capture_output=True, text=True, env=env, check=True
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return min(times)


def main() -> int:
    sdk = best_of([BASELINE])
    print(f"{'DAG file':<28} {'import s (after airflow.sdk)':>28}")
    print(f"{'(airflow.sdk itself)':<28} {sdk:>28.3f}")
    worst = 0.0
    for path in DAG_FILES:
        seconds = best_of([PROBE, str(path), *HEAVY])
        worst = max(worst, seconds)
        print(f"{path.name:<28} {seconds:>28.3f}")
    print(
        f"worst file: {worst:.3f} s = {worst / sdk:.2f}x airflow.sdk's import; budget 0.2 s: "
        f"{'kept' if worst < 0.2 else 'EXCEEDED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
