"""Ctrl-C and SIGTERM: the first asks for a stop, a second stops at once; handlers are restored."""

import os
import signal

import pytest

from dspjax.train.stopping import StopNow, StopOnSignal


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_asks_a_stop_and_a_second_stops_at_once(signum, code):
    before = signal.getsignal(signum)
    seen = []
    with StopOnSignal(on_first=seen.append) as stop:
        assert not stop()
        os.kill(os.getpid(), signum)
        assert stop() and seen == [stop] and stop.exit_code == code
        assert stop.name == signal.Signals(signum).name
        with pytest.raises(StopNow):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signum) is before
