"""The families a sweep searches when the spec names none: chosen from the data's shape.

Flat tables are where gradient-boosted trees win most often (LightGBM, scikit-learn's histogram
GB), with a forest and a linear model as cheap, robust baselines and an MLP for the smooth
problems trees fit poorly; a 1-D CNN over unordered columns has no structure to exploit, so it is
left out. Image-shaped inputs (a preprocessor with an ``image_shape``, such as digits' 8x8) are
where networks lead: MLP and CNN, with a linear model as the cheap baseline; boosting is left
out there (a tree per class per round on 64 pixel columns: slow, and on digits below the
networks).
"""

from __future__ import annotations

from automodel.data import Dataset
from automodel.models import FAMILIES
from automodel.spec import Spec

FLAT = ("lightgbm", "hist_gb", "random_forest", "logistic", "mlp")
IMAGE = ("mlp", "cnn", "logistic")


def default_families(dataset: Dataset) -> tuple[list[str], str]:
    """The families to search on ``dataset``, and the shape they were chosen for (in words)."""
    shape = dataset.preprocessor.image_shape
    if shape:
        chosen, why = IMAGE, f"image-shaped data ({'x'.join(str(s) for s in shape)})"
    else:
        chosen, why = FLAT, f"a flat table ({dataset.n_features} encoded features)"
    return [f for f in chosen if f in FAMILIES], why


def with_families(spec: Spec, dataset: Dataset) -> Spec:
    """``spec`` with ``search.families`` filled from the data's shape when the spec left it out."""
    if spec.search.families is not None:
        return spec
    families, _ = default_families(dataset)
    search = spec.search.model_copy(update={"families": families})
    return spec.model_copy(update={"search": search})
