"""Seed statistics of the experiment tables: the interquartile mean over seeds and its 95 %
stratified-bootstrap interval (rliable; ``pip install -e ".[experiments]"``)."""

from __future__ import annotations

import numpy as np
from rliable import library as rly
from rliable import metrics


def iqm_interval(scores) -> tuple[float, float, float]:
    """IQM of ``scores`` (seeds,) and its 95 % stratified-bootstrap interval (resampled from a
    fixed NumPy seed, so that a rerun prints the same interval)."""
    np.random.seed(0)  # rliable's bootstrap draws from NumPy's global generator
    point, interval = rly.get_interval_estimates(
        {"m": np.asarray(scores, float)[:, None]}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=2000)
    return float(point["m"][0]), float(interval["m"][0, 0]), float(interval["m"][1, 0])
