"""Segments and training checkpoints: a segmented run computes exactly what one long scan
computes, a run stopped between segments goes on from its checkpoint to exactly the same end,
and an unreadable newest checkpoint gives way to the one before it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.train import build_population, run_population, stack_hparams
from dspjax.train.checkpoints import IncompatibleCheckpoint, TrainingCheckpoints
from dspjax.train.population import TrainingStopped, default_segment_length

TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 23, update_epochs=1,
                 num_minibatches=2, hidden_sizes=(16, 8), eval_episodes=2)
MEMBERS = build_population(PPOHParams(), {"c_final": [0.5, 0.9]}, seeds=[0])


def assert_trees_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def uninterrupted():
    """The population trained as one long scan: ``jit(vmap(train))``, no segments."""
    train = make_train(TINY)
    hp, axes = stack_hparams([m.hparams for m in MEMBERS])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([m.seed for m in MEMBERS], jnp.uint32))
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(train, in_axes=(0, axes)))(keys, hp))


def test_default_segments_are_a_tenth_of_the_run():
    assert default_segment_length(976) == 98
    assert default_segment_length(5) == 1


def test_segments_compute_exactly_what_one_long_scan_computes(uninterrupted):
    state, metrics, eval_returns = uninterrupted
    # 23 iterations in segments of 5: the last segment runs 3 and skips 2.
    result = run_population(make_train, TINY, MEMBERS, progress=False, segment_length=5)
    assert_trees_equal(result.final_state, state)
    assert sorted(result.metrics) == sorted(metrics)
    for k in metrics:
        np.testing.assert_array_equal(result.metrics[k], metrics[k], err_msg=k)
    np.testing.assert_array_equal(result.eval_returns, eval_returns)


def test_a_stopped_run_goes_on_from_its_checkpoint_to_the_same_end(uninterrupted, tmp_path):
    state, metrics, eval_returns = uninterrupted
    checkpoints = TrainingCheckpoints(tmp_path / "checkpoints", keep=2)
    segments_seen = []

    def stop_after_two_segments():
        return len(segments_seen) >= 2

    with pytest.raises(TrainingStopped) as stopped:
        run_population(make_train, TINY, MEMBERS, progress=False, segment_length=5,
                       checkpoints=checkpoints, should_stop=stop_after_two_segments,
                       on_segment=lambda done, _: segments_seen.append(done))
    assert stopped.value.iteration == 10 and segments_seen == [5, 10]
    assert checkpoints.iterations() == [5, 10]  # keep=2

    resumed = run_population(make_train, TINY, MEMBERS, progress=False, segment_length=5,
                             checkpoints=TrainingCheckpoints(tmp_path / "checkpoints", keep=2))
    assert resumed.resumed_from == 10
    assert_trees_equal(resumed.final_state, state)
    for k in metrics:
        np.testing.assert_array_equal(resumed.metrics[k], metrics[k], err_msg=k)
    np.testing.assert_array_equal(resumed.eval_returns, eval_returns)


def _state(value):
    return {"params": np.full((2, 3), value, np.float32), "key": np.array([[0, value]] * 2, np.uint32)}


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def test_an_unreadable_newest_checkpoint_gives_way_to_the_one_before(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "checkpoints", keep=3)
    metrics = {"episodes": np.zeros((2, 30), np.int32)}
    for iteration in (10, 20, 30):
        metrics["episodes"][:, iteration - 10:iteration] = iteration
        checkpoints.save(iteration, _state(iteration), metrics)
    checkpoints.wait()
    # Damage every data file of the newest one, as a crash mid-copy or a full disk would.
    for path in (tmp_path / "checkpoints" / "30" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0garbage")
    restored = TrainingCheckpoints(tmp_path / "checkpoints").restore_latest(
        _abstract(_state(0)), _abstract(metrics))
    assert restored.iteration == 20
    assert [i for i, _ in restored.unreadable] == [30]
    np.testing.assert_array_equal(restored.state["params"], np.full((2, 3), 20, np.float32))
    np.testing.assert_array_equal(restored.metrics["episodes"][:, :20], metrics["episodes"][:, :20])
    np.testing.assert_array_equal(restored.metrics["episodes"][:, 20:], 0)  # saved before 30
    assert (tmp_path / "checkpoints.unreadable" / "30").is_dir()  # set aside, not deleted
    assert TrainingCheckpoints(tmp_path / "checkpoints").iterations() == [10, 20]


def test_a_checkpoint_of_another_structure_is_incompatible(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "checkpoints")
    metrics = {"episodes": np.zeros((2, 5), np.int32)}
    checkpoints.save(5, _state(1), metrics)
    checkpoints.wait()
    wider = {"params": np.zeros((2, 4), np.float32), "key": np.zeros((2, 2), np.uint32)}
    with pytest.raises(IncompatibleCheckpoint, match="iteration 5"):
        TrainingCheckpoints(tmp_path / "checkpoints").restore_latest(_abstract(wider),
                                                                     _abstract(metrics))


def test_no_checkpoint_restores_nothing(tmp_path):
    assert TrainingCheckpoints(tmp_path / "checkpoints").restore_latest({}, {}) is None
