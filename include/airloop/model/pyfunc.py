"""The logged model: an MLflow pyfunc that carries the network weights, the fitted preprocessing and the
label threshold, so every consumer (batch DAG, BentoML service, tests) scores exactly alike."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


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


DelayModel = TabularModel
"""The class's name before the platform became use-case agnostic: versions registered then unpickle by it."""


class RegisteredModel:
    """A logged model as its consumers use it: loaded from a ``models:/`` URI, scoring any frame that
    holds its signature's input columns (extra columns such as keys or labels are left out)."""

    def __init__(self, uri: str, version: str | None = None) -> None:
        self.uri = uri
        self.version = version
        self.model = mlflow.pyfunc.load_model(uri)
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
