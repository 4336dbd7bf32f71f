"""What compression starts from: the artifact's torch module, its target scaling and its data.

The module is rebuilt from ``card["family"]`` + ``card["params"]`` through the family's
``build_module()`` (the same layout training used) and filled from ``weights.safetensors``.
The splits are reloaded from the data spec the card records (or ``spec.yaml`` beside the
artifact), and checked against the card's data hash so the gate scores the rows it should.
"""

from __future__ import annotations

from typing import Any

from automodel.artifact import Artifact
from automodel.data import Dataset, load_dataset
from automodel.errors import ArtifactError, DataError


def build_family(artifact: Artifact, params: dict[str, Any] | None = None):
    """A family instance for the artifact's card (``params`` override the card's)."""
    from automodel.models import FAMILIES

    card = artifact.card
    name = card.family
    if name not in FAMILIES:
        raise ArtifactError(
            f"{artifact.path / 'card.json'}: unknown family {name!r}; valid: {', '.join(FAMILIES)}"
        )
    prep = artifact.preprocessor
    n_outputs = len(card.classes or []) if card.task == "classification" else 1
    return FAMILIES[name](
        card.task,
        prep.n_features,
        n_outputs,
        {**card.params, **(params or {})},
        image_shape=prep.image_shape,
    )


def load_module(artifact: Artifact):
    """The trained torch module: ``build_module()`` of the card's family, weights from safetensors.

    Raises:
        ArtifactError: if the weights are missing, unreadable, or do not fit the module.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = artifact.path / "weights.safetensors"
    if not path.is_file():
        raise ArtifactError(
            f"artifact {artifact.path} is incomplete: weights.safetensors is missing "
            f"(pruning a {artifact.card.family} model needs its torch weights)"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a valid safetensors file ({str(exc)[:120]})") from None
    module = build_family(artifact).build_module()
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()[:160]
        raise ArtifactError(
            f"{path}: weights do not fit the card's {artifact.card.family} params ({first})"
        ) from None
    return module.eval()


def y_scaling(artifact: Artifact, dataset: Dataset) -> tuple[float, float]:
    """(mean, std) the regression target was standardized with; identity for classification."""
    from automodel.models import target_scaling

    recorded = artifact.card.y_scaling
    if recorded is not None:
        return float(recorded[0]), float(recorded[1])
    return target_scaling(dataset.task, dataset.y_train)


def load_splits(artifact: Artifact) -> Dataset:
    """The train/val/test splits the artifact was trained and scored on, feature selection applied.

    Raises:
        ArtifactError: if the card says nothing about its data.
        DataError: if the data changed since training (the hash differs).
    """
    from automodel.spec import DataSpec, load_spec

    data = artifact.card.data
    beside = artifact.path.parent / "spec.yaml"
    if data is not None and data.spec:
        spec = DataSpec(**data.spec)
    elif beside.is_file():
        spec = load_spec(beside).data
    elif data is not None and data.source:
        spec = DataSpec(source=data.source, target=data.target)
    else:
        raise ArtifactError(
            f"{artifact.path / 'card.json'}: no data section; compression needs the training "
            "data to fine-tune and to score variants on the test split"
        )
    dataset = load_dataset(spec)
    if data is not None and data.sha256 and dataset.sha256 != data.sha256:
        raise DataError(
            f"data {spec.source!r} changed since the model was trained (sha256 "
            f"{dataset.sha256[:12]}... != card's {data.sha256[:12]}...); the test split "
            "would not be the one the card scored"
        )
    return dataset.select(artifact.preprocessor.selected)
