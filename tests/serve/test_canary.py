"""The rollout's comparisons and decisions as pure functions, and the CLI's checks of its flags."""

from __future__ import annotations

import pytest

from automodel.serve._canary import agreement, predictions_of
from automodel.serve._rollout import Thresholds, compare, verdict
from automodel.serve._server import Reply
from tests.conftest import run_cli


def _summary(stable_ms, cand_ms, errors=0, agree=100, compared=100):
    n = len(cand_ms)
    return {
        "stable": {"requests": len(stable_ms), "errors": 0, "latencies_ms": stable_ms},
        "candidate": {"requests": n, "errors": errors, "latencies_ms": cand_ms},
        "agree": agree,
        "compared": compared,
    }


def test_agreement_counts_equal_classes_and_close_values():
    assert agreement(["a", "b", "c"], ["a", "x", "c"]) == (2, 3)
    assert agreement([1.0, 2.0, 10.0], [1.05, 3.0, 10.0]) == (2, 3)  # within 10 % relative


def test_predictions_are_read_from_every_json_protocol():
    js = {"content-type": "application/json"}
    assert predictions_of(Reply(200, b'{"predictions": [1, 2]}', js)) == [1, 2]
    v2 = b'{"outputs": [{"name": "predictions", "data": [3]}]}'
    assert predictions_of(Reply(200, v2, js)) == [3]
    assert predictions_of(Reply(422, b'{"error": "x"}', js)) is None


def test_each_threshold_rolls_back_with_its_reason_and_margin():
    t = Thresholds()
    good = compare(_summary([1.0] * 100, [1.1] * 100))
    assert verdict(good, t, final=True) is None
    slow = compare(_summary([1.0] * 100, [20.0] * 100))
    assert verdict(slow, t, final=False) is None  # latency waits for the whole window
    assert verdict(slow, t, final=True).startswith("latency p50 20.00 ms is x20.0")
    failing = compare(_summary([1.0] * 100, [1.0] * 100, errors=100))
    assert verdict(failing, t, final=False).startswith("error rate 100.0% > --max-error-rate 1.0%")
    constant = compare(_summary([1.0] * 100, [1.0] * 100, agree=10))
    assert verdict(constant, t, final=False).startswith("agreement 10.0% < --min-agreement 90.0%")
    tiny = compare(_summary([0.1] * 100, [0.3] * 100))
    assert verdict(tiny, t, final=True) is None  # x3, but 0.2 ms: under the 1 ms floor
    tail = compare(_summary([0.15] * 98 + [0.6] * 2, [0.17] * 98 + [1.77] * 2))
    assert tail.p99_ratio > 2 and verdict(tail, t, final=True) is None  # p99 +1.2 ms: under 5 ms
    few = compare(_summary([1.0] * 10, [9.0] * 10, errors=10))
    assert verdict(few, t, final=True) is None  # under --min-requests: not judged yet


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "50,25"], "--steps: expected rising percentages"),
        (["--max-error-rate", "2"], "--max-error-rate:"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, message):
    r = run_cli("rollout", str(tmp_path), "--app", "x", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_status_without_a_record_says_so(tmp_path):
    r = run_cli("rollout", "--status", "--record", str(tmp_path / "rollout.json"))
    assert r.returncode == 2 and "no rollout recorded there" in r.stderr
