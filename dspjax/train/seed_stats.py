"""Seed statistics: the interquartile mean (IQM) of a score over seeds and its 95 %
stratified-bootstrap interval, with rliable (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"), as ``dspjax report`` and the experiment tables give them.

The IQM is rliable's ``aggregate_iqm``, ``scipy.stats.trim_mean(scores, 0.25)``: the mean of the
sorted scores without the ``n // 4`` lowest and the ``n // 4`` highest (with fewer than 4 seeds,
the mean of all). The interval is the 2.5 and 97.5 percentiles of the IQM over ``REPS``
resamples of the seeds, drawn from NumPy seed ``BOOTSTRAP_SEED``: a rerun gives the same
interval. One seed has no interval (its every resample is itself)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

REPS = 2000
BOOTSTRAP_SEED = 0


class IQMInterval(NamedTuple):
    """The IQM over seeds and its 95 % interval; ``low`` and ``high`` are None for one seed."""
    iqm: float
    low: float | None
    high: float | None


def iqm_interval(scores, reps: int = REPS) -> IQMInterval:
    """IQM of ``scores`` (one per seed) and its 95 % stratified-bootstrap interval over ``reps``
    resamples. rliable 1.2.0 resamples from NumPy's global generator: it is seeded with
    ``BOOTSTRAP_SEED`` here and given back in the state it was in."""
    from rliable import library as rly
    from rliable import metrics

    scores = np.asarray(scores, float).reshape(-1)
    if scores.size == 0:
        raise ValueError("iqm_interval: no scores")
    aggregate = lambda x: np.array([metrics.aggregate_iqm(x)])
    if scores.size == 1:
        return IQMInterval(float(aggregate(scores[:, None])[0]), None, None)
    saved = np.random.get_state()
    try:
        np.random.seed(BOOTSTRAP_SEED)
        point, interval = rly.get_interval_estimates({"m": scores[:, None]}, aggregate, reps=reps)
    finally:
        np.random.set_state(saved)
    return IQMInterval(float(point["m"][0]), float(interval["m"][0, 0]), float(interval["m"][1, 0]))
