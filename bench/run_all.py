"""Run every benchmark script under bench/ (``bench_*.py``) in its own process; print their tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# scripts run once more with these arguments (the replay on the second use case too)
MORE_RUNS = {"bench_loop_replay.py": [["--use-case", "grid_peak"]]}


def main() -> int:
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        for extra in [[], *MORE_RUNS.get(script.name, [])]:
            print(f"\n# {' '.join([script.name, *extra])}\n", flush=True)
            failed += subprocess.run([sys.executable, str(script), *extra], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
