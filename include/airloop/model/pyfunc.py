"""The logged model: an MLflow pyfunc that carries the network weights, the fitted preprocessing and the
label threshold, so every consumer (batch DAG, BentoML service, tests) scores exactly alike."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd


class DelayModel(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with the preprocessor's input columns (extra columns are ignored).
    Output: DataFrame with ``probability`` and ``label`` (probability >= the model's threshold)."""

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's PythonModelContext
        import torch

        from airloop.model.net import TabularNet
        from airloop.model.preprocess import Preprocessor

        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        self.pre = Preprocessor.from_json(Path(context.artifacts["preprocessor"]).read_text())
        self.threshold = float(meta["threshold"])
        self.net = TabularNet(self.pre.cardinalities(), len(self.pre.dense), len(self.pre.monotone),
                              int(meta["hidden"]), float(meta["dropout"]))
        self.net.load_state_dict(torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True))
        self.net.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        import torch

        cats, dense, mono = self.pre.transform(model_input)
        with torch.no_grad():
            p = torch.sigmoid(self.net(torch.from_numpy(cats), torch.from_numpy(dense), torch.from_numpy(mono))).numpy()
        p = p.astype(np.float64)
        return pd.DataFrame({"probability": p, "label": (p >= self.threshold).astype("int64")})


def save_artifacts(model, folder: Path) -> dict[str, str]:  # noqa: ANN001 - airloop.model.train.TrainedModel
    """Write weights, preprocessing and metadata for ``mlflow.pyfunc.log_model(artifacts=...)``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.net.state_dict(), folder / "weights.pt")
    (folder / "preprocessor.json").write_text(model.pre.to_json())
    meta = {"threshold": model.threshold, "hidden": int(model.hyperparameters["hidden"]),
            "dropout": float(model.hyperparameters["dropout"])}
    (folder / "meta.json").write_text(json.dumps(meta))
    return {"weights": str(folder / "weights.pt"), "preprocessor": str(folder / "preprocessor.json"),
            "meta": str(folder / "meta.json")}


class RegisteredModel:
    """A logged model as its consumers use it: loaded from a ``models:/`` URI, scoring any frame that
    holds its signature's input columns (extra columns such as keys or labels are left out)."""

    def __init__(self, uri: str, version: str | None = None) -> None:
        self.uri = uri
        self.version = version
        self.model = mlflow.pyfunc.load_model(uri)
        self.inputs = self.model.metadata.get_input_schema().input_names()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``probability`` and ``label`` per row."""
        return self.model.predict(frame[self.inputs])

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict(frame)["probability"].to_numpy()
