"""The registry as a trust boundary: a version is logged as code (``logged_model.py``) with its weights and
JSON as data; ``RegisteredModel`` (the service's watcher, batch scoring, the gate) builds the installed
``TabularModel`` from that data, never runs code stored with a version, and refuses a version holding a
pickled Python object unless ``AIRLOOP_ALLOW_PICKLED_MODELS`` trusts it. Real MLflow (SQLite + local
artifacts), a small network trained on synthetic rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from airloop.model.pyfunc import TabularModel

TRIPWIRE = "tripwire"
"""Environment variable naming the file a hostile version's code writes when it runs."""


def _tripped() -> TabularModel:
    """What a hostile pickle calls when it is unpickled: it leaves a mark, then looks like the real model."""
    import os

    Path(os.environ[TRIPWIRE]).write_text("ran")
    return TabularModel()


class Hostile(TabularModel):
    """Pickles to a call of ``_tripped``: unpickling it runs code (what any pickle may do)."""

    def __reduce__(self):
        return (_tripped, ())


FOREIGN_CODE = """import os
from pathlib import Path

import mlflow.models

from airloop.model.pyfunc import TabularModel

Path(os.environ["tripwire"]).write_text("ran")
mlflow.models.set_model(TabularModel())
"""


def synthetic(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "c": rng.choice(["AA", "UA", "DL"], n),
            "x": rng.normal(size=n),
            "rain": rng.exponential(0.1, n),
            "event_timestamp": pd.date_range("2013-01-01", periods=n, freq="min", tz="UTC"),
        }
    )
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(0.5 - 1.5 * frame.x - 3 * frame.rain))).astype(int)
    return frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One small network, registered four ways: as training logs it (``code``), the old way (``pickled``:
    a cloudpickled ``TabularModel``), as a pickle that runs code when loaded (``hostile``), and with a code
    file that is not Airloop's stub (``foreign``: it writes the tripwire file whenever it runs)."""
    import os

    import mlflow

    from airloop.model.pyfunc import log_model, save_artifacts
    from airloop.model.train import time_split, train
    from airloop.registry import ModelRegistry

    root = tmp_path_factory.mktemp("trust")
    tripwire = root / "ran"
    os.environ[TRIPWIRE] = str(tripwire)
    frame = synthetic()
    fit, valid = time_split(frame, "event_timestamp", 0.2)
    quick = {"epochs": 1, "seed": 7, "batch_size": 256}
    net = train(fit, valid, "y", ["c"], ["x", "rain"], ["rain"], quick, device="cpu")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("trust", artifact_location=(root / "artifacts").as_uri())
    registry = ModelRegistry(uri, "trust")
    (root / "foreign.py").write_text(FOREIGN_CODE)
    python_model = {"pickled": TabularModel(), "hostile": Hostile(), "foreign": root / "foreign.py"}
    versions, signature = {}, None
    for kind in ("code", *python_model):
        with mlflow.start_run(experiment_id=experiment) as run:
            if kind == "code":
                info = log_model(net, valid.head(5), root / kind)
                signature = info.signature
            else:  # the way versions were logged before models from code, or a hostile writer
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=python_model[kind],
                    artifacts=save_artifacts(net, root / kind),
                    signature=signature,
                    pip_requirements=["mlflow"],  # (inferring them takes ~10 s a model)
                )
        versions[kind] = registry.register(info.model_uri, run.info.run_id, {}, model_id=info.model_id)
    tripwire.unlink(missing_ok=True)  # logging ran the foreign code file (MLflow validates it); none since
    yield {"net": net, "rows": valid, "versions": versions, "tripwire": tripwire, "root": root}
    mlflow.set_tracking_uri(previous)
    os.environ.pop(TRIPWIRE)


def uri(store, kind: str) -> str:
    return f"models:/trust/{store['versions'][kind]}"


def test_a_version_is_code_and_data_with_no_pickled_object(store, tmp_path):
    import mlflow
    import torch

    from airloop.model.pyfunc import MODEL_CODE

    local = Path(mlflow.artifacts.download_artifacts(uri(store, "code"), dst_path=str(tmp_path)))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"MLmodel", "logged_model.py", "artifacts/weights.pt", "artifacts/preprocessor.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle"))], files
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["model_code_path"].endswith("logged_model.py") and "python_model" not in flavor
    assert (local / "logged_model.py").read_bytes() == MODEL_CODE.read_bytes()  # the installed stub
    state = torch.load(local / "artifacts" / "weights.pt", weights_only=True)  # tensors only
    assert state and all(isinstance(t, torch.Tensor) for t in state.values())


def test_a_version_logged_as_code_scores_like_the_network(store):
    """The same function three ways: the network in memory, ``RegisteredModel`` (the installed class on the
    version's data: ``predict`` and the array path), MLflow's own loader (which runs the logged stub)."""
    import mlflow

    from airloop.model.pyfunc import RegisteredModel

    rows, version = store["rows"], store["versions"]["code"]
    model = RegisteredModel(uri(store, "code"), version)
    scored = model.predict(rows)
    np.testing.assert_allclose(scored.probability, store["net"].predict_proba(rows), rtol=1e-6, atol=1e-7)
    pd.testing.assert_frame_equal(scored, mlflow.pyfunc.load_model(uri(store, "code")).predict(rows))
    probability, label = model.score({c: rows[c].to_numpy() for c in model.inputs})
    np.testing.assert_array_equal(probability, scored.probability.to_numpy())
    np.testing.assert_array_equal(label, scored.label.to_numpy())


def test_a_pickled_version_is_refused_unless_trusted(store, monkeypatch):
    """Refused with the version and the reason, by default and with the setting off; loaded (and scoring
    like the version logged as code) with ``AIRLOOP_ALLOW_PICKLED_MODELS=true``."""
    from airloop.model.pyfunc import RegisteredModel, UntrustedModelError

    version = store["versions"]["pickled"]
    monkeypatch.delenv("AIRLOOP_ALLOW_PICKLED_MODELS", raising=False)
    with pytest.raises(UntrustedModelError, match=rf"refusing version {version} .*pickled Python object"):
        RegisteredModel(uri(store, "pickled"), version)
    monkeypatch.setenv("AIRLOOP_ALLOW_PICKLED_MODELS", "false")
    with pytest.raises(UntrustedModelError, match="AIRLOOP_ALLOW_PICKLED_MODELS=true"):
        RegisteredModel(uri(store, "pickled"), version)
    monkeypatch.setenv("AIRLOOP_ALLOW_PICKLED_MODELS", "true")
    trusted = RegisteredModel(uri(store, "pickled"), version).predict(store["rows"])
    expected = RegisteredModel(uri(store, "code"), store["versions"]["code"]).predict(store["rows"])
    pd.testing.assert_frame_equal(trusted, expected)


def test_a_refused_pickle_is_never_unpickled(store):
    """The check reads the MLmodel before anything is unpickled: a pickle that runs code when loaded stays
    inert when refused (and does run once trusted: the tripwire is live)."""
    from airloop.model.pyfunc import RegisteredModel, UntrustedModelError

    version = store["versions"]["hostile"]
    with pytest.raises(UntrustedModelError, match=f"version {version}"):
        RegisteredModel(uri(store, "hostile"), version, allow_pickled=False)
    assert not store["tripwire"].exists()
    RegisteredModel(uri(store, "hostile"), version, allow_pickled=True)
    assert store["tripwire"].read_text() == "ran"
    store["tripwire"].unlink()


def test_code_stored_with_a_version_is_not_run(store):
    """A version logged with another code file than Airloop's stub: ``RegisteredModel`` builds the installed
    class on its data and never runs that file (MLflow's own loader would)."""
    import mlflow

    from airloop.model.pyfunc import RegisteredModel

    rows, version = store["rows"], store["versions"]["foreign"]
    scored = RegisteredModel(uri(store, "foreign"), version).predict(rows)
    assert not store["tripwire"].exists()
    np.testing.assert_allclose(scored.probability, store["net"].predict_proba(rows), rtol=1e-6, atol=1e-7)
    mlflow.pyfunc.load_model(uri(store, "foreign"))
    assert store["tripwire"].read_text() == "ran"
    store["tripwire"].unlink()


def test_artifacts_outside_the_model_or_no_pyfunc_are_refused(store, tmp_path):
    """A version's MLmodel names its artifacts: a path leading out of the model's folder is refused, and so
    is a model without the pyfunc flavor."""
    import mlflow

    from airloop.model.pyfunc import RegisteredModel, UntrustedModelError

    local = Path(mlflow.artifacts.download_artifacts(uri(store, "code"), dst_path=str(tmp_path)))
    spec = yaml.safe_load((local / "MLmodel").read_text())
    (tmp_path / "elsewhere.json").write_text("{}")
    spec["flavors"]["python_function"]["artifacts"]["meta"]["path"] = "../elsewhere.json"
    (local / "MLmodel").write_text(yaml.safe_dump(spec))
    with pytest.raises(UntrustedModelError, match="artifact 'meta' is missing"):
        RegisteredModel(str(local), allow_pickled=False)
    del spec["flavors"]["python_function"]
    (local / "MLmodel").write_text(yaml.safe_dump(spec))
    with pytest.raises(UntrustedModelError, match="no python_function flavor"):
        RegisteredModel(str(local), allow_pickled=False)
    shutil.rmtree(local)
