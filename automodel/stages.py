"""Stages run alone (CLI `tune`, `train`, and jobs/): each loads data, connects Ray, writes its part."""

from __future__ import annotations

from pathlib import Path

from automodel import storage
from automodel.artifact import Artifact
from automodel.cluster import check_resources, ray_session, warn_unshared
from automodel.data import load_dataset
from automodel.errors import SpecError
from automodel.features import top_k
from automodel.pipeline import build_artifact, make_run_dir, search_callbacks
from automodel.progress import Progress
from automodel.report import finish_run, record_features
from automodel.search import SearchResult, feature_ranking, has_sweep, tune
from automodel.spec import Spec
from automodel.train import check_train_resources, train_model


def tune_stage(spec: Spec, out: str | Path | None, *, resume: bool = False) -> SearchResult:
    """`automodel tune`: the sweep alone; ``resume`` continues the one in ``out``."""
    from automodel.errors import SearchError

    if resume and out is None:
        raise SearchError("--resume needs --out DIR: the run directory of the sweep to continue")
    if resume and not storage.is_dir(out):
        raise SearchError(
            f"--resume: {storage.display(out)} does not exist, so it holds no sweep to resume"
        )
    # a URI: its sweep comes down into this node's staging folder (a fresh head has none)
    run_dir = None
    if resume:
        run_dir = storage.stage(out, download_existing=True) if storage.is_uri(out) else Path(out)
    if resume and not has_sweep(run_dir):  # before Ray starts: say so at once
        raise SearchError(
            f"--resume: {storage.display(out)} holds no sweep to resume (no tune/sweep.json); "
            "run `automodel tune SPEC --out DIR` without --resume to start one"
        )
    progress = Progress(spec.runtime.quiet)
    run_dir = run_dir.resolve() if resume else make_run_dir(spec, out)
    dataset = load_dataset(spec.data)
    spec.check_task(dataset.task)  # before Ray starts
    with ray_session(spec.runtime), storage.publishing(run_dir):
        check_resources(spec, ("search",), only_remote=True)  # fail fast, not hang
        warn_unshared(run_dir)
        progress(
            "search", f"{'resuming' if resume else 'starting'} {spec.search.num_samples} trials"
        )
        result = tune(
            spec,
            dataset,
            run_dir,
            resume=resume,
            callbacks=search_callbacks(progress, spec, dataset.task),
        )
    progress("search", f"best {result.family} {result.metric}={result.score:.4f}")
    record_features(run_dir, spec, dataset, None, result.k)
    finish_run(run_dir, spec, None, progress)
    storage.publish(run_dir)
    return result


def train_stage(spec: Spec, out: str | Path | None) -> Artifact:
    """`automodel train`: fit ``spec.model`` and write ``<run>/artifact``."""
    if spec.model.family is None:
        raise SpecError(
            "model.family", "`automodel train` needs model.family (and optionally model.params)"
        )
    check_train_resources(spec.train, spec.runtime)  # e.g. use_gpu without a GPU: before any work
    progress = Progress(spec.runtime.quiet)
    run_dir = make_run_dir(spec, out)
    dataset = load_dataset(spec.data)
    spec.check_task(dataset.task)  # before Ray starts
    k = spec.features.k if isinstance(spec.features.k, int) else None
    if k is not None:
        dataset = dataset.select(top_k(feature_ranking(spec, dataset), k))
    with ray_session(spec.runtime):
        check_resources(spec, ("train",), only_remote=True)  # fail fast, not hang
        warn_unshared(run_dir)
        progress("train", f"training {spec.model.family}")
        trained = train_model(
            spec, dataset, spec.model.family, spec.model.params, run_dir=run_dir, progress=progress
        )
    artifact = build_artifact(spec, dataset, trained, run_dir / "artifact")
    finish_run(run_dir, spec, dataset, progress)
    storage.publish(run_dir)  # files first, the artifact's card last
    return artifact
