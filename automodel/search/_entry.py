"""The function a trial actor holds: it imports nothing heavy until the trial runs.

Ray creates a trial's actor by unpickling the trainable, which imports the module that defines
it. Were that module :mod:`._trainable` (torch, scikit-learn, LightGBM: about 4 s of imports on
two cores), the second actor of a 2-slot sweep would still be starting when the first trial of a
few hundred milliseconds ends, and Tune hands the next trial to the first actor and stops the
second one: a sweep of short trials would run one at a time. From here the actor starts on Ray
Tune's own imports, and the heavy ones happen in each actor's first trial (``fit_s`` reports the
trial's own time without them).
"""

from __future__ import annotations

from typing import Any


def run_trial(config: dict[str, Any], **kwargs: Any) -> None:
    from automodel.search._trainable import run_trial as run

    run(config, **kwargs)
