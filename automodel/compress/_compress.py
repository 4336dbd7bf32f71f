"""compress_artifact(): make the variants, gate them on the test split, write the chosen one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from automodel.artifact import Artifact, read_artifact, write_artifact
from automodel.compress._gate import Variant, evaluate, rejection, select
from automodel.contracts import Card, Compression
from automodel.data import Dataset
from automodel.errors import ArtifactError, DataError
from automodel.progress import Progress
from automodel.spec import CompressSpec

# Why scikit-learn families are shipped as they are (the card repeats it).
SKLEARN_REASON = (
    "{family} is a scikit-learn model: its ONNX graph (skl2onnx: TreeEnsemble / "
    "LinearClassifier operators) has no pruning to apply and ONNX Runtime has no int8 "
    "kernels for those operators, so the float model is kept"
)
CALIBRATION_ROWS = 256


def compress_artifact(
    artifact: str | Path | Artifact,
    options: CompressSpec,
    *,
    out: str | Path | None = None,
    dataset: Dataset | None = None,
    progress: Progress | None = None,
) -> Artifact:
    """Prune and/or int8-quantize an artifact; ship the smallest variant that holds the metric.

    Args:
        artifact: an artifact directory (or a run directory holding ``artifact/``), or a loaded one.
        options: what to try (``prune``, ``structured``, ``quantize``, ``finetune_epochs``) and the
            gate (``max_metric_drop``, in the metric's units).
        out: where to write the result; default: the artifact itself, in place.
        dataset: the splits the model was trained on (features selected); default: reloaded from
            the data spec recorded in the card.
        progress: progress lines (default: printed to stderr).

    Returns:
        The written artifact; ``card["compression"]`` records every variant and the choice.

    Raises:
        ArtifactError: the artifact is missing, corrupt, or already compressed.
        DataError: the training data is gone or changed since training.
    """
    progress = progress or Progress()
    art = (
        artifact if isinstance(artifact, Artifact) else read_artifact(_artifact_dir(Path(artifact)))
    )
    previous = art.card.compression
    if previous is not None and previous.chosen != "float":
        raise ArtifactError(
            f"{art.path}: already compressed (chosen {previous.chosen!r}); compress the "
            "float artifact it came from"
        )
    target = Path(out) if out is not None else art.path
    baseline = Variant("float", art.onnx_path.read_bytes())
    family = art.card.family
    from automodel.models import FAMILIES

    if family in FAMILIES and FAMILIES[family].kind != "torch":
        progress(
            "compress",
            f"{family}: keeping the float model (scikit-learn operators have no int8 kernels)",
        )
        section = _sklearn_section(art, options, baseline)
        return _write(art, baseline, art.card.model_copy(update={"compression": section}), target)

    # ---- data: the splits the card was scored on ------------------------------------------------
    from automodel.compress._source import load_module, load_splits, y_scaling

    data = dataset if dataset is not None else load_splits(art)
    if data.n_features != art.preprocessor.n_features:
        raise DataError(
            f"data has {data.n_features} encoded features, the artifact's model takes "
            f"{art.preprocessor.n_features}"
        )
    task, metric, output = art.card.task, _metric(art), art.output_name
    scaling = y_scaling(art, data)
    module = load_module(art) if options.prune > 0 else None  # check the weights before any work

    try:  # first, so a model that cannot run fails before any fine-tuning
        evaluate(baseline, data.X_test, data.y_test, task=task, metric=metric, output=output)
    except (
        Exception
    ) as exc:  # onnxruntime raises its own types (InvalidGraph, Fail, ...) for a bad model
        raise ArtifactError(
            f"{art.onnx_path}: ONNX Runtime cannot run it ({type(exc).__name__}: "
            f"{str(exc).strip()[:160]})"
        ) from None
    progress(
        "compress",
        f"float: {metric} {baseline.metric:.4f}, {baseline.size_bytes:,} bytes, "
        f"{baseline.latency_ms:.3f} ms at batch 1",
    )

    # ---- variants ----------------------------------------------------------------------------
    variants: list[Variant] = []
    if options.prune > 0:
        variants.append(_pruned(art, module, data, options, scaling, progress))
    if options.quantize == "int8":
        for parent in [baseline, *variants]:
            variants.append(_quantized(parent, data, progress))

    # ---- gate --------------------------------------------------------------------------------
    for v in variants:
        evaluate(v, data.X_test, data.y_test, task=task, metric=metric, output=output)
    chosen = select(baseline, variants, metric=metric, max_drop=options.max_metric_drop)
    for v in variants:
        verdict = "qualifies" if v.reason is None else f"rejected: {v.reason}"
        progress(
            "compress",
            f"{v.name}: {metric} {v.metric:.4f}, {v.size_bytes:,} bytes, "
            f"{v.latency_ms:.3f} ms at batch 1 — {verdict}",
        )

    section = Compression(
        **{
            **_request(options),
            "chosen": chosen.name,
            "metric": metric,
            "size_bytes_before": baseline.size_bytes,
            "size_bytes_after": chosen.size_bytes,
            "metric_before": round(baseline.metric, 6),
            "metric_after": round(chosen.metric, 6),
            "latency_ms_before": round(baseline.latency_ms, 4),
            "latency_ms_after": round(chosen.latency_ms, 4),
            "rejected": [rejection(v, chosen, metric) for v in variants if v is not chosen],
            "variants": [baseline.summary(), *(v.summary() for v in variants)],
        }
    )
    if chosen is baseline:
        section.reason = (
            "no variant was requested"
            if not variants
            else f"no variant stayed within max_metric_drop {options.max_metric_drop:g}"
            if all(v.reason for v in variants)
            else "the float model is the smallest qualifying model"
        )
    # The card's test metrics describe the model.onnx it sits beside (the served one).
    card = art.card.model_copy(
        update={
            "compression": section,
            "params": {**art.card.params, **(chosen.params or {})},
            "metrics": art.card.metrics.model_copy(update={"test": chosen.metrics}),
        }
    )
    progress(
        "compress",
        f"chose {chosen.name}: {baseline.size_bytes:,} -> {chosen.size_bytes:,} bytes, "
        f"{metric} {baseline.metric:.4f} -> {chosen.metric:.4f}",
    )
    return _write(art, chosen, card, target)


def _pruned(
    art: Artifact, module, data: Dataset, options: CompressSpec, scaling, progress: Progress
) -> Variant:
    """Prune the trained torch module (magnitude or structured), fine-tune, export."""
    from automodel.compress._prune import (
        finetune,
        magnitude_prune,
        make_permanent,
        shrink_into,
        shrunk_params,
        sparsity,
    )
    from automodel.compress._source import build_family
    from automodel.models import export_onnx

    params = None
    if options.structured:
        params = shrunk_params(build_family(art), options.prune)
        module = shrink_into(module, build_family(art, params).build_module()).eval()
        progress("compress", f"structured pruning {options.prune:.0%} of units: {params}")
    else:
        magnitude_prune(module, options.prune)
        progress("compress", f"magnitude pruning {options.prune:.0%} of weights")
    seed = int(art.card.data.spec.get("seed", 0)) if art.card.data is not None else 0
    progress("compress", f"fine-tuning the pruned model for {options.finetune_epochs} epoch(s)")
    finetune(
        module,
        data.X_train,
        data.y_train,
        task=data.task,
        params={**art.card.params, **(params or {})},
        y_scaling=scaling,
        epochs=options.finetune_epochs,
        seed=seed,
    )
    make_permanent(module)
    onnx_bytes, _ = export_onnx(module, data.task, data.n_features, scaling)
    return Variant(
        "pruned",
        onnx_bytes,
        prune=options.prune,
        structured=options.structured,
        params=params,
        state_dict={k: v.detach().clone() for k, v in module.state_dict().items()},
        sparsity=sparsity(module),
    )


def _quantized(parent: Variant, data: Dataset, progress: Progress) -> Variant:
    """int8 of ``parent``: static (calibrated on training rows) when it has convolutions, else dynamic."""
    import onnx

    from automodel.compress._quantize import quantize_dynamic_int8, quantize_static_int8

    ops = {n.op_type for n in onnx.load_from_string(parent.onnx_bytes).graph.node}
    if "Conv" in ops:
        rng = np.random.default_rng(0)
        rows = data.X_train[rng.permutation(len(data.X_train))[:CALIBRATION_ROWS]]
        onnx_bytes, method = quantize_static_int8(parent.onnx_bytes, rows), "static"
    else:
        onnx_bytes, method = quantize_dynamic_int8(parent.onnx_bytes), "dynamic"
    name = "int8" if parent.name == "float" else f"{parent.name}+int8"
    progress("compress", f"{name}: {method} int8 quantization")
    return Variant(
        name,
        onnx_bytes,
        prune=parent.prune,
        structured=parent.structured,
        quantize="int8",
        method=method,
        params=parent.params,
        state_dict=parent.state_dict,
        sparsity=parent.sparsity,
    )


def _sklearn_section(art: Artifact, options: CompressSpec, baseline: Variant) -> Compression:
    metric = art.card.metric
    before = art.card.metrics.test.get(metric) if metric else None
    return Compression(
        **_request(options),
        chosen="float",
        reason=SKLEARN_REASON.format(family=art.card.family),
        metric=metric,
        size_bytes_before=baseline.size_bytes,
        size_bytes_after=baseline.size_bytes,
        metric_before=before,
        metric_after=before,
    )


def _request(options: CompressSpec) -> dict:
    return {
        "prune": options.prune,
        "structured": options.structured,
        "quantize": options.quantize,
        "max_metric_drop": options.max_metric_drop,
        "finetune_epochs": options.finetune_epochs,
    }


def _metric(art: Artifact) -> str:
    from automodel.metrics import METRICS, default_metric

    metric = art.card.metric or default_metric(art.card.task)
    if metric not in METRICS:
        raise ArtifactError(
            f"{art.path / 'card.json'}: unknown metric {metric!r}; valid: {', '.join(METRICS)}"
        )
    return metric


def _artifact_dir(path: Path) -> Path:
    """Accept a run directory too: its ``artifact/``."""
    if not (path / "card.json").exists() and (path / "artifact" / "card.json").is_file():
        return path / "artifact"
    return path


def _write(art: Artifact, chosen: Variant, card: Card, target: Path) -> Artifact:
    """Write the artifact into ``target`` through a staging folder, so a crash leaves no mix."""
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.compress-"))
    try:
        written = write_artifact(
            stage,
            onnx_bytes=chosen.onnx_bytes,
            output_name=art.output_name,
            preprocessor=art.preprocessor,
            card=card,
            state_dict=chosen.state_dict,
        )
        weights = art.path / "weights.safetensors"
        if chosen.state_dict is None and weights.is_file():
            shutil.copy2(weights, stage / weights.name)
        for f in stage.iterdir():
            os.replace(f, target / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Artifact(target, written.card, written.preprocessor)
