"""The name a misspelt one most likely means: for unknown keys, families and columns."""

from __future__ import annotations


def nearest_name(word: str, choices: list[str]) -> str | None:
    """The choice ``word`` most likely misspells (case and one or two letters apart), or None."""
    import difflib

    by_case = [c for c in choices if c.lower() == word.lower()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.82)
    return next((c for c in choices if close and c.lower() == close[0]), None)


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean `x`?)`` for the nearest choice, or an empty string."""
    hint = nearest_name(word, choices)
    return f" (did you mean `{hint}`?)" if hint else ""
