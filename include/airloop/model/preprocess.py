"""Preprocessing fitted on the training window and saved inside the logged model.

Categorical inputs become vocabulary indices (0 = unseen at fit time); numeric inputs are standardized
with the training mean and standard deviation (missing -> the mean, i.e. 0), clipped to +-10. With
``ple_bins`` > 0 the network's dense inputs (not the monotone ones) are piecewise-linear encoded instead
(PLE; Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning", 2022): the
training quantiles at ``ple_bins + 1`` levels give each input its bin edges (duplicates dropped), and a
value becomes one number per bin - 0 below the bin, 1 above it, linear inside; a value beyond the training
range saturates like a tree's split. The same ``Preprocessor`` (restored from JSON) transforms batch and
online rows, so both score identically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

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
    ple_bins: int = 0
    """0: dense inputs standardized; > 0: piecewise-linear encoded with at most this many bins each."""
    edges: dict[str, list[float]] = field(default_factory=dict)
    """Dense input -> its PLE bin edges (fitted when ``ple_bins`` > 0)."""

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
        if self.ple_bins > 0:
            levels = np.linspace(0.0, 1.0, self.ple_bins + 1)
            for column in self.dense:
                present = frame[column].astype("float64").dropna().to_numpy()
                edges = np.unique(np.quantile(present, levels)) if len(present) else np.zeros(1)
                if len(edges) < 2:  # a constant input: one bin, always 0
                    edges = np.array([edges[0], edges[0] + 1.0])
                self.edges[column] = [float(e) for e in edges]
        return self

    @property
    def dense_width(self) -> int:
        """Columns of the dense matrix ``transform`` returns (the network's dense input width)."""
        if self.ple_bins <= 0:
            return len(self.dense)
        return sum(len(self.edges[c]) - 1 for c in self.dense)

    def encode_dense(self, values: np.ndarray) -> np.ndarray:
        """The dense matrix from the dense inputs' raw values (float64 ``[n, len(dense)]``, missing
        already replaced by the training mean): standardized and clipped, or PLE-encoded; float32."""
        if self.ple_bins <= 0:
            scale = self.__dict__.get("_scale")
            if scale is None:  # built once per object: this runs for every request the service scores
                scale = self.__dict__["_scale"] = (
                    np.array([self.mean[c] for c in self.dense]),
                    np.array([self.std[c] for c in self.dense]),
                )
            mean, std = scale
            return np.clip((values - mean) / std, -10, 10).astype(np.float32)
        edges, offsets = self._ple_layout()
        out = np.empty((len(values), self.dense_width), dtype=np.float32)
        for j, e in enumerate(edges):
            bins = len(e) - 1
            # the value's position on the bin axis: bin index + the fraction of its bin, in [0, bins]
            k = np.clip(np.searchsorted(e, values[:, j], side="right") - 1, 0, bins - 1)
            position = np.clip(k + (values[:, j] - e[k]) / (e[k + 1] - e[k]), 0.0, bins)
            out[:, offsets[j] : offsets[j] + bins] = np.clip(position[:, None] - np.arange(bins), 0.0, 1.0)
        return out

    def _ple_layout(self) -> tuple[list[np.ndarray], list[int]]:
        """Every dense input's bin edges and the first column of its bins (built once per object)."""
        layout = self.__dict__.get("_layout")
        if layout is None:
            edges = [np.asarray(self.edges[c], dtype=np.float64) for c in self.dense]
            offsets = np.cumsum([0, *(len(e) - 1 for e in edges)])[:-1].tolist()
            layout = self.__dict__["_layout"] = (edges, offsets)
        return layout

    def standardized(self) -> Preprocessor:
        """This preprocessing with standardized dense inputs (what gradient-boosted trees take)."""
        return replace(self, ple_bins=0, edges={})

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(categorical indices int64 [n, c], dense float32 [n, d], monotone float32 [n, m])``."""
        missing = [c for c in self.inputs if c not in frame.columns]
        if missing:
            raise KeyError(f"model input lacks columns {missing}")
        cats = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, column in enumerate(self.categorical):
            index = {value: i + 1 for i, value in enumerate(self.vocab[column])}
            cats[:, j] = frame[column].astype(str).map(index).fillna(0).to_numpy(dtype=np.int64)

        def filled(columns: list[str]) -> np.ndarray:
            out = np.zeros((len(frame), len(columns)), dtype=np.float64)
            for j, column in enumerate(columns):
                out[:, j] = frame[column].astype("float64").fillna(self.mean[column]).to_numpy()
            return out

        mono = self.monotone
        monotone = np.clip(
            (filled(mono) - np.array([self.mean[c] for c in mono])) / np.array([self.std[c] for c in mono]),
            -10,
            10,
        ).astype(np.float32)
        return cats, self.encode_dense(filled(self.dense)), monotone

    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def to_json(self) -> str:
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        return cls(**json.loads(text))
