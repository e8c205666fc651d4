"""The logged model: an MLflow pyfunc that carries the network weights, the fitted preprocessing and the
label threshold, so every consumer (batch DAG, BentoML service, tests) scores exactly alike.

The registry is a trust boundary: a version holds data only (``weights.pt``, a state dict read with
``weights_only=True``; JSON), logged as a model from code (``logged_model.py``) whose class comes from the
installed package. ``RegisteredModel`` builds that class itself and never runs code stored with a version;
a version holding a pickled Python object is refused unless ``AIRLOOP_ALLOW_PICKLED_MODELS`` trusts it."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

MODEL_CODE = Path(__file__).with_name("logged_model.py")
"""The code file each version is logged with (``log_model(python_model=MODEL_CODE)``)."""
ARTIFACTS = ("weights", "preprocessor", "meta")
"""What a version carries besides that stub: ``weights.pt``, ``preprocessor.json``, ``meta.json``."""


class TabularModel(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with the preprocessor's input columns (extra columns are ignored).
    Output: DataFrame with ``probability`` and ``label`` (probability >= the model's threshold)."""

    def load_context(self, context) -> None:
        import torch

        from airloop.model.net import build_net
        from airloop.model.preprocess import Preprocessor

        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        self.pre = Preprocessor.from_json(Path(context.artifacts["preprocessor"]).read_text())
        self.threshold = float(meta["threshold"])
        self.net = build_net(
            self.pre.cardinalities(),
            self.pre.dense_width,
            len(self.pre.monotone),
            int(meta["hidden"]),
            float(meta["dropout"]),
            int(meta.get("members", 1)),  # versions logged before ensembles: one network
        )
        self.net.load_state_dict(
            torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        )
        self.net.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import torch

        cats, dense, mono = self.pre.transform(model_input)
        with torch.no_grad():
            p = torch.sigmoid(
                self.net(torch.from_numpy(cats), torch.from_numpy(dense), torch.from_numpy(mono))
            ).numpy()
        p = p.astype(np.float64)
        return pd.DataFrame({"probability": p, "label": (p >= self.threshold).astype("int64")})


def save_artifacts(model, folder: Path) -> dict[str, str]:
    """Write weights, preprocessing and metadata for ``mlflow.pyfunc.log_model(artifacts=...)``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.net.state_dict(), folder / "weights.pt")
    (folder / "preprocessor.json").write_text(model.pre.to_json())
    meta = {
        "threshold": model.threshold,
        "hidden": int(model.hyperparameters["hidden"]),
        "dropout": float(model.hyperparameters["dropout"]),
        "members": int(model.hyperparameters.get("members", 1)),
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return {
        "weights": str(folder / "weights.pt"),
        "preprocessor": str(folder / "preprocessor.json"),
        "meta": str(folder / "meta.json"),
    }


def log_model(model, example: pd.DataFrame, folder: Path) -> Any:
    """Log a trained network into the active MLflow run as ``model``: a model from code (``MODEL_CODE``)
    with the weights and JSON of ``save_artifacts`` (written to ``folder``) as its data, the signature
    inferred from ``example`` (a few input rows) and the example itself. No Python object is pickled.
    The requirements are this environment's pins (``airloop`` itself comes from the image that loads it).
    Returns MLflow's ``ModelInfo``."""
    from importlib.metadata import version

    from mlflow.models import infer_signature

    artifacts = save_artifacts(model, folder)
    example = example[model.pre.inputs]
    p = model.predict_proba(example)
    output = pd.DataFrame({"probability": p, "label": (p >= model.threshold).astype("int64")})
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=MODEL_CODE,
        artifacts=artifacts,
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=[
            f"{package}=={version(package)}"
            for package in ("mlflow", "torch", "pandas", "numpy", "scikit-learn")
        ],
    )


DelayModel = TabularModel
"""The class's name before the platform became use-case agnostic: versions registered then unpickled by it
(loaded only with ``AIRLOOP_ALLOW_PICKLED_MODELS``)."""


class UntrustedModelError(ValueError):
    """A version this process refuses to load: it would run code stored in the registry."""


def is_pickled(flavor: Mapping[str, Any]) -> bool:
    """Whether a ``python_function`` flavor (from a version's MLmodel) holds a cloudpickled ``python_model``
    (``python_model.pkl``: how versions were logged before models from code) instead of a code path."""
    return "python_model" in flavor or not flavor.get("model_code_path")


class _Scoring:
    """The pyfunc interface over a ``TabularModel`` built here (what MLflow's loader wraps it in)."""

    def __init__(self, python_model: TabularModel, context: Any) -> None:
        self.python_model, self.context = python_model, context

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.python_model.predict(self.context, model_input, params)


def _load(local: Path, what: str, allow_pickled: bool) -> Any:
    """The ``PyFuncModel`` of a version downloaded to ``local``. Its MLmodel is read as YAML first (nothing
    runs): a model from code is built from the installed ``TabularModel`` and its artifacts read as data (the
    code file logged with it is not run); a pickled one is refused unless ``allow_pickled``."""
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel, PythonModelContext

    meta = Model.load(str(local / "MLmodel"))
    flavor = meta.flavors.get("python_function")
    if flavor is None:
        raise UntrustedModelError(f"{what} has no python_function flavor: not a model Airloop logged")
    if is_pickled(flavor):
        if not allow_pickled:
            raise UntrustedModelError(
                f"refusing {what}: it is a pickled Python object (python_model.pkl, logged before models "
                "from code), and unpickling runs whatever code it holds; retrain to log it as code, or set "
                "AIRLOOP_ALLOW_PICKLED_MODELS=true if you trust everyone who can write to the registry"
            )
        logger.warning("%s is a pickled Python object: unpickled (AIRLOOP_ALLOW_PICKLED_MODELS)", what)
        return mlflow.pyfunc.load_model(str(local))
    root, logged = local.resolve(), flavor.get("artifacts") or {}
    paths = {}
    for name in ARTIFACTS:
        entry = logged.get(name)
        path = (root / entry["path"]).resolve() if isinstance(entry, dict) and entry.get("path") else None
        if path is None or not path.is_relative_to(root) or not path.is_file():
            raise UntrustedModelError(f"refusing {what}: artifact {name!r} is missing from the model")
        paths[name] = str(path)
    python_model = TabularModel()
    context = PythonModelContext(artifacts=paths, model_config=None)
    python_model.load_context(context)
    return PyFuncModel(model_meta=meta, model_impl=_Scoring(python_model, context), model_id=meta.model_id)


class RegisteredModel:
    """A logged model as its consumers use it: loaded from a ``models:/`` URI, scoring any frame that
    holds its signature's input columns (extra columns such as keys or labels are left out)."""

    def __init__(self, uri: str, version: str | None = None, allow_pickled: bool | None = None) -> None:
        """``allow_pickled``: load a version logged as a pickled object (``UntrustedModelError`` otherwise);
        ``None``: the settings' ``allow_pickled_models`` (``AIRLOOP_ALLOW_PICKLED_MODELS``, default off)."""
        from mlflow.artifacts import download_artifacts

        if allow_pickled is None:
            from airloop.settings import load_settings

            allow_pickled = load_settings().allow_pickled_models
        self.uri = uri
        self.version = version
        what = f"version {version} ({uri})" if version else uri
        with tempfile.TemporaryDirectory(prefix="airloop-model-") as tmp:  # read whole: none of it kept
            local = Path(download_artifacts(artifact_uri=uri, dst_path=tmp))
            self.model = _load(local, what, allow_pickled)
        self.inputs = self.model.metadata.get_input_schema().input_names()
        self._arrays: ArrayScorer | None = None

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``probability`` and ``label`` per row."""
        return self.model.predict(frame[self.inputs])

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict(frame)["probability"].to_numpy()

    def score(
        self, columns: Mapping[str, Any], groups: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(probability, label)`` from input columns as arrays: ``predict`` without the pyfunc wrapper
        and pandas (the serving path; equal to ``predict`` bit for bit). ``groups``: sizes of consecutive
        row groups forwarded through the network separately, one per request, so that a request's
        probabilities never depend on what else is scored with it (a matrix product's rounding does
        depend on the batch's size)."""
        return self.arrays.score(columns, groups)

    @property
    def arrays(self) -> ArrayScorer:
        """The model on arrays (built on first use: only pyfuncs logged with ``TabularModel`` have one)."""
        if self._arrays is None:
            self._arrays = ArrayScorer(self.model.unwrap_python_model())
        return self._arrays


class ArrayScorer:
    """``TabularModel.predict`` on arrays: ``Preprocessor.transform`` computed with numpy (vocabulary
    lookups and standardization with the same operations in the same float64 precision), then the
    same network. Built once per loaded model: the per-call pandas work was ~2/3 of a single-row call."""

    def __init__(self, model: TabularModel) -> None:
        pre = self.pre = model.pre
        self.net, self.threshold = model.net, model.threshold
        self.categorical = list(pre.categorical)
        self.index = [{value: i + 1 for i, value in enumerate(pre.vocab[c])} for c in pre.categorical]
        self.numeric = {"dense": pre.dense, "monotone": list(pre.monotone)}
        self.mean = {kind: np.array([pre.mean[c] for c in names]) for kind, names in self.numeric.items()}
        self.std = {kind: np.array([pre.std[c] for c in names]) for kind, names in self.numeric.items()}

    def transform(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Preprocessor.transform``: categories as ``str`` looked up in the vocabulary (0 = unseen),
        numeric values missing -> training mean, then the dense ones encoded by
        ``Preprocessor.encode_dense`` (standardized or piecewise-linear) and the monotone ones
        ``(x - mean) / std`` clipped to +-10, float32."""
        rows = len(columns[[*self.categorical, *self.numeric["dense"]][0]])
        cats = np.zeros((rows, len(self.categorical)), dtype=np.int64)
        for j, (column, index) in enumerate(zip(self.categorical, self.index, strict=True)):
            cats[:, j] = [index.get(str(v), 0) for v in columns[column]]

        def filled(kind: str) -> np.ndarray:
            names = self.numeric[kind]
            if not names:
                return np.zeros((rows, 0), dtype=np.float64)
            values = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in names])
            return np.where(np.isnan(values), self.mean[kind], values)

        monotone = np.clip((filled("monotone") - self.mean["monotone"]) / self.std["monotone"], -10, 10)
        return cats, self.pre.encode_dense(filled("dense")), monotone.astype(np.float32)

    def score(
        self, columns: Mapping[str, Any], groups: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        cats, dense, mono = self.transform(columns)
        sizes = list(groups) if groups is not None else [len(cats)]
        if sum(sizes) != len(cats):
            raise ValueError(f"groups cover {sum(sizes)} rows of {len(cats)}")
        parts, start = [], 0
        with torch.inference_mode():  # (no autograd bookkeeping: ~100 us a one-row pass instead of ~165)
            for size in sizes:
                end = start + size
                logits = self.net(
                    torch.from_numpy(cats[start:end]),
                    torch.from_numpy(dense[start:end]),
                    torch.from_numpy(mono[start:end]),
                )
                parts.append(torch.sigmoid(logits).numpy())
                start = end
        p = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
        return p, (p >= self.threshold).astype("int64")
