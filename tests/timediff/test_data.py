"""CSV loading, the long-horizon splits, the scaler and the windows."""

from __future__ import annotations

import numpy as np
import pytest
from mltk_plugins.timediff import data

from mltk.errors import DataError, UsageError

from .conftest import write_series


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTK_CACHE_DIR", str(tmp_path / "cache"))


def test_date_column_is_detected_and_frequency_inferred(series_csv):
    s = data.read_csv(series_csv)
    assert s.columns == ["ch0", "ch1"]
    assert s.values.shape == (480, 2)
    assert s.freq is not None and s.freq.lower().endswith("h")
    assert data.season_length(s) == 24


def test_missing_values_are_forward_filled_and_counted(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("date,a,b\n2020-01-01,1,\n2020-01-02,,5\n2020-01-03,3,6\n2020-01-04,,7\n")
    warnings = []
    s = data.read_csv(path, warn=warnings.append)
    np.testing.assert_allclose(s.values[:, 0], [1, 1, 3, 3])
    np.testing.assert_allclose(s.values[:, 1], [5, 5, 6, 7])  # a leading gap is back filled
    assert s.n_filled == 3
    assert warnings and "3 missing values" in warnings[0]


def test_a_first_column_of_dates_under_any_name_is_detected(tmp_path):
    path = tmp_path / "when.csv"
    rows = "".join(f"2021-03-{d:02d},{d},{2 * d}\n" for d in range(1, 11))
    path.write_text("when,a,b\n" + rows)
    s = data.read_csv(path)
    assert s.columns == ["a", "b"] and s.dates is not None and s.freq == "D"


def test_rows_out_of_date_order_are_sorted_with_a_warning(tmp_path):
    path = tmp_path / "shuffled.csv"
    order = [3, 1, 4, 2, 5, 7, 6, 8]
    path.write_text("date,a\n" + "".join(f"2021-03-{d:02d},{10 * d}\n" for d in order))
    warnings = []
    s = data.read_csv(path, warn=warnings.append)
    np.testing.assert_allclose(s.values[:, 0], [10 * d for d in range(1, 9)])
    assert s.freq == "D"
    assert any("not in date order" in w for w in warnings)


def test_repeated_dates_are_a_data_error(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("date,a\n2021-03-01,1\n2021-03-02,2\n2021-03-02,3\n2021-03-03,4\n")
    with pytest.raises(DataError, match="1 repeated dates"):
        data.read_csv(path)


def test_a_csv_without_numeric_columns_is_a_data_error(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("date,name\n2020-01-01,x\n2020-01-02,y\n")
    with pytest.raises(DataError, match="no numeric column"):
        data.read_csv(path)


def test_a_target_that_does_not_exist_is_a_usage_error(series_csv):
    with pytest.raises(UsageError, match="--target 'nope'"):
        data.read_csv(series_csv, target=["nope"])


def test_target_picks_and_orders_channels(series_csv):
    s = data.read_csv(series_csv, target=["ch1"])
    full = data.read_csv(series_csv)
    assert s.columns == ["ch1"]
    np.testing.assert_array_equal(s.values[:, 0], full.values[:, 1])


def test_ett_files_split_12_4_4_months_and_others_7_1_2():
    ett = data.load_embedded("etth1")
    sp = data.make_splits(ett)
    assert (sp.train_end, sp.val_end, sp.test_end) == (8640, 11520, 14400)
    other = data.Series(np.zeros((1000, 1)), ["x"], name="mine")
    sp = data.make_splits(other)
    assert (sp.train_end, sp.val_end, sp.test_end) == (700, 800, 1000)


def test_scaler_is_fitted_on_training_rows_only(series_csv):
    s = data.read_csv(series_csv)
    p = data.prepare(s)
    train = s.values[: p.splits.train_end]
    np.testing.assert_allclose(p.scaler.mean, train.mean(0))
    np.testing.assert_allclose(p.z[: p.splits.train_end].std(0), 1.0, atol=1e-5)
    assert not np.allclose(p.scaler.mean, s.values.mean(0))


def test_windows_slide_by_one_and_no_test_window_is_dropped(series_csv):
    p = data.prepare(data.read_csv(series_csv))
    lookback, horizon = 24, 12
    x, y = p.windows("test", lookback, horizon)
    n_test = p.splits.test_end - p.splits.val_end
    assert len(x) == n_test - horizon + 1
    starts = p.splits.forecast_starts("test", lookback, horizon)
    np.testing.assert_array_equal(x[1], p.z[starts[1] - lookback : starts[1]])
    np.testing.assert_array_equal(y[-1], p.z[p.splits.test_end - horizon : p.splits.test_end])
    # a test lookback may reach into validation rows; its targets never do
    assert starts[0] == p.splits.val_end


def test_a_horizon_longer_than_the_data_allows_names_the_numbers(series_csv):
    s = data.read_csv(series_csv)
    p = data.prepare(s)
    with pytest.raises(DataError, match=r"--horizon 200 .* needs at least 200 rows in the val"):
        data.check_lengths(s, p.splits, 24, 200)


def test_the_embedded_files_are_the_unmodified_originals():
    s = data.load_embedded("etth2")
    assert s.n_rows == 17420 and s.columns[-1] == "OT"
    assert (data.DATA_DIR / "LICENSE").is_file() and (data.DATA_DIR / "README.md").is_file()


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("date,ch0,ch1", "date,ch0,ch0", 1), "names the column 'ch0' more"),
        (
            lambda t: _set_cell(t, 4, 1, "inf"),
            "infinite values (the first in column 'ch0', data row 4)",
        ),
        (lambda t: _set_cell(t, 4, 2, "1e300"), "column 'ch1' has values too large"),
        (lambda t: "\n".join(t.splitlines()[:2]) + "\n", "too few for a training split"),
    ],
    ids=["repeated column", "infinite value", "overflowing values", "one row"],
)
def test_unusable_csv_files_are_data_errors_in_one_sentence(tmp_path, edit, words):
    path = write_series(tmp_path / "s.csv")
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError) as err:
        data.prepare(data.read_csv(path))
    assert words in str(err.value) and "\n" not in str(err.value)


def _set_cell(text: str, row: int, col: int, value: str) -> str:
    lines = text.splitlines()
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_dates_in_two_formats_are_one_sentence(tmp_path):
    path = write_series(tmp_path / "s.csv")
    lines = path.read_text().splitlines()
    lines[3] = "01/01/2020 02:00," + lines[3].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        data.read_csv(path)
    msg = str(err.value)
    assert "does not hold dates in one format" in msg and "\n" not in msg and "try" not in msg


def test_columns_without_numbers_are_skipped_with_a_warning(tmp_path):
    path = write_series(tmp_path / "s.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",empty"] + [x + "," for x in lines[1:]]) + "\n")
    warnings = []
    series = data.read_csv(path, warn=warnings.append)
    assert series.columns == ["ch0", "ch1"]
    assert any("skipped columns without numbers: empty" in w for w in warnings)


def test_date_col_with_embedded_data_must_be_its_date_column():
    with pytest.raises(UsageError):
        data.load_series("etth1", date_col="nope")
