"""Experiment tracking: MLflow and TensorBoard through Ray Tune's logger callbacks, plus the final model.

``tracking.mlflow: URI`` gives one MLflow run a trial (Ray's ``MLflowLoggerCallback``, named by
trial id, with the decoded family / params / k as parameters) and one ``final`` run with the
retrained model's test metrics and per-epoch history. ``tracking.tensorboard: true`` writes
tfevents next to each trial (Ray's ``TBXLoggerCallback``) and ``<run>/tensorboard/final`` for the
final model, so ``tensorboard --logdir RUN_DIR`` shows both.

Both log from the driver: the callbacks run where ``tuner.fit()`` runs, so a ``file:`` store is
written on the machine that started the run (use a server URI for a multi-node cluster).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from automodel.contracts import Card
from automodel.errors import AutomodelError

FINAL_RUN = "final"
# What a trial's MLflow run records per iteration: Tune adds ~20 bookkeeping keys we leave out.
TRIAL_KEYS = ("loss", "training_iteration", "time_total_s", "time_this_iter_s")


class TrackingError(AutomodelError):
    """Tracking was asked for but cannot work (package missing, store unreachable)."""


def _needs_mlflow() -> None:
    if importlib.util.find_spec("mlflow") is None:
        raise TrackingError(
            "tracking.mlflow: needs the mlflow package; install it with "
            "`pip install 'automodel[tracking]'` (or `pip install mlflow-skinny`)"
        )


def _allow_file_store(uri: str) -> None:
    # MLflow 3 refuses the filesystem store unless told; a local file: store is what works offline.
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def tracking_callbacks(spec: Any, metric: str) -> list:
    """The Tune callbacks ``spec.tracking`` asks for (empty when tracking is off)."""
    callbacks: list = []
    if spec.tracking.mlflow:
        _needs_mlflow()
        _allow_file_store(spec.tracking.mlflow)
        callbacks.append(_trial_runs_callback(spec.tracking.mlflow, spec.name, metric))
    if spec.tracking.tensorboard:
        from ray.tune.logger import TBXLoggerCallback

        callbacks.append(TBXLoggerCallback())
    return callbacks


def _trial_runs_callback(uri: str, experiment: str, metric: str):
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    from automodel.search import decode

    class TrialRuns(MLflowLoggerCallback):
        """One MLflow run a trial: run name = trial id; params = family, k and the family's params.

        On ``tune --resume`` a trial that already has a run keeps it: a finished one (whose
        results the sweep replays) is not logged again, an interrupted one goes on in its run.
        """

        def setup(self, *args, **kwargs) -> None:
            super().setup(*args, **kwargs)
            self._done: set[str] = set()

        def _existing_run(self, trial_id: str):
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.tracking_uri)
            found = client.search_runs(
                [self.mlflow_util.experiment_id],
                filter_string=f"tags.trial_id = '{trial_id}'",
                max_results=1,
            )
            return found[0] if found else None

        def log_trial_start(self, trial) -> None:
            if trial in self._trial_runs:
                return
            old = self._existing_run(trial.trial_id)
            if old is not None:
                self._trial_runs[trial] = old.info.run_id
                if old.info.status == "FINISHED":
                    self._done.add(old.info.run_id)
                return
            family, params, k = decode(trial.config)
            tags = {
                **self.tags,
                "trial_id": trial.trial_id,
                "family": family,
                "automodel.stage": "search",
            }
            run = self.mlflow_util.start_run(tags=tags, run_name=f"trial {trial.trial_id}")
            self._trial_runs[trial] = run.info.run_id
            self.mlflow_util.log_params(
                run_id=run.info.run_id,
                params_to_log={"family": family, "k": k, **_flat_params(params)},
            )

        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            if trial not in self._trial_runs:
                self.log_trial_start(trial)
            run_id = self._trial_runs[trial]
            if run_id in self._done:
                return
            keep = {k: result[k] for k in (metric, *TRIAL_KEYS) if result.get(k) is not None}
            self.mlflow_util.log_metrics(
                run_id=run_id,
                metrics_to_log=keep,
                step=result.get("training_iteration") or iteration,
            )

        def log_trial_end(self, trial, failed: bool = False) -> None:
            run_id = self._trial_runs.get(trial)
            if run_id is not None and run_id not in self._done:
                self.mlflow_util.end_run(run_id=run_id, status="FAILED" if failed else "FINISHED")

    return TrialRuns(
        tracking_uri=uri, experiment_name=experiment, tags={"automodel.experiment": experiment}
    )


def _flat_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()}


def log_final(spec: Any, run_dir: str | Path) -> None:
    """Log the final model (``<run_dir>/artifact/card.json``) to the trackers the spec names."""
    run_dir = Path(run_dir)
    card_path = run_dir / "artifact" / "card.json"
    if not card_path.is_file() or not (spec.tracking.mlflow or spec.tracking.tensorboard):
        return
    card = Card.read(card_path)
    if spec.tracking.mlflow:
        _log_final_mlflow(spec.tracking.mlflow, spec.name, card, run_dir)
    if spec.tracking.tensorboard:
        _log_final_tensorboard(card, run_dir / "tensorboard" / FINAL_RUN)


COMPRESSION_NUMBERS = (
    "size_bytes_before",
    "size_bytes_after",
    "metric_before",
    "metric_after",
    "latency_ms_before",
    "latency_ms_after",
)


def _final_metrics(card: Card) -> dict[str, float]:
    out: dict[str, Any] = {f"test_{k}": v for k, v in card.metrics.test.items()}
    out.update({f"final_val_{k}": v for k, v in card.metrics.val.items()})
    if card.train is not None:
        out.update({f"train_{k}": getattr(card.train, k) for k in ("wall_s", "restarts", "epochs")})
    if card.compression is not None:
        out.update({k: getattr(card.compression, k) for k in COMPRESSION_NUMBERS})
    return {
        k: float(v)
        for k, v in out.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _history_scalars(card: Card) -> list[tuple[int, str, float]]:
    """(epoch, name, value) of every number in the final fit's history."""
    out = []
    for row in card.history:
        values = {"train_loss": row.train_loss, "lr": row.lr, "time_s": row.time_s}
        values.update({f"val_{k}": v for k, v in row.val().items()})
        out += [(row.epoch, k, float(v)) for k, v in values.items() if v is not None]
    return out


def _log_final_mlflow(uri: str, experiment: str, card: Card, run_dir: Path) -> None:
    _needs_mlflow()
    _allow_file_store(uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    run = client.create_run(
        exp_id,
        run_name=FINAL_RUN,
        tags={
            "automodel.stage": "train",
            "automodel.experiment": experiment,
            "family": str(card.family),
            "run_dir": str(run_dir),
            "data_sha256": str(card.data.sha256 if card.data is not None else None),
        },
    )
    rid = run.info.run_id
    client.log_param(rid, "family", card.family)
    for k, v in _flat_params(card.params).items():
        client.log_param(rid, k, v)
    for k, v in _final_metrics(card).items():
        client.log_metric(rid, k, v)
    for step, k, v in _history_scalars(card):
        client.log_metric(rid, k, v, step=step)
    for name in ("artifact/card.json", "report.html", "leaderboard.csv"):
        if (run_dir / name).is_file():
            client.log_artifact(rid, str(run_dir / name))
    client.set_terminated(rid, "FINISHED")


def _log_final_tensorboard(card: Card, logdir: Path) -> None:
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(logdir)) as writer:
        for step, k, v in _history_scalars(card):
            writer.add_scalar(f"final/{k}", v, step)
        for k, v in _final_metrics(card).items():
            writer.add_scalar(f"final/{k}", v, 0)
        writer.add_text("final/model", f"{card.family}: {json.dumps(card.params, default=str)}", 0)
