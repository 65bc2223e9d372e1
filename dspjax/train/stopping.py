"""Ctrl-C and SIGTERM for a training run: the first asks it to stop at the end of the current
segment (after its checkpoint), a second stops it at once.

``with StopOnSignal() as stop:`` installs the handlers (main thread only) and restores the old
ones on exit; ``stop()`` tells whether a stop was asked, for ``run_population(should_stop=...)``;
``stop.exit_code`` is the shell's ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(KeyboardInterrupt):
    """A second signal: stop without waiting for the segment to end."""


class StopOnSignal:
    def __init__(self, on_first=None):
        self.signum: int | None = None
        self._on_first = on_first
        self._previous = {}

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise StopNow(f"second {signal.Signals(signum).name}")
        self.signum = signum
        if self._on_first is not None:
            self._on_first(self)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False


def announce_stop(stop: StopOnSignal) -> None:
    print(f"\ndspjax: {stop.name}: stopping at the end of the current segment, after its "
          "checkpoint (again to stop at once)", file=sys.stderr, flush=True)
