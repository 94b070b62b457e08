"""Time series from CSV files: parsing, the long-horizon splits, scaling and sliding windows.

The protocol is the one of the long-horizon forecasting literature (Informer, Autoformer,
DLinear, and TimeDiff Sec. 4.1): ETT files are split 12/4/4 months, every other file 7:1:2
chronologically; a standard scaler is fitted on the training rows only; windows slide with
stride 1 and no evaluation window is dropped. A validation or test window's lookback may reach
back into the previous split (its targets never do).

Parsed series are cached through `mltk.cache` (keyed by the file's content hash and the
parsing options), so a second run reads arrays instead of re-parsing the CSV.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltk.errors import DataError, UsageError

DATA_DIR = Path(__file__).resolve().parent / "data"
EMBEDDED = {"etth1": DATA_DIR / "ETTh1.csv", "etth2": DATA_DIR / "ETTh2.csv"}
_FORMAT_VERSION = 1


@dataclass
class Series:
    """A multivariate series: values (T, C) in original units, one column name per channel."""

    values: np.ndarray  # (T, C) float64
    columns: list[str]
    dates: np.ndarray | None = None  # (T,) datetime64[s], or None when the file has no dates
    name: str = "series"
    n_filled: int = 0  # missing values that were forward/back filled
    freq: str | None = None  # pandas offset alias inferred from the dates ("h", "15min", ...)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[1])


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            row = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc})") from exc
    if not row:
        raise DataError(f"{path} is empty; expected a header row and numeric columns")
    return [c.strip() for c in row]


def _parse(path: Path, date_col: str | None) -> dict[str, np.ndarray]:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    dates = None
    if date_col is not None:
        try:
            dates = pd.to_datetime(df[date_col])
        except (ValueError, TypeError) as exc:
            # pandas adds advice after the first sentence; keep the first sentence only
            first = re.split(r"\.\s", str(exc).strip() + " ")[0].strip()
            raise DataError(
                f"column {date_col!r} of {path.name} does not hold dates in one format ({first})"
            ) from exc
        df = df.drop(columns=[date_col])
    numeric = df.apply(pd.to_numeric, errors="coerce")
    # a column is numeric when most of its non-empty cells parse as numbers
    keep = [c for c in df.columns if numeric[c].notna().sum() >= 0.5 * max(df[c].notna().sum(), 1)]
    keep = [c for c in keep if numeric[c].notna().any()]
    arrays = {
        "values": numeric[keep].to_numpy(dtype=np.float64) if keep else np.zeros((len(df), 0))
    }
    arrays["numeric_mask"] = np.array([c in keep for c in df.columns], dtype=np.int8)
    if dates is not None:
        arrays["dates"] = dates.to_numpy(dtype="datetime64[s]").astype(np.int64)
    return arrays


def _detect_date_col(path: Path, columns: list[str]) -> str | None:
    """The first column named like a date, else the first column whose cells parse as dates."""
    for c in columns:
        if c.lower() in ("date", "datetime", "time", "timestamp", "ds"):
            return c
    import pandas as pd

    head = pd.read_csv(path, nrows=20)
    for c in head.columns[:2]:
        col = head[c]
        if not pd.api.types.is_numeric_dtype(col):  # object, or pandas 3's str
            try:
                pd.to_datetime(col, format="mixed")
                return str(c).strip()
            except (ValueError, TypeError):
                continue
    return None


def read_csv(
    path: str | Path,
    *,
    date_col: str | None = None,
    target: list[str] | None = None,
    name: str | None = None,
    warn=None,
) -> Series:
    """Parse a CSV of a (multivariate) time series.

    `date_col` is detected when not given ("date", "datetime", ... or a first column of dates);
    every other numeric column is a channel unless `target` picks some. Missing values are
    forward filled (then back filled at the start) and counted; `warn` receives the count.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"the data file {path} does not exist")
    columns = _header(path)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataError(
            f"{path.name} names the column {repeated[0]!r} more than once; column names must be "
            "unique"
        )
    if date_col is not None and date_col not in columns:
        raise UsageError(
            f"--date-col {date_col!r} is not a column of {path.name}; columns: {', '.join(columns)}"
        )
    if date_col is None:
        date_col = _detect_date_col(path, columns)
    from mltk.cache import cached_arrays, file_fingerprint

    arrays = cached_arrays(
        "timediff-csv",
        {"file": path.name, "date_col": date_col},
        lambda: _parse(path, date_col),
        fingerprint=file_fingerprint(path),
        version=_FORMAT_VERSION,
    )
    names = [c for c in columns if c != date_col]
    skipped = [c for c, keep in zip(names, arrays["numeric_mask"], strict=False) if not keep]
    names = [c for c, keep in zip(names, arrays["numeric_mask"], strict=False) if keep]
    values = arrays["values"].astype(np.float64)
    if skipped and warn is not None and values.shape[1] > 0:
        warn(f"{path.name}: skipped columns without numbers: {', '.join(skipped)}")
    if values.shape[1] == 0:
        raise DataError(f"{path.name} has no numeric column to forecast")
    if target:
        twice = sorted({t for t in target if target.count(t) > 1})
        if twice:
            raise UsageError(f"--target names {twice[0]!r} more than once")
        missing = [t for t in target if t not in names]
        if missing:
            raise UsageError(
                f"--target {missing[0]!r} is not a numeric column of {path.name}; "
                f"numeric columns: {', '.join(names)}"
            )
        idx = [names.index(t) for t in target]
        values, names = values[:, idx], list(target)
    dates = arrays["dates"].astype("datetime64[s]") if "dates" in arrays else None
    if dates is not None and len(dates) > 1 and (dates[1:] <= dates[:-1]).any():
        order = np.argsort(dates, kind="stable")
        dates = dates[order]
        repeated = dates[1:] == dates[:-1]
        if repeated.any():
            raise DataError(
                f"{path.name} has {int(repeated.sum())} repeated dates in {date_col!r} "
                f"(the first: {dates[1:][repeated][0]}); give one row per time step"
            )
        values = values[order]
        if warn is not None:
            warn(f"{path.name}: rows were not in date order; sorted by {date_col!r}")
    inf = np.isinf(values)
    if inf.any():
        row, col = (int(i[0]) for i in np.nonzero(inf))
        raise DataError(
            f"{path.name} has {int(inf.sum())} infinite values (the first in column "
            f"{names[col]!r}, data row {row + 1}); only finite numbers or empty cells can be filled"
        )
    values, n_filled = fill_missing(values)
    if n_filled and warn is not None:
        warn(f"{path.name}: {n_filled} missing values were forward filled")
    series = Series(values, names, dates, name or path.stem, n_filled, infer_freq(dates))
    return series


def fill_missing(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Forward fill each column, then back fill a leading gap; returns (filled, count)."""
    values = np.array(values, dtype=np.float64, copy=True)
    bad = ~np.isfinite(values)
    n = int(bad.sum())
    if n == 0:
        return values, 0
    for c in range(values.shape[1]):
        col = values[:, c]
        ok = np.isfinite(col)
        if not ok.any():
            raise DataError(f"column {c} has no finite value at all; drop it or pick --target")
        idx = np.where(ok, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(ok))
        idx[:first] = first
        values[:, c] = col[idx]
    return values, n


def infer_freq(dates: np.ndarray | None) -> str | None:
    if dates is None or len(dates) < 3:
        return None
    import warnings

    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 warns that it will return an offset
            freq = pd.infer_freq(pd.DatetimeIndex(dates[: min(len(dates), 500)]))
    except (ValueError, TypeError):
        return None
    return getattr(freq, "freqstr", freq)


def season_length(series: Series) -> int:
    """The seasonal period used by seasonal naive: a day of steps for sub-daily data, else 7/12."""
    freq = (series.freq or "").lower()
    m = re.match(r"^(\d*)(min|t|h|d|b|w|m|ms|me|q|y)", freq)
    if not m:
        return 24
    k = int(m.group(1) or 1)
    unit = m.group(2)
    if unit in ("min", "t"):
        return max(1, 1440 // k)
    if unit == "h":
        return max(1, 24 // k)
    if unit in ("d", "b"):
        return 7
    if unit in ("m", "ms", "me"):
        return 12
    return 1


def load_embedded(name: str = "etth1", *, target: list[str] | None = None, warn=None) -> Series:
    """ETTh1 or ETTh2, shipped unmodified inside the package (CC BY-ND 4.0, see data/README.md)."""
    key = name.lower()
    if key not in EMBEDDED:
        raise UsageError(f"no embedded dataset {name!r}; embedded: {', '.join(EMBEDDED)}")
    path = EMBEDDED[key]
    return read_csv(path, date_col="date", target=target, name=path.stem, warn=warn)


def load_etth1(**kwargs) -> Series:
    """Registered loader of the embedded ETTh1 (hourly, 7 channels)."""
    return load_embedded("etth1", **kwargs)


def load_etth2(**kwargs) -> Series:
    """Registered loader of the embedded ETTh2 (hourly, 7 channels)."""
    return load_embedded("etth2", **kwargs)


def load_series(data: str | None, *, date_col=None, target=None, warn=None) -> Series:
    """`--data`: an embedded name (etth1, etth2), a CSV path, or None for ETTh1."""
    embedded = data is None or (data.lower() in EMBEDDED and not Path(data).exists())
    if embedded and date_col not in (None, "date"):
        raise UsageError(
            f"--date-col {date_col!r} is not a column of the embedded data; its dates are in 'date'"
        )
    if data is None:
        return load_embedded("etth1", target=target, warn=warn)
    if embedded:
        return load_embedded(data, target=target, warn=warn)
    return read_csv(data, date_col=date_col, target=target, warn=warn)


# ---------------------------------------------------------------------------------------------
# splits and scaling


@dataclass
class Splits:
    """Row borders: train [0, train_end), validation [train_end, val_end), test [val_end, test_end)."""

    train_end: int
    val_end: int
    test_end: int
    scheme: str

    def forecast_starts(self, split: str, lookback: int, horizon: int) -> np.ndarray:
        """Indices t of the first forecast step of every window of a split (stride 1)."""
        lo, hi = {
            "train": (lookback, self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.test_end),
        }[split]
        lo = max(lo, lookback)
        return np.arange(lo, hi - horizon + 1, dtype=np.int64)


def ett_scheme(name: str) -> str | None:
    m = re.match(r"^etth|^ettm", name.lower())
    return None if not m else ("ett-hourly" if name.lower().startswith("etth") else "ett-15min")


def make_splits(series: Series, scheme: str = "auto") -> Splits:
    """12/4/4 months for ETT files (by name), else 7:1:2 chronological."""
    n = series.n_rows
    if scheme == "auto":
        scheme = ett_scheme(series.name) or "ratio"
    if scheme in ("ett-hourly", "ett-15min"):
        per_month = 30 * 24 * (4 if scheme == "ett-15min" else 1)
        tr, va, te = 12 * per_month, 16 * per_month, 20 * per_month
        if n < te:  # a truncated ETT file: fall back to ratios
            scheme = "ratio"
        else:
            return Splits(tr, va, te, scheme)
    if scheme != "ratio":
        raise UsageError(
            f"--split {scheme!r} is not known; use auto, ratio, ett-hourly or ett-15min"
        )
    n_train, n_test = int(n * 0.7), int(n * 0.2)
    return Splits(n_train, n - n_test, n, "ratio")


def check_lengths(series: Series, splits: Splits, lookback: int, horizon: int) -> None:
    """Raise a DataError naming the numbers when a split has no complete window."""
    if lookback < 1 or horizon < 1:
        raise UsageError(f"--lookback and --horizon must be positive (got {lookback}, {horizon})")
    for split in ("train", "val", "test"):
        if len(splits.forecast_starts(split, lookback, horizon)) == 0:
            lo = {"train": 0, "val": splits.train_end, "test": splits.val_end}[split]
            hi = {"train": splits.train_end, "val": splits.val_end, "test": splits.test_end}[split]
            need = horizon + (lookback if split == "train" else 0)
            raise DataError(
                f"--horizon {horizon} with --lookback {lookback} needs at least {need} rows in the "
                f"{split} split; {series.name} has {hi - lo} there ({series.n_rows} rows in all)"
            )


@dataclass
class Scaler:
    """Standard scaler per channel, fitted on the training rows only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, names: list[str] | None = None) -> Scaler:
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = values.mean(axis=0), values.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            c = int(np.argmax(bad))
            which = repr(names[c]) if names else str(c)
            raise DataError(
                f"column {which} has values too large to standardise (their variance overflows "
                "64-bit floats); rescale it"
            )
        return cls(mean, np.where(std > 1e-8, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean


@dataclass
class Prepared:
    """A scaled series with its splits: what training, evaluation and forecasting consume."""

    series: Series
    splits: Splits
    scaler: Scaler
    z: np.ndarray = field(repr=False)  # (T, C) float32, scaled

    def windows(self, split: str, lookback: int, horizon: int, starts=None):
        """(X, Y) as float32 arrays (N, L, C) and (N, H, C) for the given forecast starts."""
        if starts is None:
            starts = self.splits.forecast_starts(split, lookback, horizon)
        return gather(self.z, starts, lookback, horizon)


def gather(z: np.ndarray, starts: np.ndarray, lookback: int, horizon: int):
    idx_x = starts[:, None] + np.arange(-lookback, 0)[None, :]
    x = z[idx_x]
    if horizon == 0:
        return x, None
    idx_y = starts[:, None] + np.arange(horizon)[None, :]
    return x, z[idx_y]


def prepare(series: Series, scheme: str = "auto") -> Prepared:
    splits = make_splits(series, scheme)
    if splits.train_end < 2:
        raise DataError(
            f"{series.name} has {series.n_rows} rows, too few for a training split; "
            "give a longer series"
        )
    scaler = Scaler.fit(series.values[: splits.train_end], series.columns)
    z = scaler.transform(series.values).astype(np.float32)
    return Prepared(series, splits, scaler, z)
