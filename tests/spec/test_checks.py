"""Spec errors found before work starts: the metric against the data's task (inferred from the
target when data.task is absent), before Ray starts; the default name; spec without models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automodel.spec import Spec, load_spec
from automodel.spec._families import FAMILIES
from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A regression table (float price) and a classification one (string label), 80 rows each."""
    root = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame.assign(price=x @ [3.0, -2.0, 1.0] + rng.normal(size=80)).to_csv(
        root / "carseats.csv", index=False
    )
    frame.assign(label=np.where(x[:, 0] > 0, "yes", "no")).to_csv(root / "churn.csv", index=False)
    return root


@pytest.mark.parametrize(
    "table, metric, task",
    [("carseats", "accuracy", "regression"), ("churn", "rmse", "classification")],
)
def test_metric_that_does_not_fit_the_inferred_task_stops_before_ray(
    tables, tmp_path, table, metric, task
):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"data: {{source: {tables / table}.csv}}\n"
        f"search: {{metric: {metric}, num_samples: 1, families: [logistic]}}\n"
    )
    ray_tmp = tmp_path / "raytmp"
    r = run_cli(
        "run",
        str(spec),
        "--out",
        str(tmp_path / "run"),
        env={"RAY_TMPDIR": str(ray_tmp)},
        timeout=300,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("spec error")]
    assert errors == [
        f"spec error: search.metric: {metric!r} is a "
        f"{'regression' if task == 'classification' else 'classification'} metric, but the target "
        f"(data.target) says this is a {task} task; use one of "
        f"{'accuracy, f1, roc_auc' if task == 'classification' else 'rmse, r2'}"
    ], r.stderr
    assert "Traceback" not in r.stderr
    assert "ray:" not in r.stderr  # the progress line before Ray starts never came
    assert not (ray_tmp / "ray").exists()  # nor did Ray write its session directory


def test_metric_against_an_explicit_task_is_a_spec_error_at_load(tables, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"data: {{source: {tables}/churn.csv, task: classification}}\nsearch: {{metric: r2}}\n"
    )
    r = run_cli("validate", str(spec))
    assert r.returncode == 2
    assert r.stderr.startswith("spec error: search.metric: 'r2' is a regression metric")
    assert "Traceback" not in r.stderr


def test_name_defaults_to_the_data_sources_stem(tables, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"data: {{source: {tables}/carseats.csv}}\n")
    assert load_spec(spec).name == "carseats"
    assert Spec().name == "digits"
    assert Spec(data={"source": "synthetic:regression?rows=100"}).name == "synthetic"
    assert Spec(name="mine", data={"source": "synthetic:regression"}).name == "mine"
    assert Spec(data={"source": "s3://bucket/sales/*.parquet"}).name == "sales"
    r = run_cli("validate", str(spec))
    assert r.returncode == 0 and r.stdout.startswith("name: carseats\n"), r.stdout + r.stderr
    assert Spec(data={"source": "data/carseats.csv"}).model_name == "carseats"  # the served name


def test_spec_does_not_import_models():
    code = "import sys, automodel.spec; print(sorted(m for m in sys.modules if m.startswith('automodel.models')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_specs_family_table_matches_the_registered_families():
    from automodel.models import FAMILIES as REGISTERED

    assert sorted(FAMILIES) == sorted(REGISTERED)
    for name, cls in REGISTERED.items():
        assert FAMILIES[name].kind == cls.kind, name
        assert FAMILIES[name].params == frozenset(cls.param_names()), name
