"""The forecasters a user would otherwise pick, evaluated on exactly TimeDiff's windows.

- seasonal naive: repeat the last season of the lookback (a day for hourly data);
- closed-form linear map: least squares from lookback to horizon, one map shared by all
  channels or one per channel ("individual", as LTSF-Linear reports it), its lookback chosen on
  the validation split;
- DLinear (Zeng et al., AAAI 2023): moving-average trend/remainder decomposition, one linear
  layer on each (shared, or per channel), trained with Adam and early stopping (seed-fragile:
  run several seeds);
- AR-init alone: TimeDiff's own fixed linear model z_ar, without the diffusion model.

The probabilistic ones (evaluation.py) put a distribution around these point forecasts from
their residuals on the validation split.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .ar_init import apply_linear_map, fit_individual_maps, fit_linear_map
from .data import Prepared, gather


def seasonal_naive(x: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N, L, C) -> (N, H, C): y[t] = x[L - period + t mod period] (last value if L < period)."""
    lookback = x.shape[1]
    if period < 1 or period > lookback:
        return np.repeat(x[:, -1:], horizon, axis=1)
    idx = lookback - period + (np.arange(horizon) % period)
    return x[:, idx]


class ClosedFormLinear:
    """Least squares lookback -> horizon (no instance normalisation): one map shared by the
    channels, or one per channel (`individual`)."""

    def __init__(
        self, lookback: int, horizon: int, ridge: float = 1e-6, individual: bool = False
    ) -> None:
        self.lookback, self.horizon, self.ridge = lookback, horizon, ridge
        self.individual = individual
        self.weight = self.bias = None

    def fit(self, prepared: Prepared) -> ClosedFormLinear:
        x, y = prepared.windows("train", self.lookback, self.horizon)
        fit = fit_individual_maps if self.individual else fit_linear_map
        self.weight, self.bias = fit(x, y, ridge=self.ridge)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return apply_linear_map(x[:, -self.lookback :], self.weight, self.bias)


def choose_lookback(
    prepared: Prepared, horizon: int, candidates, make_predict
) -> tuple[int, dict[int, float]]:
    """The candidate lookback with the lowest validation MSE; `make_predict(L)` fits a model.

    Candidates that leave no training or no validation window are skipped (before any fit).
    """
    scores = {}
    for lookback in candidates:
        starts = prepared.splits.forecast_starts("val", lookback, horizon)
        starts_train = prepared.splits.forecast_starts("train", lookback, horizon)
        if len(starts) == 0 or len(starts_train) == 0:
            continue
        try:
            predict = make_predict(lookback)
        except ValueError:
            continue
        x, y = gather(prepared.z, starts, lookback, horizon)
        scores[lookback] = float(np.mean((predict(x) - y) ** 2))
    if not scores:
        from mltk.errors import DataError

        raise DataError(
            f"no candidate lookback ({', '.join(map(str, candidates))}) leaves both a training "
            f"and a validation window for --horizon {horizon} in {prepared.series.name} "
            f"({prepared.series.n_rows} rows); give a shorter --lookback"
        )
    return min(scores, key=scores.get), scores


class PerChannelLinear(nn.Module):
    """One linear map L -> H per channel: (B, C, L) -> (B, C, H)."""

    def __init__(self, channels: int, lookback: int, horizon: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels, horizon, lookback), 1.0 / lookback))
        self.bias = nn.Parameter(torch.zeros(channels, horizon))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bcl,chl->bch", x, self.weight) + self.bias


class DLinear(nn.Module):
    """Series decomposition + two linear maps, shared across channels or one per channel
    (`channels` given: DLinear-individual): (B, L, C) -> (B, H, C)."""

    def __init__(
        self, lookback: int, horizon: int, kernel: int = 25, channels: int | None = None
    ) -> None:
        super().__init__()
        self.kernel = kernel
        if channels is not None:
            self.seasonal = PerChannelLinear(channels, lookback, horizon)
            self.trend = PerChannelLinear(channels, lookback, horizon)
            return
        self.seasonal = nn.Linear(lookback, horizon)
        self.trend = nn.Linear(lookback, horizon)
        for layer in (self.seasonal, self.trend):
            nn.init.constant_(layer.weight, 1.0 / lookback)
            nn.init.zeros_(layer.bias)

    def moving_average(self, x: torch.Tensor) -> torch.Tensor:
        # replicate-pad both ends so the trend has the input's length
        front = x[:, :1].repeat(1, (self.kernel - 1) // 2, 1)
        back = x[:, -1:].repeat(1, self.kernel // 2, 1)
        padded = torch.cat([front, x, back], dim=1).transpose(1, 2)  # (B, C, L + k - 1)
        return nn.functional.avg_pool1d(padded, self.kernel, stride=1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trend = self.moving_average(x)
        seasonal = x - trend
        out = self.seasonal(seasonal.transpose(1, 2)) + self.trend(trend.transpose(1, 2))
        return out.transpose(1, 2)


def train_dlinear(
    prepared: Prepared,
    lookback: int,
    horizon: int,
    *,
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 5e-3,
    patience: int = 3,
    device="cpu",
    individual: bool = False,
) -> DLinear:
    """Adam on the MSE with early stopping on the validation MSE (DLinear's ETTh1 recipe)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    channels = prepared.series.n_channels if individual else None
    model = DLinear(lookback, horizon, channels=channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)  # "type1": halve every epoch
    train = prepared.splits.forecast_starts("train", lookback, horizon)
    xv, yv = prepared.windows("val", lookback, horizon)
    xv, yv = torch.from_numpy(xv).to(device), torch.from_numpy(yv).to(device)
    best, best_state, bad = np.inf, copy.deepcopy(model.state_dict()), 0
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for i in range(0, len(order), batch_size):
            x, y = gather(prepared.z, train[order[i : i + batch_size]], lookback, horizon)
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            loss = torch.mean((model(x) - y) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(torch.mean((model(xv) - yv) ** 2))
        if val < best:
            best, best_state, bad = val, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model


@torch.no_grad()
def predict_torch(model: nn.Module, x: np.ndarray, device="cpu", batch: int = 1024) -> np.ndarray:
    outs = []
    for i in range(0, len(x), batch):
        outs.append(
            model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])).to(device)).cpu().numpy()
        )
    return np.concatenate(outs)
