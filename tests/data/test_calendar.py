"""Calendar features: date and datetime columns become year, month, day of year, day of week (and
hour), recorded in preprocess.json so the serving predictor computes the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automodel.data import Preprocessor, load_dataset
from automodel.errors import DataError
from automodel.spec import DataSpec


def _seasonal(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    frame = pd.DataFrame(
        {
            "day": days.strftime("%Y-%m-%d"),  # text dates, as a CSV holds them
            "stamp": days + pd.to_timedelta(rng.integers(0, 24, n), unit="h"),
            "customer_id": [f"c{i:05d}" for i in range(n)],  # an identifier: still dropped
            "noise": rng.normal(size=n),
        }
    )
    frame["summer"] = np.where(days.month.isin([6, 7, 8]), "yes", "no")
    return frame


def test_dates_become_calendar_features_and_identifiers_stay_dropped(tmp_path):
    path = tmp_path / "seasonal.csv"
    _seasonal().to_csv(path, index=False)
    with pytest.warns(UserWarning, match="customer_id"):
        d = load_dataset(DataSpec(source=str(path), target="summer"))
    prep = d.preprocessor
    assert (
        "customer_id" in prep.dropped and "day" not in prep.dropped and "stamp" not in prep.dropped
    )
    names = prep.feature_names
    assert [n for n in names if n.startswith("day.")] == [
        "day.year",
        "day.month",
        "day.dayofyear",
        "day.dayofweek",
    ]
    assert "stamp.hour" in names  # times present: the hour too
    # the month alone separates summer: a depth-2 tree on the encoded month is perfect
    from sklearn.tree import DecisionTreeClassifier

    month = names.index("day.month")
    tree = DecisionTreeClassifier(max_depth=2).fit(d.X_train[:, [month]], d.y_train)
    assert tree.score(d.X_test[:, [month]], d.y_test) == 1.0


def test_calendar_encoding_round_trips_through_preprocess_json(tmp_path):
    frame = _seasonal(200)
    frame.loc[3, "day"] = None
    prep = Preprocessor.fit(frame, "summer", "classification", ["no", "yes"])
    prep.save(tmp_path / "preprocess.json")
    served = Preprocessor.load(tmp_path / "preprocess.json")
    rows = frame.drop(columns="summer")
    np.testing.assert_array_equal(served.transform(rows), prep.transform(rows))
    day = next(c for c in served.columns if c.name == "day")
    assert day.kind == "date" and day.parts == ["year", "month", "dayofyear", "dayofweek"]
    # a missing date takes the median date; its encoding equals that date's
    one = served.transform([{**rows.iloc[0].to_dict(), "day": None}])
    same = served.transform([{**rows.iloc[0].to_dict(), "day": day.fill}])
    np.testing.assert_array_equal(one, same)
    # June 15th encodes its month as 6: undo the scaling
    x = served.transform([{**rows.iloc[0].to_dict(), "day": "2020-06-15"}])[0]
    i = served.feature_names.index("day.month")
    assert x[i] * day.stds[1] + day.means[1] == pytest.approx(6.0)
    with pytest.raises(DataError, match="column 'day': expected a date, got 'soon'"):
        served.transform([{**rows.iloc[0].to_dict(), "day": "soon"}])
