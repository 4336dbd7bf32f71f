"""The conditional search space: family -> its parameters, plus ``k`` when it is searched.

Parameters are namespaced ``<family>.<param>`` so each family keeps its own distributions, which
TPE and GP need to model them separately.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from automodel.models import search_space
from automodel.spec import (
    Choice,
    Domain,
    Fixed,
    Int,
    Spec,
    default_value,
    grid_values,
    parse_space,
)


def family_spaces(
    spec: Spec, task: str, *, imbalanced: bool = False
) -> dict[str, dict[str, Domain]]:
    """Each searched family's space: its defaults, overridden by ``search.space``.

    ``imbalanced`` (a classification target with a rare class): families that take class weights
    also search ``class_weight`` in {None, "balanced"}; whether weighting pays depends on the
    metric (it trades accuracy on the common classes for recall on the rare ones), so the search
    decides rather than a fixed rule.
    """
    out = {}
    for fam in spec.search.families:
        defaults, weighted = search_space(fam, task)  # a torch family's: without torch
        space = dict(defaults)
        if imbalanced and task == "classification" and weighted:
            space["class_weight"] = Choice((None, "balanced"))
        space.update(parse_space(fam, spec.search.space.get(fam, {}), key=f"search.space.{fam}"))
        out[fam] = space
    return out


def is_imbalanced(y: np.ndarray, n_classes: int) -> bool:
    """Whether the rarest class has under half the share it would have if classes were balanced."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    return n_classes > 1 and counts.min() / max(1, counts.sum()) < 0.5 / n_classes


def _needs_index(d: Choice) -> bool:
    # Optuna's categorical choices must be None, bool, int, float or str; others go by index.
    return any(not isinstance(v, (type(None), bool, int, float, str)) for v in d.values)


class DefineByRun:
    """Optuna define-by-run space (picklable, so a restored sweep rebuilds the same one).

    Values Optuna cannot hold (lists, such as layer sizes) are suggested by index under
    ``<name>#idx``; they and fixed values come back as constants under their real name.
    ``flat`` suggests every family's parameters in every trial (only the chosen family's are
    used): samplers that model only the parameters all trials share (GP) then see all of them.
    """

    def __init__(
        self,
        spaces: dict[str, dict[str, Domain]],
        k_range: tuple[int, int] | None,
        *,
        flat: bool = False,
    ):
        self.spaces = spaces
        self.k_range = k_range
        self.flat = flat

    def __call__(self, trial: Any) -> dict[str, Any]:
        family = trial.suggest_categorical("family", list(self.spaces))
        constants: dict[str, Any] = {}
        for fam in self.spaces if self.flat else [family]:
            constants.update(_suggest_family(trial, fam, self.spaces[fam]))
        if self.k_range:
            trial.suggest_int("k", *self.k_range)
        return constants


def _suggest_family(trial: Any, family: str, space: dict[str, Domain]) -> dict[str, Any]:
    constants = {}
    for name, d in space.items():
        key = f"{family}.{name}"
        if isinstance(d, Fixed):
            constants[key] = d.value
        elif isinstance(d, Choice) and _needs_index(d):
            constants[key] = d.values[
                trial.suggest_categorical(key + "#idx", list(range(len(d.values))))
            ]
        elif isinstance(d, Choice):
            trial.suggest_categorical(key, list(d.values))
        elif isinstance(d, Int):
            trial.suggest_int(key, d.low, d.high, log=d.log)
        else:
            trial.suggest_float(key, d.low, d.high, log=d.log)
    return constants


def default_params(family: str, space: dict[str, Domain]) -> dict[str, Any]:
    """A family's default configuration as Optuna parameters (for ``study.enqueue_trial``): each
    choice's first value, each range's middle (geometric on a log scale); fixed values are
    constants, and not Optuna's."""
    params: dict[str, Any] = {"family": family}
    for name, d in space.items():
        key = f"{family}.{name}"
        if isinstance(d, Choice) and _needs_index(d):
            params[key + "#idx"] = 0  # the first value, by index
        elif not isinstance(d, Fixed):
            params[key] = default_value(d)
    return params


def decode(config: dict[str, Any]) -> tuple[str, dict, int | None]:
    """(family, params, k) from a trial's flat config (grid configs arrive nested under ``grid``)."""
    config = config.get("grid", config)
    family = config["family"]
    prefix = family + "."
    params = {
        k[len(prefix) :]: v
        for k, v in config.items()
        if k.startswith(prefix) and not k.endswith("#idx")
    }
    k = config.get("k")
    return family, params, (int(k) if k is not None else None)


def grid_configs(
    spaces: dict[str, dict[str, Domain]], k_values: list[int | None]
) -> list[dict[str, Any]]:
    """Every combination, as GridSearchCV enumerates it: listed values, or 3 points per range."""
    configs = []
    for family, space in spaces.items():
        names = list(space)
        for combo in itertools.product(*(grid_values(space[n]) for n in names)):
            for k in k_values:
                cfg = {"family": family, **{f"{family}.{n}": v for n, v in zip(names, combo)}}
                if k is not None:
                    cfg["k"] = k
                configs.append(cfg)
    return configs
