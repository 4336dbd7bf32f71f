"""`automodel compress ARTIFACT`: cheap to import (torch and onnxruntime load only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    source = _artifact_dir(Path(args.artifact))
    out = None if args.in_place else Path(args.out) if args.out else default_out(source)
    if out is not None and out.resolve() == source.resolve():
        out = None  # --out naming the artifact itself is --in-place
    art = compress_artifact(source, options, out=out, progress=Progress(args.quiet))
    c = art.card.compression
    ratio = c.size_bytes_before / max(1, c.size_bytes_after)
    line = (
        f"compressed {art.path}: chose {c.chosen}, {c.size_bytes_before:,} -> {c.size_bytes_after:,} bytes "
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
        print(f"float artifact kept: {source}")
    return 0


def default_out(artifact_dir: Path) -> Path:
    """Where `automodel compress` writes by default: ``<artifact>-compressed`` beside the artifact."""
    return artifact_dir.parent / f"{artifact_dir.name}-compressed"


def _artifact_dir(path: Path) -> Path:
    """A run directory stands for its ``artifact/``."""
    if not (path / "card.json").exists() and (path / "artifact" / "card.json").is_file():
        return path / "artifact"
    return path
