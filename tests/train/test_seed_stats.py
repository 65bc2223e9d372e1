"""Seed statistics: the IQM against a NumPy reference, and its bootstrap interval contains it,
is the same on a rerun, narrows as the seeds agree, and leaves NumPy's global generator as it was."""

import numpy as np
import pytest

from dspjax.train.seed_stats import iqm_interval

SCORES = {
    4: [10.0, -3.0, 7.5, 200.0],
    5: [3.0, 1.0, 4.0, 1.0, 5.0],
    7: [12.0, 9.5, 30.0, 11.0, -40.0, 10.0, 10.5],
    8: [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
    10: [-50.0, 480.0, 3.0, 17.0, 120.0, 88.0, -7.0, 300.0, 45.0, 61.0],
}


def numpy_iqm(scores):
    """The mean of the sorted scores without the n // 4 lowest and the n // 4 highest."""
    x = np.sort(np.asarray(scores, float))
    cut = len(x) // 4
    return x[cut: len(x) - cut].mean()


def test_the_reference_is_the_middle_half_when_four_divides_the_seeds():
    x = np.arange(8.0)[::-1]
    assert numpy_iqm(x) == np.mean([2.0, 3.0, 4.0, 5.0])


@pytest.mark.parametrize("n", sorted(SCORES))
def test_iqm_is_the_trimmed_mean_and_the_interval_contains_it(n):
    iqm, low, high = iqm_interval(SCORES[n])
    assert iqm == pytest.approx(numpy_iqm(SCORES[n]), rel=1e-12)
    assert min(SCORES[n]) <= low <= iqm <= high <= max(SCORES[n])
    assert low < high


def test_few_seeds_give_the_mean_and_one_seed_no_interval():
    assert iqm_interval([4.0, 1.0, 2.5]).iqm == pytest.approx(2.5)
    two = iqm_interval([1.0, 3.0])
    assert two.iqm == 2.0 and two.low == 1.0 and two.high == 3.0  # resamples: both, either one
    assert tuple(iqm_interval([7.0])) == (7.0, None, None)
    with pytest.raises(ValueError, match="no scores"):
        iqm_interval([])


def test_a_rerun_gives_the_same_interval_whatever_the_global_generator():
    np.random.seed(123)
    first = iqm_interval(SCORES[7])
    np.random.seed(456)
    np.random.standard_normal(17)
    assert iqm_interval(SCORES[7]) == first


def test_the_global_generator_is_left_as_it_was():
    np.random.seed(7)
    expected = np.random.random(5)
    np.random.seed(7)
    iqm_interval(SCORES[8])
    np.testing.assert_array_equal(np.random.random(5), expected)


def test_the_interval_narrows_as_the_seeds_agree():
    spread = np.array([-3.0, 1.0, 0.5, 2.0, -1.5, 4.0])
    widths = []
    for scale in (4.0, 1.0, 0.25, 0.0):
        iqm, low, high = iqm_interval(100.0 + scale * spread)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0.0
    assert widths[3] == 0.0 and iqm == low == high == 100.0
