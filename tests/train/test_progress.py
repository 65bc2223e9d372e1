"""The progress display: without a terminal, one line per 5 % of the iterations, not one per
iteration; a callable gets ``(iteration, total)``; nothing at all when turned off."""

import io

from dspjax.train.progress import LOG_EVERY_PERCENT, _LogLines, make_progress


def test_a_log_gets_a_line_every_few_percent_and_one_at_the_end():
    stream = io.StringIO()
    show = _LogLines(1000, "training 3 members", stream)
    show.start()
    for i in range(1000):
        show.update(i)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 100 // LOG_EVERY_PERCENT
    assert lines[0].startswith("training 3 members:   5 % (50/1000 iterations)")
    assert lines[-1].startswith("training 3 members: 100 % (1000/1000 iterations)")


def test_a_resumed_run_counts_from_where_it_was():
    stream = io.StringIO()
    show = _LogLines(100, "t", stream)
    show.start(initial=40)
    for i in range(40, 100):
        show.update(i)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("t:  45 % (45/100") and len(lines) == 12


def test_a_callable_or_nothing():
    seen = []
    show = make_progress(lambda i, n: seen.append((i, n)), 7, "t")
    show.start()
    show.update(3)
    assert seen == [(3, 7)]
    assert make_progress(False, 7, "t") is None
