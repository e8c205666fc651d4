"""One measured method of bench_drift.py in its own process: ``python _drift_worker.py METHOD ARGS_JSON``.

The process imports what the method needs (scipy.stats included: a warm process), loads its input, resets
the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs the method once under ``time.perf_counter`` and
reads the peak (``VmHWM``): ``extra`` is the method's own peak memory above the loaded input, every allocation
counted (numpy, pandas, threads). ``ru_maxrss`` is not used: Linux carries the parent's peak into a child
across fork + exec, so a small child reads the orchestrator's peak. It prints one JSON line.
The Evidently methods run under the Evidently venv's interpreter, so this file imports nothing from airloop
at module level (and nothing but numpy).
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PSI_EPSILON = 1e-4


def _status(key: str) -> int:
    """A ``/proc/self/status`` memory line (kB) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def maxrss() -> int:
    """Peak resident set size of this process (since the last ``reset_peak``), in bytes."""
    return _status("VmHWM")


PEAK_RESET = True


def reset_peak() -> int:
    """Reset the peak-RSS mark to the current RSS (Linux >= 4.0); the RSS it starts from, in bytes."""
    global PEAK_RESET
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not allowed here: the peak then also covers the loading (reported)
        PEAK_RESET = False
        return maxrss()
    return _status("VmRSS")


def load_window(path: str) -> tuple[np.ndarray, list[str]]:
    """The window, (rows, features) float64 in Fortran order: each column contiguous, as in a column store."""
    window = np.load(path)
    return window, [f"f{j}" for j in range(window.shape[1])]


def load_profile(path: str) -> dict:
    return json.loads(Path(path).read_text())


def elapsed(t0: float, c0: float) -> dict:
    """Wall seconds and CPU seconds (all threads of the process) since ``t0``/``c0``."""
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def psi(reference_shares: np.ndarray, counts: np.ndarray) -> float:
    """The engine's PSI definition (shares floored at 1e-4), written out for the naive loop."""
    ref = np.maximum(reference_shares, PSI_EPSILON)
    cur = np.maximum(counts / counts.sum(), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def run_floor(args: dict) -> dict:
    window, names = load_window(args["window"])
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(args["threads"]) as pool:  # each sorted copy is dropped at once, as in the engine
        list(pool.map(lambda j: np.sort(window[:, j], kind="quicksort")[0], range(len(names))))
    return {**elapsed(t0, c0), "base": base}


def warm_engine(profile: dict, names: list[str]) -> None:
    """What an import is to scipy: load the engine's compiled scan (numba's on-disk cache, ~0.1 s per
    process; compiled once per dtype on first use ever) by folding 10 rows into a throwaway engine."""
    from airloop.drift.engine import DriftEngine

    for dtype in ("float64", "float32"):
        DriftEngine.from_profile(profile, prediction=False).update({n: np.zeros(10, dtype) for n in names})


def run_engine(args: dict) -> dict:
    import scipy.stats  # noqa: F401  (the p-value's first call imports it: ~1 s, paid once per process)

    from airloop.drift.engine import DriftEngine
    from airloop.usecase import DriftPolicy

    window, names = load_window(args["window"])
    profile = load_profile(args["profile"])
    warm_engine(profile, names)
    policy = DriftPolicy()
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    engine = DriftEngine.from_profile(profile, prediction=False, threads=args["threads"])
    t1 = time.perf_counter()
    chunk = args.get("chunk") or len(window)
    for start in range(0, len(window), chunk):
        engine.update({name: window[start : start + chunk, j] for j, name in enumerate(names)})
    results = engine.evaluate(policy)
    timing = elapsed(t0, c0)
    by_name = {r.feature: r for r in results}
    return {
        **timing,
        "prepare_s": t1 - t0,
        "base": base,
        "d": [by_name[n].statistic for n in names],
        "p": [by_name[n].p_value for n in names],
        "psi": [by_name[n].psi for n in names],
        "status": [by_name[n].status for n in names],
        "reference_rows": engine.numeric[names[0]].reference.rows,
    }


def run_naive(args: dict) -> dict:
    from scipy.stats import ks_2samp

    window, names = load_window(args["window"])
    profile = load_profile(args["profile"])
    refs = [np.asarray(profile["numeric"][n]["sample"]) for n in names]
    shares = [np.asarray(profile["numeric"][n]["frequencies"]) for n in names]
    # the reference's decile edges, outer bins open (np.histogram drops values outside its outer edges)
    edges = [np.concatenate(([-np.inf], profile["numeric"][n]["edges"][1:-1], [np.inf])) for n in names]
    del profile
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    d, p, psis = [], [], []
    for j in range(len(names)):
        column = window[:, j]
        result = ks_2samp(refs[j], column)
        counts, _ = np.histogram(column, bins=edges[j])
        d.append(float(result.statistic))
        p.append(float(result.pvalue))
        psis.append(psi(shares[j], counts))
    return {**elapsed(t0, c0), "base": base, "d": d, "p": p, "psi": psis}


def evidently_frames(args: dict) -> tuple:
    """(current, reference, column names, rows) as the DataFrames Evidently takes; warnings silenced."""
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")
    window, names = load_window(args["window"])
    rows = args.get("rows") or len(window)
    current = pd.DataFrame(window[:rows], columns=names, copy=False)
    reference = pd.DataFrame(np.load(args["reference"]), columns=names)
    return current, reference, names, rows


def run_evidently_stattests(args: dict) -> dict:
    from evidently.legacy.calculations.stattests import ks_stat_test, psi_stat_test
    from evidently.legacy.core import ColumnType

    current, reference, names, rows = evidently_frames(args)
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    p, psis = [], []
    for name in names:
        p.append(float(ks_stat_test(reference[name], current[name], ColumnType.Numerical, None).drift_score))
        result = psi_stat_test(reference[name], current[name], ColumnType.Numerical, None)
        psis.append(float(result.drift_score))
    return {**elapsed(t0, c0), "base": base, "rows": rows, "p": p, "psi": psis}


def run_evidently_report(args: dict) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    current, reference, names, rows = evidently_frames(args)
    definition = DataDefinition(numerical_columns=names)
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    cur, ref = (
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    for method in ("ks", "psi"):
        Report([DataDriftPreset(method=method)]).run(cur, ref)
    return {**elapsed(t0, c0), "base": base, "rows": rows}


def run_stream(args: dict) -> dict:
    """Stream the Parquet window batch by batch: ``scan`` (read only), ``sort`` (the floor) or ``engine``."""
    import pyarrow.parquet as pq

    mode = args["mode"]
    if mode == "engine":
        import scipy.stats  # noqa: F401

        from airloop.drift.engine import DriftEngine
        from airloop.usecase import DriftPolicy

        profile = load_profile(args["profile"])
        warm_engine(profile, pq.ParquetFile(args["parquet"]).schema_arrow.names)
    base = reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    source = pq.ParquetFile(args["parquet"], pre_buffer=False)
    names = source.schema_arrow.names
    engine = None
    if mode == "engine":
        engine = DriftEngine.from_profile(profile, prediction=False, threads=args["threads"])
    pool = ThreadPoolExecutor(args["threads"])
    rows = 0
    for batch in source.iter_batches(batch_size=args["batch"], columns=names):
        columns = {name: batch.column(j).to_numpy() for j, name in enumerate(names)}
        rows += batch.num_rows
        if mode == "sort":
            list(pool.map(lambda c: np.sort(c, kind="quicksort")[0], columns.values()))
        elif mode == "engine":
            engine.update(columns)
    out = {"rows": rows}
    if engine is not None:
        results = {r.feature: r for r in engine.evaluate(DriftPolicy())}
        out |= {
            "d": [results[n].statistic for n in names],
            "psi": [results[n].psi for n in names],
            "reference_rows": engine.numeric[names[0]].reference.rows,
        }
    pool.shutdown()
    return {**elapsed(t0, c0), "base": base, **out}


METHODS = {
    "floor": run_floor,
    "engine": run_engine,
    "naive": run_naive,
    "stream": run_stream,
    "evidently_stattests": run_evidently_stattests,
    "evidently_report": run_evidently_report,
}


def main() -> None:
    method, args = sys.argv[1], json.loads(sys.argv[2])
    result = METHODS[method](args)
    result["peak"], result["peak_reset"] = maxrss(), PEAK_RESET
    result["extra"] = result["peak"] - result.pop("base")
    print(json.dumps(result))  # NaN is written as NaN, which json.loads reads back


if __name__ == "__main__":
    main()
