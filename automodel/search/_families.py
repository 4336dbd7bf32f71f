"""The families a sweep searches when the spec names none: chosen from the data's shape.

Flat tables are where tree ensembles win most often: LightGBM and scikit-learn's histogram GB,
with a random forest and extra trees (whose averages differ from boosting's errors, which is what
the ensemble needs), a linear model as the cheap baseline, an RBF SVM on small tables (it costs
between n^2 and n^3 in the rows, so only up to ``SVM_MAX_ROWS`` training rows) and an MLP for
the smooth problems trees fit poorly. A 1-D CNN over unordered columns has no structure to
exploit, so it is left out. Image-shaped inputs (a preprocessor with an ``image_shape``, such as
digits' 8x8) are where kernels and networks lead: the SVM (0.98-0.99 on digits in a second),
MLP and CNN, with extra trees and a linear model as cheap, different members; boosting is left out
there (a tree per class per round on 64 pixel columns: slow, and on digits below the others).

``CHEAPEST_FIRST`` orders families by what one default fit costs on a small table: each searched
family's defaults are the sweep's first trials in that order, and a budget that ends before any
trial reports falls back to the cheapest.
"""

from __future__ import annotations

from automodel.data import Dataset
from automodel.models import FAMILIES
from automodel.spec import Spec

FLAT = ("lightgbm", "hist_gb", "random_forest", "extra_trees", "logistic", "svm", "mlp")
IMAGE = ("svm", "mlp", "cnn", "extra_trees", "logistic")
SVM_MAX_ROWS = 5_000
CHEAPEST_FIRST = (
    "logistic",
    "svm",
    "lightgbm",
    "hist_gb",
    "extra_trees",
    "random_forest",
    "xgboost",
    "mlp",
    "cnn",
)


def cheapest_first(families) -> list[str]:
    """``families`` ordered by what a default fit costs, cheapest first."""
    return sorted(families, key=lambda f: CHEAPEST_FIRST.index(f) if f in CHEAPEST_FIRST else 99)


def default_families(dataset: Dataset) -> tuple[list[str], str]:
    """The families to search on ``dataset``, and the shape they were chosen for (in words)."""
    shape = dataset.preprocessor.image_shape
    if shape:
        chosen, why = IMAGE, f"image-shaped data ({'x'.join(str(s) for s in shape)})"
    else:
        chosen, why = FLAT, f"a flat table ({dataset.n_features} encoded features)"
    if len(dataset.X_train) > SVM_MAX_ROWS:
        chosen = tuple(f for f in chosen if f != "svm")
    return [f for f in chosen if f in FAMILIES], why


def with_families(spec: Spec, dataset: Dataset) -> Spec:
    """``spec`` with ``search.families`` filled from the data's shape when the spec left it out."""
    if spec.search.families is not None:
        return spec
    families, _ = default_families(dataset)
    search = spec.search.model_copy(update={"families": families})
    return spec.model_copy(update={"search": search})
