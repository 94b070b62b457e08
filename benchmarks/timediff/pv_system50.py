"""The second benchmark series: a photovoltaic system's AC power with its weather, hourly.

Where it comes from: the `pvanalytics` package (0.2.2, MIT licence, copyright Alliance for
Sustainable Energy, LLC and National Technology and Engineering Solutions of Sandia, LLC) ships
two files of its PVDAQ system 50 example: AC power every 15 minutes (2011-04-15 to 2013-12-31)
and PSM3 weather every 30 minutes (air temperature, global horizontal irradiance). This script
averages both to hours on the local clock (UTC-07:00, no daylight saving) and joins them:
date, ac_power, ghi, temp_air; about 23,800 rows, with the gaps of the power meter left empty
(mltk fills them forward and says how many).

It was chosen before any TimeDiff setting was tuned on it, as a series unlike ETT: solar power
is zero every night and its daily shape follows the season and the clouds.

    pip download --no-deps -d /tmp/wheels pvanalytics==0.2.2       # offline-installable wheel
    python benchmarks/timediff/pv_system50.py /tmp/wheels/pvanalytics-0.2.2-py3-none-any.whl \\
        /tmp/pv_system50.csv

An installed pvanalytics works too: pass its package folder instead of the wheel.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pandas as pd

POWER = "pvanalytics/data/system_50_ac_power_2_full_DST.parquet"
WEATHER = "pvanalytics/data/system_50_ac_power_2_full_DST_psm3.parquet"


def _read(source: Path, member: str) -> pd.DataFrame:
    if source.is_dir():  # an installed package folder (.../site-packages/pvanalytics)
        return pd.read_parquet(source.parent / member)
    with zipfile.ZipFile(source) as wheel:
        return pd.read_parquet(io.BytesIO(wheel.read(member)))


def hourly_series(source: Path) -> pd.DataFrame:
    power = _read(source, POWER).set_index("measured_on")["ac_power_2"]
    weather = _read(source, WEATHER).set_index("index")[["ghi", "temp_air"]]
    power = power.resample("1h").mean().rename("ac_power")
    weather = weather.resample("1h").mean()
    joined = pd.concat([power, weather], axis=1, join="inner")
    joined = joined.loc[joined.index >= power.dropna().index[0]]
    joined.index = joined.index.tz_localize(None)  # local standard time, one row per hour
    joined.index.name = "date"
    return joined.astype("float64")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="the pvanalytics wheel, or its package folder")
    ap.add_argument("out", type=Path, help="the CSV to write")
    args = ap.parse_args()
    frame = hourly_series(args.source)
    frame.to_csv(args.out, float_format="%.4g")
    gaps = int(frame.isna().sum().sum())
    span = f"{frame.index[0]} to {frame.index[-1]}"
    columns = ", ".join(frame.columns)
    print(f"{args.out}: {len(frame)} hourly rows, columns {columns}, {gaps} empty cells, {span}")


if __name__ == "__main__":
    main()
