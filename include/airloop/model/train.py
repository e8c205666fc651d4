"""Train the tabular network: time-ordered validation split, early stopping, then a refit on all rows;
deterministic for a seed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from airloop.model.metrics import best_f1_threshold, scores
from airloop.model.net import Ensemble, TabularNet, build_net
from airloop.model.preprocess import Preprocessor

logger = logging.getLogger(__name__)

DEFAULTS = {
    "epochs": 12,
    "batch_size": 1024,
    "learning_rate": 0.002,
    "hidden": 128,
    "dropout": 0.1,
    "weight_decay": 1e-5,
    "patience": 3,
    "min_epochs": 1,
    "seed": 13,
    "members": 1,
    "ple_bins": 0,
    "recency_half_life_days": 0,
}
"""``recency_half_life_days`` > 0 weights each training row by 0.5 ** (age / half-life), its age in days
before the newest training row (all history kept, newer days count more); 0 weights rows alike."""


@dataclass
class TrainedModel:
    """A fitted network with its preprocessing and label threshold; scores DataFrames."""

    net: TabularNet | Ensemble
    pre: Preprocessor
    threshold: float
    hyperparameters: dict
    history: list[dict] = field(default_factory=list)
    device: str = "cpu"
    seconds: float = 0.0
    samples_per_second: float = 0.0
    best_epochs: int = 0
    """Epochs of the state kept: the best validation log loss (early stopping), or all when refit."""
    rows: int = 0
    """Rows the network's weights and preprocessing were fit on."""

    def predict_proba(self, frame: pd.DataFrame, batch: int = 65536) -> np.ndarray:
        self.net.eval()
        cats, dense, mono = self.pre.transform(frame)
        out = []
        with torch.no_grad():
            for i in range(0, len(frame), batch):
                logits = self.net(
                    torch.from_numpy(cats[i : i + batch]),
                    torch.from_numpy(dense[i : i + batch]),
                    torch.from_numpy(mono[i : i + batch]),
                )
                out.append(torch.sigmoid(logits).numpy())
        return np.concatenate(out) if out else np.zeros(0)


def time_split(frame: pd.DataFrame, time_column: str, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last ``fraction`` of rows in time order is the validation set (never a random split)."""
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * (1 - fraction))
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def recency_weights(times: pd.Series, half_life_days: float) -> np.ndarray | None:
    """Row weights ``0.5 ** (age / half_life_days)``, ``age`` in days before the newest of ``times``, scaled
    to mean 1 so a weighted epoch moves the weights as far as an unweighted one (only the ratios count, so
    any later "now" gives the same weights); None (every row alike) when ``half_life_days`` is 0."""
    if half_life_days <= 0 or len(times) == 0:
        return None
    stamps = pd.to_datetime(times)
    age = stamps.max() - stamps
    weights = np.power(0.5, age.dt.total_seconds().to_numpy() / 86400.0 / half_life_days)
    return (weights / weights.mean()).astype(np.float32)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def train(
    train_frame: pd.DataFrame,
    valid_frame: pd.DataFrame | None,
    label: str,
    categorical: list[str],
    numeric: list[str],
    monotone: list[str],
    hyperparameters: dict | None = None,
    device: str | None = None,
    weights: np.ndarray | None = None,
) -> TrainedModel:
    """Fit preprocessing on ``train_frame``, then the network with early stopping on validation log loss
    (``valid_frame`` None: exactly ``epochs`` epochs, the last state kept, threshold 0.5). ``weights``
    (one per training row, mean 1) weight each row's loss; validation is unweighted."""
    hp = {**DEFAULTS, **(hyperparameters or {})}
    seed_everything(int(hp["seed"]))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pre = Preprocessor(categorical, numeric, monotone, ple_bins=int(hp["ple_bins"])).fit(train_frame)
    net = build_net(
        pre.cardinalities(),
        pre.dense_width,
        len(pre.monotone),
        int(hp["hidden"]),
        float(hp["dropout"]),
        int(hp["members"]),
    )
    net.to(device)
    tensors = [torch.from_numpy(a).to(device) for a in pre.transform(train_frame)]
    y = torch.from_numpy(train_frame[label].to_numpy(dtype=np.float32)).to(device)
    validating = valid_frame is not None
    if validating:
        v_tensors = [torch.from_numpy(a).to(device) for a in pre.transform(valid_frame)]
        v_y = valid_frame[label].to_numpy(dtype=np.float32)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"])
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()  # unweighted: the fused mean, bit for bit as before weighting
    row_loss = torch.nn.BCEWithLogitsLoss(reduction="none")
    w = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32)).to(device)
    generator = torch.Generator(device="cpu").manual_seed(int(hp["seed"]))
    best, best_state, best_epochs, waited, history = float("inf"), None, 0, 0, []
    started = time.perf_counter()
    seen = 0
    for epoch in range(int(hp["epochs"])):
        net.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        total = 0.0
        for i in range(0, len(order), int(hp["batch_size"])):
            idx = order[i : i + int(hp["batch_size"])]
            optimizer.zero_grad()
            logits = net.member_logits(*(t[idx] for t in tensors))  # each member on its own loss
            target = y[idx].unsqueeze(1).expand_as(logits)
            if w is None:
                loss = loss_fn(logits, target)
            else:
                loss = (row_loss(logits, target) * w[idx].unsqueeze(1)).mean()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        if not validating:
            history.append({"epoch": epoch, "train_log_loss": total / len(y)})
            best_epochs = epoch + 1
            continue
        net.eval()
        with torch.no_grad():
            v_p = torch.sigmoid(net(*v_tensors)).cpu().numpy()
        valid = scores(v_y, v_p)
        history.append(
            {
                "epoch": epoch,
                "train_log_loss": total / len(y),
                "valid_log_loss": valid["log_loss"],
                "valid_roc_auc": valid["roc_auc"],
            }
        )
        logger.info(
            "epoch %d: train %.4f valid %.4f auc %.4f",
            epoch,
            total / len(y),
            valid["log_loss"],
            valid["roc_auc"],
        )
        if valid["log_loss"] < best - 1e-5:
            best, waited, best_epochs = valid["log_loss"], 0, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= int(hp["patience"]):
                break
    seconds = time.perf_counter() - started
    net.to("cpu")
    if best_state is not None:
        net.load_state_dict(best_state)
    model = TrainedModel(
        net, pre, 0.5, hp, history, device, seconds, seen / seconds if seconds else 0.0, best_epochs, len(y)
    )
    if validating:
        model.threshold = best_f1_threshold(v_y, model.predict_proba(valid_frame))
    return model


def fit_recipe(
    frame: pd.DataFrame,
    time_column: str,
    label: str,
    categorical: list[str],
    numeric: list[str],
    monotone: list[str],
    hyperparameters: dict | None = None,
    validation_fraction: float = 0.15,
    refit: bool = True,
    device: str | None = None,
) -> TrainedModel:
    """The training recipe: early stopping on the time-ordered last ``validation_fraction`` of ``frame``
    chooses the epoch count and the decision threshold; with ``refit`` a network is then trained again from
    the same seed on ALL rows for that many epochs, so the model that ships has seen the newest rows (the
    validation tail is the most recent data, the one a retrain exists for). The refit trains at least
    ``min_epochs`` epochs (at most ``epochs``): one epoch's validation loss is noisy and, when the validation
    weeks have drifted from the rest (a retrain's newest weeks), can be lowest after the first epoch, while
    the refit network ranks the following weeks better from the third epoch on (bench/bench_loop_replay.py).
    With ``recency_half_life_days`` both fits weight rows by their age (``recency_weights``).
    History keeps the validation curve of the first fit; seconds and samples/s cover both fits."""
    half_life = float({**DEFAULTS, **(hyperparameters or {})}["recency_half_life_days"])
    fit, valid = time_split(frame, time_column, validation_fraction)
    chosen = train(
        fit,
        valid,
        label,
        categorical,
        numeric,
        monotone,
        hyperparameters,
        device,
        recency_weights(fit[time_column], half_life),
    )
    if not refit:
        return chosen
    hp = chosen.hyperparameters
    epochs = max(min(max(chosen.best_epochs, int(hp["min_epochs"])), int(hp["epochs"])), 1)
    final = train(
        frame,
        None,
        label,
        categorical,
        numeric,
        monotone,
        {**hp, "epochs": epochs},
        device,
        recency_weights(frame[time_column], half_life),
    )
    seconds = chosen.seconds + final.seconds
    seen = chosen.samples_per_second * chosen.seconds + final.samples_per_second * final.seconds
    final.threshold, final.history = chosen.threshold, chosen.history
    final.hyperparameters = hp
    final.seconds, final.samples_per_second = seconds, seen / seconds if seconds else 0.0
    return final
