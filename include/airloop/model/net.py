"""A tabular network: embeddings for categorical inputs + scaled numeric inputs -> MLP -> logit of the
positive class.

Inputs declared monotone (e.g. precipitation) bypass the MLP and add ``softplus(w) * x`` to the logit:
their effect on the risk is non-decreasing by construction, whatever the training data.
"""

from __future__ import annotations

import torch
from torch import nn


class TabularNet(nn.Module):
    def __init__(
        self, cardinalities: list[int], n_dense: int, n_monotone: int, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(16, (n + 1) // 2 + 1)) for n in cardinalities)
        width = sum(e.embedding_dim for e in self.embeddings) + n_dense
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, 1),
        )
        self.monotone_weight = nn.Parameter(torch.zeros(n_monotone))

    def forward(self, cats: torch.Tensor, dense: torch.Tensor, monotone: torch.Tensor) -> torch.Tensor:
        parts = [emb(cats[:, i]) for i, emb in enumerate(self.embeddings)] + [dense]
        logit = self.mlp(torch.cat(parts, dim=1)).squeeze(1)
        return logit + (monotone * nn.functional.softplus(self.monotone_weight)).sum(dim=1)
