"""`automodel compress ARTIFACT`: cheap to import (torch and onnxruntime load only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from automodel import storage

FLAGS = {
    "prune": "--prune",
    "structured": "--structured",
    "quantize": "--quantize",
    "max_metric_drop": "--max-metric-drop",
    "finetune_epochs": "--finetune-epochs",
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "compress",
        help="prune and int8-quantize an artifact; keep only what holds the metric",
        description="Try pruned and int8 variants of an artifact's model, score each on the "
        "test split, and keep the smallest whose metric drop is within the budget.",
    )
    s.add_argument("artifact", help="artifact directory (or a run directory holding artifact/)")
    s.add_argument(
        "--prune", type=float, metavar="F", help="fraction to prune, 0-0.95 (torch families)"
    )
    s.add_argument(
        "--structured",
        action="store_true",
        default=None,
        help="remove whole neurons/channels (smaller layers) instead of single weights",
    )
    s.add_argument(
        "--quantize",
        choices=["none", "int8"],
        help="int8: ONNX Runtime dynamic (MLP) or static calibrated (CNN) quantization "
        "(default when neither --prune nor --quantize is given)",
    )
    s.add_argument(
        "--max-metric-drop",
        type=float,
        metavar="F",
        help="largest test-metric loss allowed, in the metric's units (default 0.01)",
    )
    s.add_argument(
        "--finetune-epochs",
        type=int,
        metavar="N",
        help="fine-tuning epochs after pruning (default 3)",
    )
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        metavar="DIR",
        help="write the compressed artifact here (default: <artifact>-compressed next to it; "
        "the float artifact is kept)",
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="replace the artifact's model with the compressed one (the float model is lost)",
    )
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from automodel.compress import compress_artifact
    from automodel.errors import AutomodelError, SpecError
    from automodel.progress import Progress
    from automodel.spec import spec_from_dict

    given = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    if "prune" not in given and "quantize" not in given:
        given["quantize"] = "int8"
    try:
        options = spec_from_dict({"compress": given}).compress
    except SpecError as exc:  # name the flag, not the spec key
        raise AutomodelError(f"{FLAGS[exc.key.split('.')[-1]]}: {exc.message}") from None
    source = _artifact_dir(args.artifact)
    out = None if args.in_place else args.out if args.out else default_out(source)
    if out is not None and storage.resolve(out) == storage.resolve(source):
        out = None  # --out naming the artifact itself is --in-place
    progress = Progress(args.quiet)
    if storage.is_uri(source) or (out is not None and storage.is_uri(out)):
        art = _compress_to_uri(source, options, out, progress)
    else:
        art = compress_artifact(
            Path(source), options, out=None if out is None else Path(out), progress=progress
        )
    c = art.card.compression
    ratio = c.size_bytes_before / max(1, c.size_bytes_after)
    line = (
        f"compressed {art.source}: chose {c.chosen}, {c.size_bytes_before:,} -> {c.size_bytes_after:,} bytes "
        f"({ratio:.1f}x smaller)"
    )
    if c.metric_before is not None:
        line += f", {c.metric} {c.metric_before:.4f} -> {c.metric_after:.4f}"
    if c.latency_ms_before is not None:
        line += f", batch-1 {c.latency_ms_before:.3f} -> {c.latency_ms_after:.3f} ms"
    if c.reason:
        line += f" ({c.reason})"
    print(line)
    if out is not None:
        print(f"float artifact kept: {storage.display(source)}")
    return 0


def default_out(artifact_dir: str | Path) -> str | Path:
    """Where `automodel compress` writes by default: ``<artifact>-compressed`` beside the artifact."""
    return storage.join(
        storage.parent(artifact_dir), f"{storage.basename(artifact_dir)}-compressed"
    )


def _artifact_dir(location: str | Path) -> str | Path:
    """A run directory (local or a URI) stands for its ``artifact/``."""
    inner = storage.join(location, "artifact", "card.json")
    if not storage.exists(storage.join(location, "card.json")) and storage.is_file(inner):
        return storage.join(location, "artifact")
    return location


def _compress_to_uri(source, options, out, progress):
    """Compress in a local folder, then upload: every file first, ``card.json`` last (a reader
    never sees a card beside files it does not describe). ``out`` None: in place, at ``source``."""
    import tempfile

    from automodel.artifact import read_artifact
    from automodel.compress import compress_artifact

    art = read_artifact(source)  # a URI: this node's checked cached copy, never written to
    target = source if out is None else out
    with tempfile.TemporaryDirectory(prefix="automodel-compress-") as tmp:
        local = Path(tmp) / "artifact"
        compress_artifact(art, options, out=local, progress=progress)
        if storage.exists(storage.join(target, "card.json")):  # the old card goes first
            storage.delete(storage.join(target, "card.json"))
        storage.upload(local, target, last=("card.json",))
    return read_artifact(target)
