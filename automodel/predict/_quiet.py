"""One line of Ray's a user can do nothing about, kept off the terminal.

Ray Data hands each map actor its own context and transform as object refs and makes the actor
restartable (``max_restarts=-1``, Ray Data's default for fault tolerance); Ray's core worker then
logs, once an actor, from C++ straight to file descriptor 2:

    core_worker.cc: Actor with class name: 'MapWorker(MapBatches(Scorer))' ... has constructor
    arguments in the object store and max_restarts > 0 ...

(ray-project/ray#57733: any ``map_batches`` with a class does it; upstream removes the argument in
a later release). Nothing in our arguments causes it and turning restarts off to silence it would
cost a prediction job its recovery from a lost node, so while the actors start, a pipe in front of
descriptor 2 forwards every line but that one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

NOTICE = b"has constructor arguments in the object store and max_restarts > 0"


@contextlib.contextmanager
def without_restart_notice() -> Iterator[None]:
    """Forward everything written to descriptor 2 in the body except Ray's restart notice."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (an embedding host): leave it alone
        yield
        return
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def pump() -> None:
        # drains the pipe to its end whatever happens: a pump that stopped reading would block
        # every later write to descriptor 2 once the pipe's buffer filled
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                if NOTICE not in line:
                    try:
                        os.write(saved, line)
                    except OSError:  # the real stderr is gone (closed terminal): drop the line
                        pass

    thread = threading.Thread(target=pump, name="automodel-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closes: the pump reads to its end and stops
        thread.join(timeout=5)
        os.close(saved)
