"""Drift statistics at scale: the airloop drift engine beside a naive scipy loop, Evidently and a sort floor.

The current window (default 10,000,000 rows x 10 float64 features, 800 MB; drift injected in 5 features) is
tested against a precomputed reference: the model version's profile, built by
``airloop.model.profile.numeric_profile`` from a 1,000,000-row training window (per feature a sorted
20,000-value sample and decile PSI edges; a second line keeps all 1,000,000 values). Every method gets the
same reference sample:
- floor: one ``np.sort`` per column on 2 threads (the floor of any exact KS that sorts the window; the engine
  does not sort: one compiled pass over the unsorted window, see ``airloop.drift.kernels``);
- engine: ``DriftEngine.from_profile`` + ``update`` + ``evaluate`` (2 threads); also fed in 1M-row chunks;
- naive loop: per column ``scipy.stats.ks_2samp(sample, column)`` + ``np.histogram(column, reference edges)``;
- Evidently 0.7, in its own venv (.airloop/bench-evidently, created on first use: Evidently does not import
  with pandas 3): its stat-test functions ``ks_stat_test`` + ``psi_stat_test``
  (``evidently.legacy.calculations.stattests``) on the whole window, and
  ``Report([DataDriftPreset(method=m)])`` for m = ks, psi on 1M rows, time extrapolated linearly (~400 s
  on 10M rows).
Then 100,000,000 rows x 10 float32 (a 3.5 GiB Parquet file written once under .airloop/bench/drift) are
streamed with ``ParquetFile(pre_buffer=False).iter_batches`` into ``DriftEngine.update``, beside a read-only
pass and a sort-each-batch floor.

Each method runs in its own process (bench/_drift_worker.py). Memory: once the input is loaded, the process's
peak-RSS mark is reset (``/proc/self/clear_refs``) and read again (``VmHWM``) after the method; the growth is
the method's extra memory over the window, and "x window" is (window + extra) / window. (``ru_maxrss`` would
not do: Linux hands the parent's peak on to a child across fork + exec.) Streaming reports the process's
whole peak RSS. The machine is shared: the floor and the engine run alternately ``--repeats`` times (median
shown), CPU seconds are printed beside wall seconds, and the ratios are the result.
Usage: python bench/bench_drift.py [--rows 10000000] [--skip-evidently] [--skip-stream] [--stream-rows N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

HERE = Path(__file__).parent
ROOT = HERE.parent
DATA = ROOT / ".airloop" / "bench" / "drift"
EVIDENTLY_VENV = ROOT / ".airloop" / "bench-evidently"
WORKER = HERE / "_drift_worker.py"
FEATURES = 10
REFERENCE_ROWS = 1_000_000
THREADS = 2
DRIFT = [
    "none",
    "mean +0.02 sd",
    "sd x1.3",
    "none",
    "mean x1.5",
    "none",
    "Poisson mean 3 -> 4",
    "none",
    "mixture weight 0.3 -> 0.4",
    "none",
]
"""What changes between the reference and the current window, per feature (see ``fill``)."""
DATA_VERSION = 1


def fill(out: np.ndarray, rng: np.random.Generator, current: bool) -> None:
    """Fill ``out`` (rows x 10, float32/64) with the benchmark's features; ``current`` applies the drift.

    Continuous, skewed, bounded and tied (discrete, rounded) features, so that the KS check covers ties.
    """
    n, dt, s = len(out), out.dtype, float(current)
    out[:, 0] = rng.standard_normal(n, dt)
    out[:, 1] = rng.standard_normal(n, dt) + np.asarray(0.02 * s, dt)
    out[:, 2] = rng.standard_normal(n, dt) * np.asarray(1 + 0.3 * s, dt)
    out[:, 3] = np.exp(rng.standard_normal(n, dt) * np.asarray(0.5, dt))
    out[:, 4] = rng.standard_exponential(n, dt) * np.asarray(1 + 0.5 * s, dt)
    out[:, 5] = rng.random(n, dt)
    out[:, 6] = rng.poisson(3 + s, n)
    out[:, 7] = np.round(rng.standard_normal(n, dt) * np.asarray(10, dt)) / np.asarray(10, dt)
    out[:, 8] = rng.standard_normal(n, dt) + np.asarray(3, dt) * (rng.random(n, dt) < 0.3 + 0.1 * s)
    out[:, 9] = rng.standard_gamma(2.0, n, dt)


def generate(rows: int, seed: int, current: bool, dtype: str = "float64") -> np.ndarray:
    out = np.empty((rows, FEATURES), dtype=dtype, order="F")  # column-major: each feature contiguous
    fill(out, np.random.default_rng(seed), current)
    return out


def save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.rename(path)


def prepare(rows: int, samples: list[int]) -> dict:
    """Window, reference profiles and reference samples under DATA (cached; rebuilt when missing)."""
    DATA.mkdir(parents=True, exist_ok=True)
    window = DATA / f"window_v{DATA_VERSION}_{rows}.npy"
    if not window.exists():
        save_npy(window, generate(rows, seed=2, current=True))
    paths = {"window": str(window)}
    reference = None
    for size in samples:
        profile = DATA / f"profile_v{DATA_VERSION}_{size}.json"
        sample = DATA / f"sample_v{DATA_VERSION}_{size}.npy"
        if not (profile.exists() and sample.exists()):
            import pandas as pd

            from airloop.model.profile import numeric_profile

            if reference is None:
                reference = generate(REFERENCE_ROWS, seed=1, current=False)
            numeric = {
                f"f{j}": numeric_profile(pd.Series(reference[:, j]), sample_size=size)
                for j in range(FEATURES)
            }
            body = {"numeric": numeric, "categorical": {}, "rows": REFERENCE_ROWS}
            save_npy(sample, np.column_stack([numeric[f"f{j}"]["sample"] for j in range(FEATURES)]))
            profile.with_suffix(".tmp").write_text(json.dumps(body))
            profile.with_suffix(".tmp").rename(profile)
        paths[f"profile_{size}"], paths[f"sample_{size}"] = str(profile), str(sample)
    return paths


def prepare_parquet(rows: int, group: int = 1_000_000) -> Path:
    """``rows`` x 10 float32 drifted rows as Parquet (row groups of 1M rows), written once and reused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = DATA / f"stream_v{DATA_VERSION}_{rows}.parquet"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([(f"f{j}", pa.float32()) for j in range(FEATURES)])
    with pq.ParquetWriter(tmp, schema) as writer:
        for i, start in enumerate(range(0, rows, group)):
            block = generate(min(group, rows - start), seed=1000 + i, current=True, dtype="float32")
            table = pa.table([block[:, j] for j in range(FEATURES)], schema=schema)
            writer.write_table(table, row_group_size=group)
    tmp.rename(path)
    return path


def work(method: str, python: str = sys.executable, **args) -> dict:
    """Run one method in a fresh process; its result (seconds, extra and peak bytes, statistics)."""
    done = subprocess.run(
        [python, str(WORKER), method, json.dumps(args)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def evidently_python() -> str:
    """The Evidently venv's interpreter, created on first use (Evidently 0.7 needs pandas < 3)."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} (evidently 0.7, pandas < 3) ...", file=sys.stderr, flush=True)
        base = shutil.which("python3.11") or sys.executable
        subprocess.run([base, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently==0.7.*", "pandas<3", "pyarrow"], check=True
        )
    return str(python)


def evidently_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "from importlib.metadata import version as v; print(v('evidently'), v('pandas'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    evidently, pandas = done.stdout.split()
    return f"Evidently {evidently}, pandas {pandas}"


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def measure(args: argparse.Namespace) -> dict:
    big_reference = args.big_reference or args.stream_big_reference and not args.skip_stream
    paths = prepare(args.rows, [20_000] + ([REFERENCE_ROWS] if big_reference else []))
    window_bytes = args.rows * FEATURES * 8
    small, big = {"profile": paths["profile_20000"]}, {"profile": paths.get(f"profile_{REFERENCE_ROWS}")}
    out: dict = {
        "rows": args.rows,
        "features": FEATURES,
        "window_bytes": window_bytes,
        "threads": THREADS,
        "reference_rows": REFERENCE_ROWS,
        "runs": {},
    }
    runs = out["runs"]

    def log(name: str, r: dict) -> None:
        runs[name] = r
        print(
            f"  {name}: {r['seconds']:.2f} s ({r['cpu']:.2f} s CPU), +{mb(r['extra'])} MB",
            file=sys.stderr,
            flush=True,
        )

    common = {"window": paths["window"], "threads": THREADS}
    floors, engines = [], []
    for _ in range(args.repeats):  # alternate, so that load from other tenants hits both alike
        floors.append(work("floor", **common))
        engines.append(work("engine", **common, **small))
    for name, rs in (("floor", floors), ("engine", engines)):
        best = dict(rs[0])
        best["seconds"] = statistics.median(r["seconds"] for r in rs)
        best["cpu"] = statistics.median(r["cpu"] for r in rs)
        best["all_seconds"] = [r["seconds"] for r in rs]
        best["extra"] = max(r["extra"] for r in rs)
        log(name, best)
    log("engine_chunked", work("engine", **common, **small, chunk=args.chunk))
    log("naive", work("naive", **common, **small))
    if args.big_reference:
        log("engine_big", work("engine", **common, **big))
        log("naive_big", work("naive", **common, **big))
    python = None
    if not args.skip_evidently:
        try:
            python = evidently_python()
        except (OSError, subprocess.CalledProcessError) as error:  # no registry here: say so in the output
            out["evidently_skipped"] = f"could not create {EVIDENTLY_VENV}: {error}"
    if python is not None:
        out["evidently"] = evidently_version(python)
        ev = {"window": paths["window"], "reference": paths["sample_20000"]}
        rows = min(args.evidently_rows, args.rows)
        log("evidently_stattests", work("evidently_stattests", python, **ev, rows=rows))
        if args.evidently_report_rows:
            rows = min(args.evidently_report_rows, args.rows)
            log("evidently_report", work("evidently_report", python, **ev, rows=rows))
    if not args.skip_stream:
        stream_rows = args.stream_rows
        if not (DATA / f"stream_v{DATA_VERSION}_{stream_rows}.parquet").exists():
            free = shutil.disk_usage(DATA).free - 2**30  # keep 1 GiB
            if free < stream_rows * FEATURES * 4 * 1.1:
                stream_rows = max(1_000_000, int(free / (FEATURES * 4 * 1.1)) // 1_000_000 * 1_000_000)
                out["stream_rows_note"] = f"disk short: {stream_rows:,} rows instead of {args.stream_rows:,}"
        parquet = prepare_parquet(stream_rows)
        out["stream_rows"], out["stream_file_bytes"] = stream_rows, parquet.stat().st_size
        stream = {"parquet": str(parquet), "threads": THREADS, "batch": args.chunk}
        for mode in ("scan", "sort", "engine"):
            log(f"stream_{mode}", work("stream", **stream, mode=mode, **small))
        if args.stream_big_reference:
            log("stream_engine_big", work("stream", **stream, mode="engine", **big))
    return out


def extrapolated(r: dict, rows: int, key: str = "seconds") -> float:
    """``r[key]`` scaled linearly from the rows the run used to ``rows``."""
    return r[key] * rows / r.get("rows", rows)


def report_methods(out: dict) -> None:
    runs, rows, wb = out["runs"], out["rows"], out["window_bytes"]
    floor = runs["floor"]["seconds"]
    print(
        f"## Drift statistics: {rows:,} rows x {out['features']} float64 features ({wb / 1e6:,.0f} MB), "
        f"KS + PSI per feature\n"
    )
    print(f"Machine: {machine()}; numpy {version('numpy')}, scipy {version('scipy')}\n")
    big, repeats = f"{out['reference_rows']:,}", len(runs["floor"]["all_seconds"])
    print(
        f"Reference: the profile `numeric_profile` stores from a {big}-row training window (decile PSI "
        f"edges + a sorted sample of 20,000 values, or all {big}); every method gets the same sample. Each "
        f"method runs in its own process (imports done, the engine's compiled scan loaded, window loaded "
        f"first); time is one run (floor and engine: median of {repeats} alternating runs); CPU seconds "
        f"count every thread. Extra memory: the "
        f"process's peak-RSS growth over the loaded window (peak mark reset through /proc/self/clear_refs, "
        f"read from VmHWM); x window = (window + extra) / window.\n"
    )
    print(
        "| method | reference | threads | seconds | CPU seconds | x floor | engine is faster by | "
        "extra memory (MiB) | x window |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def line(label: str, key: str, ref: str, threads: int, versus: str | None = None) -> None:
        if key not in runs:
            return
        r = runs[key]
        seconds, cpu = extrapolated(r, rows), extrapolated(r, rows, "cpu")
        if r.get("rows", rows) != rows:
            label += f" (run on {r['rows']:,} rows; times x{rows / r['rows']:.0f}, memory as measured)"
        speedup = f"{seconds / runs[versus]['seconds']:.1f}x" if versus else ""
        print(
            f"| {label} | {ref} | {threads} | {seconds:.2f} | {cpu:.2f} | {seconds / floor:.1f} | "
            f"{speedup} | {mb(r['extra'])} | {(wb + r['extra']) / wb:.2f} |"
        )

    small = "20,000"
    naive = "naive: `ks_2samp` + `np.histogram` per column"
    line("`np.sort` of each column (floor)", "floor", "-", THREADS, "engine")
    line("airloop DriftEngine", "engine", small, THREADS)
    line(f"airloop DriftEngine, fed in {out['chunk']:,}-row chunks", "engine_chunked", small, THREADS)
    line(naive, "naive", small, 1, "engine")
    line("Evidently `ks_stat_test` + `psi_stat_test`", "evidently_stattests", small, 1, "engine")
    line(
        "Evidently `Report([DataDriftPreset(method=m)])`, m = ks, psi", "evidently_report", small, 1, "engine"
    )
    line("airloop DriftEngine", "engine_big", big, THREADS)
    line(naive, "naive_big", big, 1, "engine_big")
    if "evidently_skipped" in out:
        print(f"\nEvidently skipped: {out['evidently_skipped']}.")
    if not all(r.get("peak_reset", True) for r in runs.values()):
        print(
            "\nWarning: /proc/self/clear_refs was not writable, so extra memory is the growth over the "
            "peak reached while loading (an underestimate)."
        )
    if "evidently" in out:
        print(
            f"\nEvidently ran in its own venv ({out['evidently']}); its `psi` uses equal-width (Sturges) "
            f"bins over both samples, not the reference deciles."
        )


def report_features(out: dict) -> None:
    runs = out["runs"]
    e, naive = runs["engine"], runs["naive"]
    print("\n### Per feature: the engine against scipy (same 20,000-value reference)\n")
    print(
        "| feature | drift injected | KS D engine | KS D scipy | abs diff | p engine (asymptotic) | "
        "p scipy | PSI engine | PSI naive | status |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for j in range(out["features"]):
        print(
            f"| f{j} | {DRIFT[j]} | {e['d'][j]:.6f} | {naive['d'][j]:.6f} | "
            f"{abs(e['d'][j] - naive['d'][j]):.1e} | {e['p'][j]:.3g} | {naive['p'][j]:.3g} | "
            f"{e['psi'][j]:.4f} | {naive['psi'][j]:.4f} | {e['status'][j]} |"
        )
    pairs = [
        (a, b)
        for a, b in (("engine", "naive"), ("engine_chunked", "naive"), ("engine_big", "naive_big"))
        if a in runs and b in runs
    ]
    for stat in ("d", "psi"):
        out[f"max_{stat}_diff"] = {
            a: max(abs(x - y) for x, y in zip(runs[a][stat], runs[b][stat], strict=True)) for a, b in pairs
        }
    ok = all(v <= 1e-9 for v in out["max_d_diff"].values())
    print(
        f"\nKS D check, engine vs `scipy.stats.ks_2samp` on every feature (tolerance 1e-9): "
        f"{'PASS' if ok else 'FAIL'}; max |diff| "
        + ", ".join(f"{k} {v:.1e}" for k, v in out["max_d_diff"].items())
        + ". PSI vs `np.histogram` on the same edges: max |diff| "
        + ", ".join(f"{k} {v:.1e}" for k, v in out["max_psi_diff"].items())
        + "."
    )


def report_stream(out: dict) -> None:
    runs, n = out["runs"], out["stream_rows"]
    print(
        f"\n### Streaming {n:,} rows x {out['features']} float32 from Parquet "
        f"({out['stream_file_bytes'] / 2**30:.1f} GiB, `ParquetFile(pre_buffer=False).iter_batches`, "
        f"{out['chunk']:,}-row batches)\n"
    )
    if "stream_rows_note" in out:
        print(f"Note: {out['stream_rows_note']}.\n")
    print("| pass | seconds | CPU seconds | M rows/s | x read | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    scan = runs["stream_scan"]["seconds"]
    passes = {
        "stream_scan": "read only",
        "stream_sort": f"read + `np.sort` of each batch column ({THREADS} threads, floor)",
        "stream_engine": f"read + `DriftEngine.update`, 20,000 reference ({THREADS} threads)",
        "stream_engine_big": f"read + `DriftEngine.update`, {out['reference_rows']:,} reference "
        f"({THREADS} threads)",
    }
    for key, label in passes.items():
        if key in runs:
            r = runs[key]
            print(
                f"| {label} | {r['seconds']:.2f} | {r['cpu']:.2f} | {n / r['seconds'] / 1e6:.1f} | "
                f"{r['seconds'] / scan:.1f} | {mb(r['peak'])} |"
            )


def report_targets(out: dict) -> None:
    runs, rows, wb = out["runs"], out["rows"], out["window_bytes"]
    floor, engine, naive = runs["floor"], runs["engine"], runs["naive"]
    print("\n### Targets\n")
    print("| target | measured | met |")
    print("|---|---|---|")

    def target(name: str, value: str, met: bool) -> None:
        print(f"| {name} | {value} | {'yes' if met else 'NO'} |")

    ratio = engine["seconds"] / floor["seconds"]
    target(
        "engine within 3x of the sort floor",
        f"{ratio:.2f}x (CPU {engine['cpu'] / floor['cpu']:.2f}x)",
        ratio <= 3,
    )
    speedup = naive["seconds"] / engine["seconds"]
    target(
        ">= 15x faster than the naive loop",
        f"{speedup:.1f}x (CPU {naive['cpu'] / engine['cpu']:.1f}x; "
        f"the sort floor itself is {naive['seconds'] / floor['seconds']:.1f}x)",
        speedup >= 15,
    )
    evidently = (("evidently_stattests", "stat-test functions"), ("evidently_report", "DataDriftPreset"))
    for key, label in evidently:
        if key in runs:
            speedup = extrapolated(runs[key], rows) / engine["seconds"]
            target(f">= 30x faster than Evidently ({label})", f"{speedup:.1f}x", speedup >= 30)
    x = (wb + engine["extra"]) / wb
    target("peak memory <= 2x the window", f"{x:.2f}x (window + {mb(engine['extra'])} MiB)", x <= 2)
    if "stream_engine" in runs:
        r = runs["stream_engine"]
        target(
            f"{out['stream_rows']:,} rows streamed from Parquet, peak < 2 GB",
            f"{r['peak'] / 1e9:.2f} GB in {r['seconds']:.1f} s",
            r["peak"] < 2e9,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="alternating floor/engine runs (median shown)")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="chunk / Parquet batch rows")
    parser.add_argument(
        "--skip-big-reference",
        dest="big_reference",
        action="store_false",
        help="skip the 1,000,000-value reference lines",
    )
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument(
        "--evidently-rows",
        type=int,
        default=10_000_000,
        help="rows for Evidently's stat tests (time extrapolated linearly)",
    )
    parser.add_argument(
        "--evidently-report-rows",
        type=int,
        default=1_000_000,
        help="rows for Evidently's Report (time extrapolated linearly); 0 skips it",
    )
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--stream-rows", type=int, default=100_000_000)
    parser.add_argument(
        "--stream-big-reference",
        action="store_true",
        help="also stream against the 1,000,000-value reference (slow: minutes)",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = measure(args)
    out["chunk"] = args.chunk
    report_methods(out)
    report_features(out)
    if "stream_engine" in out["runs"]:
        report_stream(out)
    report_targets(out)
    out["total_s"] = time.perf_counter() - t0
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "drift.json").write_text(json.dumps(out, indent=2))
    print(f"\n(whole benchmark: {out['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
