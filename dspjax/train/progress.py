"""Training progress on stderr: a bar on a terminal, a line every few percent in a log.

``update(iteration)`` is called from inside the compiled program (a ``jax.debug.callback``, once
per iteration for the whole population); the display opens at ``start``, after compilation, so
compiling does not skew the rate.
"""

from __future__ import annotations

import sys
import time

LOG_EVERY_PERCENT = 5


class _Bar:
    def __init__(self, total: int, desc: str):
        self.total, self.desc, self._bar = total, desc, None

    def start(self, initial: int = 0):
        from tqdm.auto import tqdm
        self._bar = tqdm(total=self.total, initial=initial, unit="it", dynamic_ncols=True,
                         desc=self.desc)

    def update(self, iteration):
        if self._bar is not None and int(iteration) + 1 > self._bar.n:
            self._bar.update(int(iteration) + 1 - self._bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()


class _LogLines:
    """One line per ``LOG_EVERY_PERCENT`` % of the iterations: what a log file wants."""

    def __init__(self, total: int, desc: str, stream=None):
        self.total, self.desc, self.stream = total, desc, stream or sys.stderr
        self._next = self._t0 = self._initial = None

    def start(self, initial: int = 0):
        self._initial, self._t0 = initial, time.perf_counter()
        self._next = self._step_after(initial)

    def _step_after(self, done: int) -> int:
        step = max(1, self.total * LOG_EVERY_PERCENT // 100)
        return (done // step + 1) * step

    def update(self, iteration):
        if self._t0 is None:
            return
        done = int(iteration) + 1
        if done < self._next and done != self.total:
            return
        self._next = self._step_after(done)
        elapsed = time.perf_counter() - self._t0
        rate = (done - self._initial) / elapsed if elapsed > 0 else 0.0
        left = f", ~{(self.total - done) / rate:.0f} s left" if rate > 0 and done < self.total else ""
        print(f"{self.desc}: {100 * done / self.total:3.0f} % ({done}/{self.total} iterations), "
              f"{elapsed:.0f} s{left}", file=self.stream, flush=True)

    def close(self):
        pass


class _Callback:
    def __init__(self, total: int, fn):
        self.total, self.fn = total, fn

    def start(self, initial: int = 0):
        pass

    def update(self, iteration):
        self.fn(int(iteration), self.total)

    def close(self):
        pass


def make_progress(progress, total: int, desc: str):
    """``None`` (no display) for a false ``progress``; a callable is called with
    ``(iteration, total)``; otherwise a tqdm bar when stderr is a terminal, else log lines."""
    if not progress:
        return None
    if callable(progress):
        return _Callback(total, progress)
    return _Bar(total, desc) if sys.stderr.isatty() else _LogLines(total, desc)
