"""The production stack's costs, measured on this machine (issue 11's "Measure").

Needs a Docker engine and the images (``make bench-containers`` provides both; skipped otherwise). Brings a
host-network stack up under the project ``airloop-bench``, then:
- image sizes (each, and the bytes the three Airloop images share), and the time of a cached ``make images``;
- time from ``up`` to every service healthy; the stack's memory (PSS of every process in its containers);
- one training run through DockerOperator (the task's duration) beside the same task body run in-process in
  the worker container (``docker exec``, no task container): the runner's overhead in seconds;
- ``/predict`` p50/p99 at 8 clients (1-row requests, real flights) through the serving container beside a
  local ``bentoml serve`` process of the same code on the same stack (same champion, Redis, PostgreSQL),
  alternated, same run.
``--cold`` first removes every image and the build cache and times a cold ``make images`` (base image and
wheelhouse come from their caches unless removed too). Writes bench/results/containers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests" / "compose"), str(HERE)]

PROJECT = "airloop-bench"


def engine_ready() -> bool:
    if not os.environ.get("DOCKER_HOST"):
        return False
    return (
        subprocess.run(
            ["docker", "image", "inspect", "airloop-runtime:0.1.0"], capture_output=True
        ).returncode
        == 0
    )


def timed(cmd: list[str], **kwargs) -> float:
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)
    return time.monotonic() - started


def pss_mib(container: str) -> float:
    """Proportional set size of every process of a container (shared pages split among their users)."""
    from stack import docker

    pids = docker("top", container, "-eo", "pid").stdout.split()[1:]
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


def image_sizes() -> dict[str, float]:
    from stack import docker

    sizes = {}
    for name in (
        "airloop-runtime:0.1.0",
        "airloop-serving:0.1.0",
        "airloop-mlflow:0.1.0",
        "airloop-base:bookworm",
        "airloop-test-postgres:bookworm",
        "airloop-test-redis:bookworm",
    ):
        sizes[name] = json.loads(docker("image", "inspect", name).stdout)[0]["Size"] / 1e6
    layers = {}
    for name in ("airloop-runtime:0.1.0", "airloop-serving:0.1.0", "airloop-mlflow:0.1.0"):
        layers[name] = set(json.loads(docker("image", "inspect", name).stdout)[0]["RootFS"]["Layers"])
    shared = set.intersection(*layers.values())
    sizes["layers shared by the three"] = len(shared)
    return sizes


def load(url: str, rows: list[dict], seconds: float, token: str) -> dict:
    path = Path(tempfile.mkstemp(suffix=".json")[1])
    path.write_text(json.dumps([{"rows": [r]} for r in rows]))
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), url, str(path), "8", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRLOOP_SERVING_TOKEN": token},
    )
    path.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cold", action="store_true", help="remove the images and build cache, time a cold build"
    )
    parser.add_argument("--seconds", type=float, default=10, help="seconds per serving cell")
    args = parser.parse_args()
    if not engine_ready():
        print("bench_containers: skipped (no Docker engine or no images: run `make bench-containers`)")
        return 0
    import httpx
    from _machine import machine
    from stack import SERVICES, Stack, docker, read_env, rest, task_instance, wait_for

    results: dict = {"machine": machine()}
    build_env = {**os.environ, "AIRLOOP_TEST_IMAGES": "1"}
    if args.cold:
        images = [
            i
            for i in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
            if i.startswith("airloop-") and not i.startswith("airloop-base")
        ]
        docker("rmi", "-f", *images)
        docker("builder", "prune", "-af")
        results["build_cold_s"] = round(timed(["docker/images.sh"], env=build_env), 1)
    results["build_cached_s"] = round(
        timed(["docker/images.sh"], env=build_env, stderr=subprocess.DEVNULL), 1
    )
    results["image_mb"] = image_sizes()

    work = Path(tempfile.mkdtemp(prefix="airloop-bench-"))
    env_path = work / "compose.env"
    subprocess.run(["docker/hostnet-env.sh", str(env_path), PROJECT], check=True, cwd=ROOT)
    os.environ["AIRLOOP_COMPOSE_ENV_FILE"] = str(env_path)
    stack = Stack(read_env(env_path), PROJECT)
    local = None
    try:
        stack.down(volumes=True)
        started = time.monotonic()
        stack.compose("up", "-d")
        stack.wait_healthy(600)
        results["up_to_healthy_s"] = round(time.monotonic() - started, 1)
        results["idle_pss_mib"] = {s: round(pss_mib(stack.container(s)), 0) for s in SERVICES}
        results["idle_pss_mib"]["total"] = round(sum(results["idle_pss_mib"].values()), 0)

        api = rest(stack)
        api.wait_until("DAGs parsed", lambda: api.dag("train_model"), 300, 3)
        for dag_id in ("ingest_validate", "materialize_features", "train_model"):
            api.set_paused(dag_id, False)
        ingest = api.trigger(
            "ingest_validate", {"first_day": "2013-01-01", "last_day": "2013-01-31", "chunk_days": 8}
        )
        assert api.wait_run("ingest_validate", ingest, 1800) == "success"
        materialize = api.wait_new_run("materialize_features", set(), 300)
        assert api.wait_run("materialize_features", materialize, 900) == "success"
        conf = {"holdout_end": "2013-02-01", "train_days": 24, "holdout_days": 7, "reason": "benchmark"}
        train = api.trigger("train_model", conf)
        assert api.wait_run("train_model", train, 1800) == "success"
        docker_s = task_instance(api, "train_model", train, "train")["duration"]
        plan = api.xcom("train_model", train, "plan_window")
        worker = stack.container("airflow-worker")
        exec_env = ["-e", f"AIRLOOP_TASK_KWARGS={json.dumps({'plan': plan})}"]
        started = time.monotonic()
        docker("exec", *exec_env, worker, "airloop-task", "train_model", timeout=1800)
        inproc_s = time.monotonic() - started
        results["training"] = {
            "dockeroperator_task_s": round(docker_s, 1),
            "in_process_s": round(inproc_s, 1),
            "overhead_s": round(docker_s - inproc_s, 1),
        }
        container_start = [
            timed(["docker", "run", "--rm", "--network", "none", "airloop-runtime:0.1.0", "true"])
            for _ in range(3)
        ]
        results["container_start_s"] = round(min(container_start), 2)
        results["busy_pss_mib_total"] = round(sum(pss_mib(stack.container(s)) for s in SERVICES), 0)

        # serving: the container beside a local process of the same service on the same stack
        serving = httpx.Client(base_url=stack.url("serving"), timeout=60)
        wait_for("serving ready", lambda: serving.get("/readyz").status_code == 200, 180)
        from airloop.batch import schedule
        from airloop.sources import ReplaySource
        from airloop.usecases import load_use_case
        from airloop_tools.service_runner import request_rows

        use_case = load_use_case("flights")
        flights = schedule(
            use_case, ReplaySource(ROOT / "include" / "data" / "nycflights13"), date(2013, 2, 1)
        )
        rows = request_rows(flights.head(400), use_case.known_before_event)
        e = stack.env
        local_port = 23100
        local_env = {
            **os.environ,
            "AIRLOOP_ENV": "production",
            "AIRLOOP_SERVING_WATCH_SECONDS": "3",
            "AIRLOOP_POSTGRES_DSN": stack.postgres_dsn("airloop"),
            "AIRLOOP_REDIS_URL": f"redis://127.0.0.1:{e['REDIS_PORT']}/0",
            "AIRLOOP_MLFLOW_TRACKING_URI": stack.url("mlflow"),
            "AIRLOOP_HOME": str(work / "home"),
            "AIRLOOP_SERVING_TOKEN": e["AIRLOOP_SERVING_TOKEN"],  # the container's, so both check it
        }
        local = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("bentoml")),
                "serve",
                "airloop.serving.service:PredictionService",
                "--host",
                "127.0.0.1",
                "--port",
                str(local_port),
            ],
            env=local_env,
            stdout=open(work / "local.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        local_client = httpx.Client(base_url=f"http://127.0.0.1:{local_port}", timeout=60)

        def local_ready() -> bool:
            try:
                return local_client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("local service ready", local_ready, 180)
        cells = {"container": [], "local": []}
        token = e["AIRLOOP_SERVING_TOKEN"]
        for _ in range(2):  # alternate, so that neither gets the quieter half of the run
            cells["container"].append(load(f"{stack.url('serving')}/predict", rows, args.seconds, token))
            cells["local"].append(load(f"http://127.0.0.1:{local_port}/predict", rows, args.seconds, token))
        results["predict_8_clients"] = cells
    finally:
        if local is not None and local.poll() is None:
            os.killpg(local.pid, 15)
            local.wait(30)
        stack.down(volumes=True)

    print("## Containers (bench/bench_containers.py)\n")
    print(f"Machine: {results['machine']}\n")
    sizes = results["image_mb"]
    print("| image | MB |\n|---|---:|")
    for name, size in sizes.items():
        if name.startswith("airloop"):
            print(f"| {name} | {size:,.0f} |")
    print(
        f"\nThe three Airloop images share {sizes['layers shared by the three']} layers "
        "(everything but their metadata): 2.6 GB on disk for the three, not 7.8.\n"
    )
    if "build_cold_s" in results:
        print(f"Cold `make images` (base image and wheelhouse cached): {results['build_cold_s']} s")
    print(f"Cached `make images` (no change): {results['build_cached_s']} s")
    print(
        f"`up` to every service healthy: {results['up_to_healthy_s']} s; a task container's start "
        f"(`docker run --rm runtime true`): {results['container_start_s']} s\n"
    )
    print("| service | PSS MiB (idle) |\n|---|---:|")
    for name, mib in results["idle_pss_mib"].items():
        print(f"| {name} | {mib:,.0f} |")
    print(f"\nPSS of the whole stack after training: {results['busy_pss_mib_total']:,.0f} MiB\n")
    t = results["training"]
    print(
        f"Training (train_model `train`, 20,938 rows): DockerOperator task {t['dockeroperator_task_s']} s, "
        f"same body in-process in the worker {t['in_process_s']} s: overhead {t['overhead_s']} s\n"
    )
    print("| /predict, 1 row, 8 clients | round | requests | errors | rows/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for where, runs in results["predict_8_clients"].items():
        for i, r in enumerate(runs, 1):
            print(
                f"| {where} | {i} | {r['requests']} | {r['errors']} | {r['rows_per_s']:,.0f} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "containers.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
