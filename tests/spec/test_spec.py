"""Every malformed spec is one line naming the key, exit 2, no traceback."""

from __future__ import annotations

import json
import textwrap

import pytest

from automodel.errors import SpecError
from automodel.spec import Spec, load_spec
from tests.conftest import CONFIGS, run_cli

BAD_SPECS = {
    "bad_yaml": ("search: {num_samples: 3\n  families: [mlp", "invalid YAML"),
    "unknown_top_key": ("serch: {}", "serch: unknown key"),
    "unknown_nested_key": ("search: {num_sample: 3}", "search.num_sample: unknown key"),
    "wrong_type": ("search: {num_samples: many}", "search.num_samples: expected a valid integer"),
    "out_of_range": ("search: {num_samples: 0}", "search.num_samples: must be >= 1, got 0"),
    "unknown_family": (
        "search: {families: [mlp, catboost]}",
        "search.families: unknown family 'catboost'",
    ),
    "unbounded_queue": (
        "serve: {max_queued_requests: -1}",
        "serve.max_queued_requests: must be >= 1, got -1",
    ),
    "unknown_searcher": ("search: {searcher: bohb}", "search.searcher: must be one of"),
    "unknown_scheduler": ("search: {scheduler: pbt}", "search.scheduler: must be one of"),
    "unknown_metric": ("search: {metric: mae}", "search.metric: must be one of"),
    "metric_task_mismatch": (
        "data: {task: regression}\nsearch: {metric: accuracy}",
        "search.metric",
    ),
    "missing_file": ("data: {source: nowhere/data.csv}", "data.source: file not found"),
    "bad_space_param": (
        "search: {space: {mlp: {learning_rate: [0.1, 1]}}}",
        "search.space.mlp.learning_rate: unknown parameter",
    ),
    "bad_range": (
        "search: {space: {mlp: {lr: [0.1, 0.01]}}}",
        "search.space.mlp.lr: range low must be <= high",
    ),
    "prune_range": ("compress: {prune: 1.5}", "compress.prune: must be <= 0.95"),
    "replicas": ("serve: {min_replicas: 5, max_replicas: 2}", "serve"),
    "not_a_mapping": ("- just\n- a list", "must be a mapping"),
    "bad_k": ("features: {k: [64, 16]}", "features.k"),
    # a typo gets the key it most likely means
    "typo_nested_key": (
        "data: {taget: Purchase}",
        "data.taget: unknown key; did you mean `target`?",
    ),
    "typo_section": ("serach: {num_samples: 3}", "serach: unknown key; did you mean `search`?"),
    "case_key": (
        "search: {Metric: accuracy}",
        "search.Metric: unknown key; did you mean `metric`?",
    ),
    "typo_family": (
        "search: {families: [lightgmb]}",
        "search.families: unknown family 'lightgmb' (did you mean `lightgbm`?); valid: mlp",
    ),
    "drop_twice": ("data: {drop: [a, a]}", "data.drop: 'a' is listed twice"),
    "drop_target": ("data: {target: y, drop: [y]}", "data.drop: 'y' is the target (data.target)"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_bad_spec_is_one_clear_line(tmp_path, name):
    text, expected = BAD_SPECS[name]
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith("spec error: ")
    assert expected in message, message
    assert "\n" not in message


def test_validate_cli_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: {num_samples: 0}\n")
    proc = run_cli("validate", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "spec error: search.num_samples: must be >= 1, got 0"
    assert "Traceback" not in proc.stderr

    proc = run_cli("validate", str(CONFIGS / "digits.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "num_samples: 8" in proc.stdout and "max_metric_drop" not in proc.stdout

    proc = run_cli("--debug", "validate", str(bad))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_spec_file_and_schema(tmp_path):
    proc = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 2 and "spec file not found" in proc.stderr
    proc = run_cli("validate", "--schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert set(schema["properties"]) >= {
        "name",
        "data",
        "features",
        "search",
        "model",
        "train",
        "compress",
        "serve",
        "runtime",
        "tracking",
    }


def test_defaults_are_the_digits_quickstart():
    spec = Spec()
    assert spec.data.source == "builtin:digits"
    assert spec.metric_for("classification") == "accuracy"
    assert spec.metric_for("regression") == "r2"
    assert spec.compress is None


def test_relative_data_path_resolves_against_spec(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(
        textwrap.dedent("""
        data: {source: d.csv}
    """)
    )
    spec = load_spec(spec_path)
    assert spec.data.source == str(tmp_path / "d.csv")


def test_missing_data_file_says_where_it_looked(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "s.yaml").write_text("data: {source: data/oj.csv}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        load_spec(folder / "s.yaml")
    assert str(info.value) == (
        "spec error: data.source: file not found: data/oj.csv (looked for "
        f"{folder / 'data/oj.csv'} or {tmp_path / 'data/oj.csv'})"
    )
