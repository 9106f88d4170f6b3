"""Where a run's wall time goes: seconds per phase, written to JSON."""

import time
from contextlib import contextmanager

from speechbrain_grl.utils.jsonio import write_json_atomic

__all__ = ["PhaseTimer"]


class PhaseTimer:
    """Wall-clock seconds per named phase (data, train, valid and so on).

    A phase may run many times (``valid`` once per epoch): its seconds
    add up. ``total`` counts from the timer's creation, so ``other`` (what
    no phase covers: building the model, loading checkpoints) is
    ``total`` minus the phases.

    Example
    -------
    >>> timer = PhaseTimer()
    >>> with timer.phase("data"):
    ...     pass
    >>> timer.start("train"); timer.stop("train")
    >>> sorted(timer.summary()["phases"])
    ['data', 'other', 'train']
    >>> timer.summary()["wall_s"] >= timer.summary()["phases"]["train"]
    True
    """

    def __init__(self):
        self.created = time.perf_counter()
        self.seconds = {}
        self._started = {}

    def start(self, name):
        """Starts phase ``name`` (a second start restarts it)."""
        self._started[name] = time.perf_counter()

    def stop(self, name):
        """Stops phase ``name``, adding its seconds; no-op if not
        started."""
        began = self._started.pop(name, None)
        if began is not None:
            self.seconds[name] = (self.seconds.get(name, 0.0)
                                  + time.perf_counter() - began)

    @contextmanager
    def phase(self, name):
        """Times the ``with`` block as phase ``name``."""
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def summary(self):
        """``{"wall_s": total, "phases": {name: seconds, "other": rest}}``
        (seconds rounded to ms)."""
        wall = time.perf_counter() - self.created
        phases = {k: round(v, 3) for k, v in self.seconds.items()}
        phases["other"] = round(max(0.0, wall - sum(self.seconds.values())),
                                3)
        return {"wall_s": round(wall, 3), "phases": phases}

    def write(self, path):
        """Writes :meth:`summary` to ``path`` (atomically)."""
        write_json_atomic(self.summary(), path)
