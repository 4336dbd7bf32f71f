"""run(): the whole chain, data -> search -> train -> artifact (-> compress) -> report."""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

from automodel.artifact import Artifact, write_artifact
from automodel.cluster import check_resources, ray_session
from automodel.data import Dataset, load_dataset
from automodel.features import top_k
from automodel.metrics import all_scores
from automodel.progress import Progress
from automodel.report import finish_run, record_features, tracking_callbacks
from automodel.search import SearchResult, feature_ranking, tune
from automodel.spec import Spec, dump_spec
from automodel.train import TrainedModel, check_train_resources, train_model


@dataclass
class RunResult:
    run_dir: Path
    artifact: Artifact
    search: SearchResult | None
    metric: str
    test_score: float
    wall_s: float


def make_run_dir(spec: Spec, out: str | Path | None) -> Path:
    """``--out`` if given, else ``<storage>/<name>/<timestamp>``; the resolved spec is saved there."""
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(spec.runtime.storage) / spec.name / stamp
    run_dir = Path(out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(dump_spec(spec))
    return run_dir


def test_metrics(trained: TrainedModel, dataset: Dataset) -> dict[str, float]:
    raw = trained.model.predict_raw(dataset.X_test)
    if dataset.task == "classification":
        return all_scores(dataset.task, dataset.y_test, raw.argmax(axis=1), raw)
    return all_scores(dataset.task, dataset.y_test, raw.reshape(-1))


def build_artifact(spec: Spec, dataset: Dataset, trained: TrainedModel, path: Path, *,
                   search: SearchResult | None = None) -> Artifact:
    """Export the trained model to ONNX and write the artifact with its card."""
    metric = spec.metric_for(dataset.task)
    onnx_bytes, output = trained.model.to_onnx()
    # the row of the weights that were kept (early stopping keeps the best epoch's, not the last)
    kept = trained.info.get("kept_epoch")
    val = next((r for r in trained.history if r.get("epoch") == kept), trained.history[-1]) if trained.history else {}
    card = {
        "name": spec.model_name,
        "task": dataset.task,
        "family": trained.family,
        "params": trained.params,
        "metric": metric,
        "features": dataset.preprocessor.input_columns,
        "encoded_features": dataset.n_features,
        "classes": dataset.classes,
        "metrics": {"test": test_metrics(trained, dataset),
                    "val": {metric: val.get(f"val_{metric}")} if val else {}},
        "train": trained.info,
        "history": trained.history,
        "data": {"source": spec.data.source, "rows": dataset.rows, "sha256": dataset.sha256,
                 "target": dataset.preprocessor.target, "summary": dataset.summary,
                 "spec": spec.data.model_dump(mode="json")},  # compress reloads the same splits
        # torch regression trains on a standardized target; compress re-exports with the same scaling
        "y_scaling": getattr(trained.model, "y_scaling_", None),
        "search": None if search is None else {"best_score": search.score, "trials": len(search.leaderboard),
                                               "wall_s": round(search.wall_s, 2), "k": search.k},
        "serve": spec.serve.model_dump(mode="json"),  # `automodel serve/deploy` read it: self-contained
    }
    return write_artifact(path, onnx_bytes=onnx_bytes, output_name=output, preprocessor=dataset.preprocessor,
                          card=card, state_dict=trained.state_dict)


def run(spec: Spec, out: str | Path | None = None, *, progress: Progress | None = None) -> RunResult:
    """Search, retrain the winner, export and write the artifact (and compress, report)."""
    start = time.time()
    progress = progress or Progress(spec.runtime.quiet)
    check_train_resources(spec.train, spec.runtime)  # e.g. use_gpu without a GPU: before the search
    run_dir = make_run_dir(spec, out)
    progress("data", f"loading {spec.data.source}")
    dataset = load_dataset(spec.data)
    progress("data", f"{dataset.rows} rows, {dataset.n_features} encoded features, task {dataset.task}")
    with ray_session(spec.runtime):
        check_resources(spec, ("search", "train"), only_remote=True)  # fail fast, not hang
        progress("search", f"{spec.search.num_samples} trials over {', '.join(spec.search.families)} "
                           f"({spec.search.searcher} + {spec.search.scheduler})")
        result = tune(spec, dataset, run_dir, callbacks=search_callbacks(progress, spec, dataset.task))
        progress("search", f"best {result.family} {result.metric}={result.score:.4f} (k={result.k})")
        ranking = feature_ranking(spec, dataset) if result.k is not None else None
        data = dataset.select(top_k(ranking, result.k) if ranking is not None else None)
        record_features(run_dir, spec, dataset, ranking, result.k)
        progress("train", f"retraining {result.family}")
        trained = train_model(spec, data, result.family, result.params, run_dir=run_dir, progress=progress)
    artifact = build_artifact(spec, data, trained, run_dir / "artifact", search=result)
    if spec.compress is not None:  # in place: artifact/model.onnx becomes what the gate chose
        from automodel.compress import compress_artifact

        artifact = compress_artifact(artifact, spec.compress, dataset=data, progress=progress)
    metric = result.metric
    test_score = artifact.card["metrics"]["test"][metric]
    (run_dir / "result.json").write_text(json.dumps({"family": result.family, "metric": metric, "test": test_score,
                                                     "wall_s": round(time.time() - start, 2)}))
    finish_run(run_dir, spec, data, progress)
    progress("done", f"best family {result.family}, test {metric} {test_score:.4f}, run directory {run_dir}")
    return RunResult(run_dir, artifact, result, metric, test_score, time.time() - start)


def search_callbacks(progress: Progress, spec: Spec, task: str) -> list:
    from automodel.search._progress import TrialProgress

    return [TrialProgress(progress, spec.search.num_samples, spec.metric_for(task)),
            *tracking_callbacks(spec, spec.metric_for(task))]


__all__ = ["RunResult", "build_artifact", "make_run_dir", "run"]
