"""The deployment files agree with each other (static checks; the compose test runs them for real)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yaml", *sorted((ROOT / "docker").glob("compose.*.yaml"))]


def variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_every_compose_variable_is_documented_in_env_example():
    used = set().union(*(variables(p.read_text()) for p in COMPOSE_FILES))
    assert used - set(env_example()) == set()


def test_env_example_holds_no_secret_and_the_defaults_of_the_compose_file():
    env = env_example()
    for secret in (
        "POSTGRES_PASSWORD",
        "AIRLOOP_ADMIN_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRLOOP_SERVING_TOKEN",
    ):
        assert env[secret] == ""
    text = (ROOT / "docker-compose.yaml").read_text()
    for name, default in re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", text):
        assert env[name] == default, name


def test_the_serving_container_requires_a_token_in_every_deployment():
    """Compose refuses to start without AIRLOOP_SERVING_TOKEN (``:?``); Kubernetes reads it from a Secret."""
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    assert services["serving"]["environment"]["AIRLOOP_SERVING_TOKEN"].startswith("${AIRLOOP_SERVING_TOKEN:?")
    assert "AIRLOOP_SERVING_TOKEN" not in {  # only the service holds it, not every container
        k for name, s in services.items() if name != "serving" for k in (s.get("environment") or {})
    }
    docs = yaml.safe_load_all((ROOT / "docker" / "kubernetes" / "serving.yaml").read_text())
    [serving] = [
        c
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        if c["name"] == "serving"
    ]
    [token] = [e for e in serving["env"] if e["name"] == "AIRLOOP_SERVING_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "airloop-serving", "key": "token"}


def test_the_hostnet_override_puts_every_service_on_the_host_network_with_loopback_ports():
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    override = yaml.safe_load((ROOT / "docker" / "compose.hostnet.yaml").read_text())["services"]
    assert set(override) == set(services)
    assert all(s == {"network_mode": "host"} for s in override.values())
    assert not [name for name, s in services.items() if "ports" in s]  # ports only in compose.ports.yaml
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "docker" / "compose.hostnet.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert all(env[k] == "127.0.0.1" for k in env if k.endswith(("_HOST", "_BIND", "_LISTEN")))


def test_the_image_build_context_is_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text()
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (ROOT / "docker" / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            if source.startswith("/"):
                continue
            assert f"!{source.rstrip('/')}" in ignore or f"!{source}" in ignore, source
    rules = [r for r in ignore.splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*"  # everything else (.venv, .airloop, .git, tests) stays out of the image


def test_kubernetes_files_parse_and_use_the_same_images_and_probes():
    """Static only: no helm or cluster here (README says these are unverified against a chart)."""
    values = yaml.safe_load((ROOT / "docker" / "kubernetes" / "airflow-values.yaml").read_text())
    assert values["images"]["airflow"]["repository"].endswith("/airloop-runtime")
    assert values["executor"] in ("CeleryExecutor", "KubernetesExecutor")
    assert values["config"]["core"]["dags_folder"] == "/opt/airloop/dags"
    docs = list(yaml.safe_load_all((ROOT / "docker" / "kubernetes" / "serving.yaml").read_text()))
    containers = {
        c["name"]: c
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert containers["serving"]["image"].endswith("/airloop-serving:0.1.0")
    assert containers["serving"]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert containers["mlflow"]["readinessProbe"]["httpGet"]["path"] == "/health"
    secrets = {
        d["metadata"]["name"]
        for d in yaml.safe_load_all((ROOT / "docker" / "kubernetes" / "secrets.example.yaml").read_text())
    }
    referenced = {
        values["data"][k] for k in ("metadataSecretName", "resultBackendSecretName", "brokerUrlSecretName")
    }
    referenced |= {values[k] for k in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName")}
    referenced |= {"airloop-settings", "airloop-mlflow", "airloop-serving"}
    assert referenced <= secrets
