"""Search-space domains and the spec's compact notation for them.

In a spec, ``[low, high]`` is a range (integer when both ends are), ``[low, high, log]`` a
log-scaled range, ``[[a, b, c]]`` a choice, and a plain value is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automodel.errors import SpecError


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    values: tuple


@dataclass(frozen=True)
class Fixed:
    value: Any


Domain = Float | Int | Choice | Fixed


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def parse_domain(value: Any, key: str) -> Domain:
    """Turn the spec notation for one parameter into a domain; raise SpecError naming ``key``."""
    if not isinstance(value, list):
        return Fixed(value)
    if len(value) == 1 and isinstance(value[0], list):
        if not value[0]:
            raise SpecError(key, "a choice [[...]] must list at least one value, got [[]]")
        return Choice(tuple(value[0]))
    log = len(value) == 3 and value[2] == "log"
    if (
        len(value) in (2, 3)
        and _is_number(value[0])
        and _is_number(value[1])
        and (len(value) == 2 or log)
    ):
        low, high = value[0], value[1]
        if low > high:
            raise SpecError(key, f"range low must be <= high, got {value}")
        if log and low <= 0:
            raise SpecError(key, f"a log range needs low > 0, got {value}")
        if isinstance(low, int) and isinstance(high, int):
            return Int(low, high, log)
        return Float(float(low), float(high), log)
    raise SpecError(
        key,
        f"expected [low, high], [low, high, log], [[choice, ...]] or a single value, got {value}",
    )


def parse_space(family: str, overrides: dict[str, Any], key: str) -> dict[str, Domain]:
    """Parse ``search.space.<family>`` against the family's own parameters."""
    from automodel.spec._families import FAMILIES, unknown_family

    if family not in FAMILIES:
        raise SpecError(key, unknown_family(family))
    known = FAMILIES[family].params
    out = {}
    for name, value in overrides.items():
        if name not in known:
            raise SpecError(
                f"{key}.{name}", f"unknown parameter of {family}; valid: {', '.join(sorted(known))}"
            )
        out[name] = parse_domain(value, f"{key}.{name}")
    return out


def grid_values(domain: Domain, points: int = 3) -> list:
    """Values a grid search tries for one domain: a choice's values, or ``points`` spread over a range."""
    import numpy as np

    if isinstance(domain, Fixed):
        return [domain.value]
    if isinstance(domain, Choice):
        return list(domain.values)
    space = np.geomspace if domain.log else np.linspace
    vals = space(domain.low, domain.high, points)
    if isinstance(domain, Int):
        return sorted({int(round(v)) for v in vals})
    return [float(v) for v in vals]


def default_value(domain: Domain) -> Any:
    """A domain's default: the fixed value, a choice's first value, or a range's middle
    (geometric on a log scale; rounded for integers)."""
    if isinstance(domain, Fixed):
        return domain.value
    if isinstance(domain, Choice):
        return domain.values[0]
    mid = (domain.low * domain.high) ** 0.5 if domain.log else (domain.low + domain.high) / 2
    return int(round(mid)) if isinstance(domain, Int) else float(mid)
