"""Regenerate the small example tables shipped in configs/data/ (deterministic)."""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def customers(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.lognormal(10.5, 0.5, n)
    plan = rng.choice(["basic", "pro", "enterprise"], n, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west", "central"], n)
    tenure = rng.integers(0, 72, n).astype(float)
    logit = -0.04 * tenure + 0.8 * (plan == "basic") - 0.6 * (plan == "enterprise") + 0.03 * (age - 45) \
        + 0.5 * (region == "south") - 0.3 * np.log(income / 36000) + rng.normal(0, 0.5, n)
    churn = np.where(logit > np.median(logit), "yes", "no")
    df = pd.DataFrame({
        "age": age, "income": income.round(2), "plan": plan, "region": region, "tenure_months": tenure,
        "signup_date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
        "notes": [f"customer note {i} {rng.integers(1e6)}" for i in range(n)],
        "churn": churn,
    })
    for col, frac in (("age", 0.05), ("income", 0.08), ("plan", 0.04), ("tenure_months", 0.03)):
        df.loc[rng.random(n) < frac, col] = np.nan
    return df


def housing(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sqft = rng.normal(1600, 500, n).clip(400)
    rooms = rng.integers(1, 7, n).astype(float)
    hood = rng.choice(["old_town", "riverside", "hills", "suburb"], n)
    age = rng.integers(0, 100, n).astype(float)
    bonus = pd.Series(hood).map({"old_town": 40_000, "riverside": 90_000, "hills": 150_000, "suburb": 0}).to_numpy()
    price = 50_000 + 120 * sqft + 8_000 * rooms - 500 * age + bonus + rng.normal(0, 20_000, n)
    df = pd.DataFrame({"sqft": sqft.round(0), "rooms": rooms, "neighborhood": hood, "age": age, "price": price.round(0)})
    df.loc[rng.random(n) < 0.05, "price"] = np.nan
    df.loc[rng.random(n) < 0.05, "sqft"] = np.nan
    df.loc[rng.random(n) < 0.03, "neighborhood"] = np.nan
    return df


if __name__ == "__main__":
    customers().to_csv(HERE / "customers.csv", index=False)
    housing().to_csv(HERE / "housing.csv", index=False)
