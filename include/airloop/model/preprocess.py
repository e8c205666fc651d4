"""Preprocessing fitted on the training window and saved inside the logged model.

Categorical inputs become vocabulary indices (0 = unseen at fit time); numeric inputs are standardized
with the training mean and standard deviation (missing -> the mean, i.e. 0), clipped to +-10. The same
``Preprocessor`` (restored from JSON) transforms batch and online rows, so both score identically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Preprocessor:
    categorical: list[str]
    numeric: list[str]
    monotone: list[str]
    vocab: dict[str, list[str]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        """Columns a model input frame must have, in order (the model signature)."""
        return [*self.categorical, *self.numeric]

    @property
    def dense(self) -> list[str]:
        """Numeric inputs of the MLP (monotone ones take their own positive path)."""
        return [c for c in self.numeric if c not in self.monotone]

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        missing = [c for c in self.inputs if c not in frame.columns]
        if missing:
            raise KeyError(f"training frame lacks model inputs {missing}")
        for column in self.categorical:
            self.vocab[column] = sorted(frame[column].dropna().astype(str).unique().tolist())
        for column in self.numeric:
            values = frame[column].astype("float64")
            self.mean[column] = float(values.mean()) if values.notna().any() else 0.0
            std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 0.0
            self.std[column] = std if std > 1e-12 else 1.0
        return self

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(categorical indices int64 [n, c], dense float32 [n, d], monotone float32 [n, m])``."""
        missing = [c for c in self.inputs if c not in frame.columns]
        if missing:
            raise KeyError(f"model input lacks columns {missing}")
        cats = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, column in enumerate(self.categorical):
            index = {value: i + 1 for i, value in enumerate(self.vocab[column])}
            cats[:, j] = frame[column].astype(str).map(index).fillna(0).to_numpy(dtype=np.int64)

        def scaled(columns: list[str]) -> np.ndarray:
            out = np.zeros((len(frame), len(columns)), dtype=np.float32)
            for j, column in enumerate(columns):
                values = frame[column].astype("float64").fillna(self.mean[column]).to_numpy()
                out[:, j] = np.clip((values - self.mean[column]) / self.std[column], -10, 10)
            return out

        return cats, scaled(self.dense), scaled(self.monotone)

    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        return cls(**json.loads(text))
