"""The model card (``artifact/card.json``): what training, compression and serving agree on.

Written by :func:`automodel.artifact.write_artifact` (the pipeline builds it, compress rewrites
it) after every other file, with their hashes (``files``); read by serve, compress and the report through :func:`automodel.artifact.read_artifact`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from automodel.contracts._base import Contract


class _Part(BaseModel):
    """A section of a contract: unknown keys are kept, so a newer writer never breaks a reader."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class HistoryRow(_Part):
    """One epoch of the final fit (one fidelity step for tree families).

    ``restarted`` is THE restart marker: the training loop sets it on the first epoch a worker
    group ran after Ray Train replaced a failed one; the report marks restarts from it alone.
    Validation metrics are the ``val_<metric>`` keys (see :meth:`val`).
    """

    epoch: int
    train_loss: float | None = None
    lr: float | None = None
    time_s: float | None = None
    restarted: bool = False

    def val(self) -> dict[str, float]:
        """The row's validation metrics by name (``val_accuracy`` -> ``accuracy``)."""
        return {
            k[4:]: v
            for k, v in (self.model_extra or {}).items()
            if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)
        }


class TrainInfo(_Part):
    """How the final model was trained (the card's ``train``)."""

    workers: int = 1
    use_gpu: bool = False
    epochs: int | None = None
    restarts: int = 0
    wall_s: float | None = None
    backend: str | None = None  # "ray_train" | "local"
    kept_epoch: int | None = None
    stopped_early: bool | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    device: str | None = None
    bf16: bool | None = None
    data: str | None = None  # "cached" | "streamed"
    shards: dict[str, Any] | None = None
    startup_s: float | None = None
    epoch_s: float | None = None
    overhead_s: float | None = None
    resumed_after_epoch: list[int] = Field(default_factory=list)
    # the rows the final fit learned from, of the rows it had (train, + validation after a
    # refit; on streamed data every such row in the files, not the search's sample)
    rows_seen: int | None = None
    rows_available: int | None = None


class Metrics(_Part):
    """Test metrics of the model.onnx beside the card; the validation metric of the kept epoch."""

    test: dict[str, float] = Field(default_factory=dict)
    val: dict[str, float | None] = Field(default_factory=dict)


class DataSummary(_Part):
    """What the data stage saw (the report's data section)."""

    rows: int | None = None
    columns: int | None = None
    target: str | None = None
    task: str | None = None
    missing_values: int | None = None
    dropped_target_rows: int | None = None
    dropped_columns: list[str] | dict[str, Any] = Field(default_factory=list)  # name (-> why)
    splits: dict[str, int] = Field(default_factory=dict)  # train / val / test rows
    class_counts: dict[str, int] | None = None


class DataInfo(_Part):
    """Where the training data came from; compress reloads the same splits from ``spec``."""

    source: str | list[str] | None = None  # a list: data.source named several files
    rows: int | None = None
    sha256: str | None = None
    target: str | None = None
    summary: DataSummary = Field(default_factory=DataSummary)
    spec: dict[str, Any] = Field(default_factory=dict)


class SearchInfo(_Part):
    best_score: float | None = None
    trials: int | None = None
    wall_s: float | None = None
    k: int | None = None


class OnnxInfo(_Part):
    input: str = "input"
    output: str
    size_bytes: int | None = None


class VariantInfo(_Part):
    """One candidate of the compression gate (``compression.variants``; the float model first)."""

    variant: str
    prune: float = 0.0
    structured: bool = False
    quantize: str = "none"
    method: str | None = None
    size_bytes: int | None = None
    metric: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    drop: float | None = None
    latency_ms: float | None = None
    nonzero_params: int | None = None
    sparsity: float | None = None
    integer_ops: list[str] = Field(default_factory=list)
    qualified: bool | None = None
    reason: str | None = None


class Rejected(_Part):
    """A variant the gate did not ship, and why."""

    variant: str
    metric: float | None = None
    size_bytes: int | None = None
    reason: str | None = None


class Compression(_Part):
    """What compress asked for, every variant it tried, and what it shipped."""

    prune: float = 0.0
    structured: bool = False
    quantize: str = "none"
    max_metric_drop: float | None = None
    finetune_epochs: int | None = None
    chosen: str
    metric: str | None = None
    size_bytes_before: int | None = None
    size_bytes_after: int | None = None
    metric_before: float | None = None
    metric_after: float | None = None
    latency_ms_before: float | None = None
    latency_ms_after: float | None = None
    rejected: list[Rejected] = Field(default_factory=list)
    variants: list[VariantInfo] = Field(default_factory=list)
    reason: str | None = None


class FileHash(_Part):
    """One file of the artifact as the writer left it (the card's ``files``)."""

    sha256: str
    size_bytes: int


class Card(Contract):
    """``artifact/card.json``.

    Only ``name`` and ``task`` are required (as they were before contracts): older or hand-written
    cards load. Dict-style reads (``card["task"]``, ``card.get("serve")``) still work for code not
    yet moved to attributes; they return plain JSON values. New code reads attributes.
    """

    name: str
    task: Literal["classification", "regression"]
    version: int | str = 1
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metric: str | None = None
    features: list[str] = Field(default_factory=list)
    encoded_features: int | None = None
    classes: list[Any] | None = None
    metrics: Metrics = Field(default_factory=Metrics)
    train: TrainInfo | None = None
    history: list[HistoryRow] = Field(default_factory=list)
    data: DataInfo | None = None
    y_scaling: list[float] | None = None
    search: SearchInfo | None = None
    serve: dict[str, Any] | None = None
    compression: Compression | None = None
    created: str | None = None
    automodel_version: str | None = None
    ray_version: str | None = None
    onnx: OnnxInfo | None = None
    # every other file of the artifact, by name: a reader refuses one whose bytes differ. Cards
    # from before it have none (older artifacts still load); write_artifact always fills it.
    files: dict[str, FileHash] | None = None

    @property
    def restart_epochs(self) -> list[int]:
        """Epochs at which Ray Train restarted the workers (from the one marker, ``restarted``)."""
        return [row.epoch for row in self.history if row.restarted]

    @property
    def output_name(self) -> str:
        """The ONNX output serving reads: the card's, else the task's default."""
        if self.onnx is not None:
            return self.onnx.output
        return "probabilities" if self.task == "classification" else "prediction"

    # ---- dict-style reads, for callers not yet moved to attributes -------------------------
    def _plain(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        return self._plain()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._plain().get(key, default)

    def keys(self):
        return self._plain().keys()

    def __contains__(self, key: object) -> bool:
        return key in self._plain()
