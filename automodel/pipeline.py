"""run(): the whole chain, data -> search -> train -> artifact (-> compress) -> report."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path

from automodel import storage
from automodel.artifact import Artifact, write_artifact
from automodel.cluster import check_resources, ray_session, warn_unshared
from automodel.contracts import (
    Card,
    DataInfo,
    HistoryRow,
    Metrics,
    RunSummary,
    SearchInfo,
    TrainInfo,
)
from automodel.data import Dataset, load_dataset, stream_files
from automodel.features import top_k
from automodel.metrics import scores_raw
from automodel.progress import Progress
from automodel.report import finish_run, rank_while_searching, record_features, tracking_callbacks
from automodel.search import SearchResult, default_families, feature_ranking, select_ensemble, tune
from automodel.spec import Spec, dump_spec
from automodel.train import Refit, TrainedModel, check_train_resources, train_model


@dataclass
class RunResult:
    run_dir: Path
    artifact: Artifact
    search: SearchResult | None
    metric: str
    test_score: float
    wall_s: float

    @property
    def location(self) -> str | Path:
        """Where the run directory lives: its URI (``runtime.storage`` / ``--out``), else its path."""
        return storage.location_of(self.run_dir)


def make_run_dir(spec: Spec, out: str | Path | None) -> Path:
    """``--out`` if given, else ``<storage>/<name>/<timestamp>``; the resolved spec is saved there.

    A URI (``s3://...``) gets a local staging folder that :func:`automodel.storage.publish`
    copies to it (docs/cluster.md); the run works in the folder this returns either way.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = storage.join(spec.runtime.storage, spec.name, stamp)
    run_dir = storage.stage(str(out)) if storage.is_uri(out) else Path(out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(dump_spec(spec))
    return run_dir


def test_metrics(trained: TrainedModel, dataset: Dataset) -> dict[str, float]:
    if dataset.stream is not None:  # every test row, scored by Ray Data tasks where the files are
        y, raw = dataset.stream.predictions(dataset.preprocessor, trained.model.predict_raw)
        return scores_raw(dataset.task, y, raw)
    return scores_raw(dataset.task, dataset.y_test, trained.model.predict_raw(dataset.X_test))


def build_artifact(
    spec: Spec,
    dataset: Dataset,
    trained: TrainedModel,
    path: Path,
    *,
    search: SearchResult | None = None,
) -> Artifact:
    """Export the trained model to ONNX and write the artifact with its card."""
    metric = spec.metric_for(dataset.task)
    onnx_bytes, output = trained.model.to_onnx()
    history = [HistoryRow.model_validate(r) for r in trained.history]
    # the row of the weights that were kept (early stopping keeps the best epoch's, not the last)
    kept = trained.info.get("kept_epoch")
    val = next((r for r in history if r.epoch == kept), history[-1]) if history else None
    # after a refit on train + validation (card.train.refit): the search's score, from before it
    val_score = (
        trained.val_score
        if trained.val_score is not None
        else (val.val().get(metric) if val else None)
    )
    card = Card(
        name=spec.model_name,
        task=dataset.task,
        family=trained.family,
        params=trained.params,
        metric=metric,
        features=dataset.preprocessor.input_columns,
        encoded_features=dataset.n_features,
        classes=dataset.classes,
        metrics=Metrics(
            test=test_metrics(trained, dataset),
            val={metric: val_score} if val is not None or val_score is not None else {},
        ),
        train=TrainInfo.model_validate(trained.info),
        history=history,
        data=DataInfo(
            source=spec.data.source,
            rows=dataset.rows,
            sha256=dataset.sha256,
            target=dataset.preprocessor.target,
            summary=dataset.summary,
            spec=spec.data.model_dump(mode="json"),
        ),  # compress reloads the same splits
        # torch regression trains on a standardized target; compress re-exports with the same scaling
        y_scaling=getattr(trained.model, "y_scaling_", None),
        search=None
        if search is None
        else SearchInfo(
            best_score=search.score,
            trials=len(search.leaderboard),
            wall_s=round(search.wall_s, 2),
            k=search.k,
        ),
        # `automodel serve/deploy` read it: the artifact is self-contained
        serve=spec.serve.model_dump(mode="json"),
    )
    return write_artifact(
        path,
        onnx_bytes=onnx_bytes,
        output_name=output,
        preprocessor=dataset.preprocessor,
        card=card,
        state_dict=trained.state_dict,
    )


# A run's time budget: what the sweep's end (Tune stopping its trials, ~1.5 s), export,
# evaluation, Ray's shutdown and the report (~2.5 s) take together on two cores, with a margin,
# kept back from the sweep: TAIL_S, and TAIL_ROW_S a training row (a forest refitted on 16k rows
# has 0.6-1.4 M nodes: ~1-2 s to convert, models/_forest_onnx.py, and to score). Of the rest the
# sweep gets SEARCH_SHARE, the final fit (or the ensemble) what the sweep leaves. A refit on train
# + validation costs about REFIT_COST x the winning trial's time, so no trial may run longer than
# what is left for it divided by that. Measured on `automodel run --time-budget 40` of 400 rows:
# search end to `done` 5.1 s, 2.6 s of it the ensemble; `done` to exit <= 0.1 s. The earlier
# TAIL_S 10 s and 0.8 ms a row (skl2onnx's forests) left 20-30 s budgets' sweeps under
# MIN_SWEEP_S and 60 s runs ending 15-20 s early.
TAIL_S = 6.0
TAIL_ROW_S = 0.0002
SEARCH_SHARE = 0.75
REFIT_COST = 1.4


def run(
    spec: Spec,
    out: str | Path | None = None,
    *,
    progress: Progress | None = None,
    time_budget_s: float | None = None,
    started: float | None = None,
) -> RunResult:
    """Search, retrain the winner, export and write the artifact (and compress, report).

    ``time_budget_s``: the whole run's wall-clock budget, counted from ``started`` (default: now);
    the sweep's ``search.time_budget_s`` becomes what the fixed costs leave of it (never more than
    the spec's own), and the ensemble is skipped when its refits would not fit.
    """
    start = time.time()
    deadline = (started or start) + time_budget_s if time_budget_s else None
    progress = progress or Progress(spec.runtime.quiet)
    check_train_resources(spec.train, spec.runtime)  # e.g. use_gpu without a GPU: before the search
    run_dir = make_run_dir(spec, out)
    progress("data", f"loading {spec.data.source}")
    # a directory, glob, list or large file: streamed, see docs/data.md
    files = stream_files(spec.data)
    dataset = load_dataset(spec.data) if files is None else None
    if dataset is not None:
        # e.g. metric: rmse on a classification target, before Ray starts
        spec.check_task(dataset.task)
    progress(
        "ray",
        "starting a local Ray"
        if spec.runtime.address is None
        else f"connecting to {spec.runtime.address}",
    )
    # a URI run directory: published while the run works (and if it fails), not only at its end
    with ray_session(spec.runtime), storage.publishing(run_dir):
        if dataset is None:  # one parallel pass over the files; the search gets a sample
            dataset = load_dataset(
                spec.data, files=files, sample_rows=spec.search.sample_rows, progress=progress
            )
            spec.check_task(dataset.task)
        progress(
            "data",
            f"{dataset.rows} rows, {dataset.n_features} encoded features, task {dataset.task}",
        )
        check_resources(spec, ("search", "train"), only_remote=True)  # fail fast, not hang
        warn_unshared(run_dir)  # a local run directory on a multi-node cluster: say so now
        families = spec.search.families or default_families(dataset)[0]  # null: by data shape
        trial_s, tail, until_budget = None, TAIL_S + TAIL_ROW_S * len(dataset.X_train), False
        if deadline is not None:
            spec, trial_s, until_budget = _search_within(
                spec, deadline, time_budget_s, tail, progress
            )
        trials = (
            "trials until its budget is used"
            if until_budget
            else f"{spec.search.num_samples} trials"
        )
        progress(
            "search",
            f"{trials} over {', '.join(families)} ({spec.search.searcher} + {spec.search.scheduler})",
        )
        # the trials see a sample (search.sample_rows), the final fit every row
        trials_data = dataset.sample_train(spec.search.sample_rows, spec.data.seed)
        report_ranking = rank_while_searching(spec, dataset)  # information only: beside the sweep
        result = tune(
            spec,
            trials_data,
            run_dir,
            callbacks=search_callbacks(progress, spec, dataset.task, until_budget=until_budget),
            trial_time_s=trial_s,
        )
        progress(
            "search",
            f"best {result.family} {result.metric}={result.score:.4f} (k={result.k}); "
            + _trials_summary(result),
        )
        ranking = feature_ranking(spec, dataset) if result.k is not None else None
        data = dataset.select(top_k(ranking, result.k) if ranking is not None else None)
        record_features(
            run_dir, spec, dataset, ranking if ranking is not None else report_ranking, result.k
        )
        # search.ensemble: the top trials' weighted average, if it beats the best single model
        ensemble = None
        if spec.search.ensemble and spec.compress is None and data.stream is None:
            # choosing the members and their final refit share what the tail leaves
            left = None if deadline is None else deadline - time.time() - tail
            ensemble = select_ensemble(spec, data, result, progress=progress, budget_s=left)
        if ensemble is not None:  # its members refitted on train + validation, with train.refit
            model = ensemble.final(data, refit=spec.train.refit)
            trained = TrainedModel(
                model, "ensemble", model.params, model.info, val_score=model.val_score
            )
        else:
            progress("train", f"retraining {result.family}")
            # refit on train + validation for the epochs (or tree steps) the winning trial trained
            refit = Refit.of_search(result, spec.search.max_epochs) if spec.train.refit else None
            trained = train_model(
                spec,
                data,
                result.family,
                result.params,
                run_dir=run_dir,
                progress=progress,
                refit=refit,
            )
        # card.train.rows_seen / rows_available: the fit says what it saw (the search, a sample)
        # inside the session: a streamed test split is scored by Ray Data tasks
        artifact = build_artifact(spec, data, trained, run_dir / "artifact", search=result)
    if spec.compress is not None:  # in place: artifact/model.onnx becomes what the gate chose
        from automodel.compress import compress_artifact

        artifact = compress_artifact(artifact, spec.compress, dataset=data, progress=progress)
    metric = result.metric
    test_score = artifact.card.metrics.test[metric]
    RunSummary(
        family=trained.family, metric=metric, test=test_score, wall_s=round(time.time() - start, 2)
    ).write(run_dir / "result.json")
    finish_run(run_dir, spec, data, progress)
    storage.publish(run_dir)  # a URI run directory: everything up, the artifact's card last
    progress(
        "done",
        f"best family {trained.family}, test {metric} {test_score:.4f}, run directory "
        f"{storage.location_of(run_dir)}",
    )
    return RunResult(run_dir, artifact, result, metric, test_score, time.time() - start)


# With a run's budget and no search.num_samples in the spec, the sweep searches until its share of
# the budget is used (as FLAML's time_budget does), not for the default 8 trials: this many is
# only Tune's count, never reached in a budget.
UNTIL_BUDGET_TRIALS = 100_000


def _search_within(
    spec: Spec, deadline: float, budget: float, tail: float, progress: Progress
) -> tuple[Spec, float, bool]:
    """``spec`` with the sweep's time budget cut to its share of what the run has left, the
    longest a trial may run so that the winner's refit fits in the rest, and whether the sweep
    runs until its budget is used (no ``search.num_samples`` in the spec, not a grid)."""
    left = deadline - time.time()
    usable = max(2.0, left - tail)
    share = usable * SEARCH_SHARE
    own = spec.search.time_budget_s
    sweep_s = min(share, own) if own else share
    trial_s = max(1.0, (usable - sweep_s) / REFIT_COST)
    progress(
        "search",
        f"{sweep_s:.0f}s of the run's {budget:g}s budget ({left:.0f}s left), {trial_s:.0f}s at "
        "most a trial; the rest is for the final fit, export and report",
    )
    update: dict = {"time_budget_s": sweep_s}
    until_budget = (
        "num_samples" not in spec.search.model_fields_set and spec.search.searcher != "grid"
    )
    if until_budget:
        update["num_samples"] = UNTIL_BUDGET_TRIALS
    search = spec.search.model_copy(update=update)
    return spec.model_copy(update={"search": search}), trial_s, until_budget


def _trials_summary(result: SearchResult) -> str:
    """``14 trials scored, 1 could not start before the sweep's budget ended``."""
    board = result.leaderboard
    scored = int((board[result.metric].notna() & (board["status"] != "fallback")).sum())
    said = f"{scored} trial{'s' if scored != 1 else ''} scored"
    if late := int((board["status"] == "not_started").sum()):
        said += f", {late} could not start or score before the sweep's budget ended"
    return said


def search_callbacks(
    progress: Progress, spec: Spec, task: str, *, until_budget: bool = False
) -> list:
    from automodel.search._progress import TrialProgress

    total = None if until_budget else spec.search.num_samples
    return [
        TrialProgress(progress, total, spec.metric_for(task)),
        *tracking_callbacks(spec, spec.metric_for(task)),
    ]


__all__ = ["RunResult", "build_artifact", "make_run_dir", "run"]
