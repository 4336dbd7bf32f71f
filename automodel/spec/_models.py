"""Pydantic models of the spec: one class a section, unknown keys rejected.

Every default is chosen so that an empty spec is the builtin digits quickstart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automodel.spec._families import FAMILIES, unknown_family

Task = Literal["classification", "regression"]
Metric = Literal["accuracy", "f1", "roc_auc", "rmse", "r2"]
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "r2")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSpec(_Section):
    source: str | list[str] = Field(
        "builtin:digits",
        description='"builtin:NAME", "synthetic:classification?rows=N&features=M", or CSV/Parquet files: a path or '
        "URI (s3://, gs://), a directory, a glob, or a list of them.",
    )
    key: str | None = Field(
        None,
        description="Column whose hash assigns a row to train/val/test when files stream; default: file and row.",
    )
    stream: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Stream files through Ray Data: auto = for a directory, glob, list or a file over 256 MB.",
    )
    target: str | None = Field(
        None, description="Target column; default: the source's own target or the last column."
    )
    drop: list[str] = Field(
        default_factory=list,
        description="Columns left out everywhere: not features, not in preprocess.json's inputs, "
        "not in the served schema (a request may still carry them; they are ignored).",
    )
    task: Task | None = Field(None, description="Inferred from the target when absent.")
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    val_size: float = Field(
        0.15, gt=0.0, lt=0.9, description="Share of the non-test rows kept for validation."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _check_drop(self) -> DataSpec:
        seen = set()
        for name in self.drop:
            if name in seen:
                raise ValueError(f"data.drop: {name!r} is listed twice")
            seen.add(name)
            if name == self.target:
                raise ValueError(
                    f"data.drop: {name!r} is the target (data.target); drop another column or "
                    "choose another target"
                )
            if name == self.key:
                raise ValueError(
                    f"data.drop: {name!r} is the row key (data.key), which is never a feature; "
                    "remove it from data.drop"
                )
        return self


class FeaturesSpec(_Section):
    method: Literal["none", "mutual_info"] = "none"
    k: int | list[int] | None = Field(
        None, description="Columns kept; a list [low, high] is searched. Needs method: mutual_info."
    )

    @field_validator("k")
    @classmethod
    def _check_k(cls, v: int | list[int] | None) -> int | list[int] | None:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        if isinstance(v, list):
            if len(v) != 2 or v[0] < 1 or v[0] > v[1]:
                raise ValueError(
                    f"a searched range must be [low, high] with 1 <= low <= high, got {v}"
                )
        return v

    @model_validator(mode="after")
    def _k_needs_method(self) -> FeaturesSpec:
        if self.k is not None and self.method == "none":
            self.__dict__["method"] = "mutual_info"
        return self


class SearchSpec(_Section):
    families: list[str] | None = Field(
        None,
        description="Default: chosen from the data's shape at search time (flat tables: gradient boosting, "
        "forest, linear, mlp; image-shaped: mlp, cnn, linear), recorded in the run's tune/sweep.json.",
    )
    scheduler: Literal["asha", "fifo"] = "asha"
    searcher: Literal["tpe", "gp", "random", "grid"] = "tpe"
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    max_epochs: int = Field(20, ge=1)
    grace_period: int = Field(
        2, ge=1, description="ASHA: iterations every trial gets before it can be stopped."
    )
    metric: Metric | None = Field(
        None, description="Default: accuracy (classification) or r2 (regression)."
    )
    cv_folds: int = Field(0, ge=0)
    time_budget_s: float | None = Field(None, gt=0)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sample_rows: int = Field(
        100_000,
        ge=100,
        description="Streamed data: training rows the trials see (one sample in the object store).",
    )

    ensemble: bool = Field(
        True,
        description="Weighted ensemble of the top trials (greedy selection on validation), kept only when it "
        "beats the single best model on validation; exported as one ONNX graph.",
    )

    @field_validator("families")
    @classmethod
    def _check_families(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must list at least one family")
        for name in v:
            if name not in FAMILIES:
                raise ValueError(unknown_family(name))
        return v

    @field_validator("cv_folds")
    @classmethod
    def _check_cv(cls, v: int) -> int:
        if v == 1:
            raise ValueError("must be 0 (off) or >= 2, got 1")
        return v


class ModelSpec(_Section):
    family: str | None = Field(
        None, description="What `automodel train` trains; `run` fills it from the search."
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("family")
    @classmethod
    def _check_family(cls, v: str | None) -> str | None:
        if v is not None and v not in FAMILIES:
            raise ValueError(unknown_family(v))
        return v


class TrainSpec(_Section):
    num_workers: Literal["auto"] | int = Field(
        "auto",
        description='"auto": one in-process fit when the data is too small for data parallelism to pay '
        "for Ray Train's start-up, else the workers the cluster offers; a number: that many Ray Train workers.",
    )
    use_gpu: bool = False
    resources_per_worker: dict[str, float] = Field(default_factory=dict)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = Field(1, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    early_stopping_patience: int | None = Field(8, ge=1)
    checkpoint_every: int = Field(1, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = Field(3, ge=0)
    amp: bool = Field(True, description="bf16 autocast on GPUs that support it; ignored on CPU.")
    max_rows_in_memory: Literal["auto"] | int = Field(
        "auto",
        description="Streamed data: the most rows a family that needs all its rows in memory "
        "(forests, extra trees, SVM, hist_gb) is fitted on, on one Ray worker, drawn by the row "
        "hash; \"auto\": a quarter of the worker's available memory over 4x a row's encoded size.",
    )
    refit: bool = Field(
        True,
        description="`run`: retrain the winner on train + validation for the epochs (or steps) the search "
        "found; false: train on train for train.epochs, early-stopped on validation.",
    )

    @field_validator("num_workers", "max_rows_in_memory", mode="before")
    @classmethod
    def _check_auto_or_count(cls, v: Any, info) -> Any:
        low = {"num_workers": 1, "max_rows_in_memory": 10}[info.field_name]
        if v != "auto" and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise ValueError(f'must be "auto" or an integer >= {low}, got {v!r}')
        return v


class CompressSpec(_Section):
    prune: float = Field(0.0, ge=0.0, le=0.95)
    structured: bool = Field(
        False, description="Remove whole neurons/channels so dense kernels shrink too."
    )
    quantize: Literal["none", "int8"] = "none"
    max_metric_drop: float = Field(0.01, ge=0.0)
    finetune_epochs: int = Field(3, ge=0)


class ServeSpec(_Section):
    name: str | None = Field(None, description="Model name in the API; default: the spec's name.")
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(4, ge=1)
    target_ongoing_requests: float = Field(2, gt=0)
    upscale_delay_s: float = Field(3.0, ge=0)
    downscale_delay_s: float = Field(20.0, ge=0)
    max_ongoing_requests: int = Field(64, ge=1)
    max_queued_requests: int = Field(
        256,
        ge=1,
        description="Requests a replica queues beyond max_ongoing_requests; more get 503 at once.",
    )
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: float = Field(0.005, ge=0)
    max_rows: int = Field(10000, ge=1)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    num_cpus: float = Field(1.0, gt=0)
    port: int = Field(8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    route_prefix: str = "/"
    auth_token_env: str | None = Field(
        None, description="Env var holding a bearer token that requests must carry."
    )

    @model_validator(mode="after")
    def _replicas(self) -> ServeSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        return self


class RuntimeSpec(_Section):
    address: str | None = Field(
        None, description='null: embedded local Ray; "auto" or "ray://host:10001".'
    )
    storage: str = "./automodel_runs"
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the embedded local Ray (default: all)."
    )
    quiet: bool = False


class TrackingSpec(_Section):
    mlflow: str | None = None
    tensorboard: bool = False


class Spec(_Section):
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Run, model and report name; default: the data source's stem (carseats for "
        "carseats.csv, digits for builtin:digits, synthetic for synthetic:...).",
    )
    data: DataSpec = Field(default_factory=DataSpec)
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    compress: CompressSpec | None = None
    serve: ServeSpec = Field(default_factory=ServeSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> Spec:
        from automodel.spec._space import parse_space

        if self.name is None:
            self.__dict__["name"] = default_name(self.data.source)
        if self.search.metric is not None and self.data.task is not None:
            problem = _metric_problem(self.search.metric, self.data.task, "data.task says this")
            if problem:
                raise ValueError(f"search.metric: {problem}")
        for family, overrides in self.search.space.items():
            parse_space(family, overrides, key=f"search.space.{family}")
        return self

    def check_task(self, task: str) -> None:
        """The checks that need the data's task, for a spec whose ``data.task`` was inferred: call
        it once the data is loaded, before Ray starts.

        Raises:
            SpecError: ``search.metric`` does not fit ``task``.
        """
        from automodel.errors import SpecError

        if self.search.metric is not None:
            problem = _metric_problem(
                self.search.metric, task, "the target (data.target) says this"
            )
            if problem:
                raise SpecError("search.metric", problem)

    @property
    def model_name(self) -> str:
        return self.serve.name or self.name

    def metric_for(self, task: str) -> str:
        """The metric a run optimizes: the spec's, or the task's default."""
        if self.search.metric is not None:
            return self.search.metric
        from automodel.metrics import default_metric

        return default_metric(task)


def _metric_problem(metric: str, task: str, where: str) -> str | None:
    """Why ``metric`` cannot score a ``task``, or None when it can."""
    ok = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric in ok:
        return None
    other = "regression" if task == "classification" else "classification"
    return (
        f"{metric!r} is a {other} metric, but {where} is a {task} task; use one of {', '.join(ok)}"
    )


def default_name(source: str | list[str]) -> str:
    """A spec's default name, from its data source: ``carseats`` for ``data/carseats.csv``,
    ``digits`` for ``builtin:digits``, ``synthetic`` for ``synthetic:...``, the directory's name
    for a directory or glob."""
    import re

    first = source[0] if isinstance(source, list) and source else source
    if not isinstance(first, str) or not first:
        return "model"
    if first.startswith("builtin:"):
        stem = first.split(":", 1)[1]
    elif first.startswith("synthetic:"):
        stem = "synthetic"
    else:
        parts = [p for p in re.split(r"[/\\]", first.split("://", 1)[-1].split("?", 1)[0]) if p]
        while parts and any(c in parts[-1] for c in "*?["):  # a glob: name it by its directory
            parts.pop()
        stem = parts[-1] if parts else "model"
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("._-")
    return stem or "model"
