"""The families a sweep searches when the spec names none, chosen from the data's shape."""

from __future__ import annotations

from automodel.data import load_dataset
from automodel.search import default_families
from automodel.search._families import SVM_MAX_ROWS
from automodel.spec import DataSpec


def _families(source: str) -> list[str]:
    return default_families(load_dataset(DataSpec(source=source)))[0]


def test_images_get_kernels_and_networks_not_boosting(digits):
    families, why = default_families(digits)
    assert {"svm", "mlp", "cnn"} <= set(families) and "lightgbm" not in families
    assert "8x8" in why


def test_flat_tables_get_boosting_and_the_svm_only_while_it_is_cheap():
    small = _families("synthetic:classification?rows=800&features=6")
    assert {"lightgbm", "extra_trees", "logistic", "svm"} <= set(small) and "cnn" not in small
    # 0.8 x 0.85 of the rows train: just over SVM_MAX_ROWS training rows
    rows = int(SVM_MAX_ROWS / 0.68) + 50
    large = _families(f"synthetic:classification?rows={rows}&features=6")
    assert "svm" not in large and "lightgbm" in large
