"""Populations: the grid x seeds product, batching of hyperparameters, and isolation of a member
that diverges."""

import jax
import numpy as np
import pytest

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.hparams import ConfigError
from dspjax.pruning import IMPORTANCE_NAMES, NO_PRUNING
from dspjax.train import Member, build_population, run_population, stack_hparams

TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 12, update_epochs=1,
                 num_minibatches=2, hidden_sizes=(16, 8), eval_episodes=2)


def test_grid_product_times_seeds_with_method_presets_first():
    members = build_population(PPOHParams(), {"c_final": [0.5, 0.9], "method": ["dsp", "dense"]},
                               seeds=[3, 4, 5])
    assert len(members) == 2 * 2 * 3
    assert [m.index for m in members] == list(range(12))
    assert [m.seed for m in members[:3]] == [3, 4, 5]
    points = {(m.grid_point["method"], m.grid_point["c_final"]) for m in members}
    assert points == {("dsp", 0.5), ("dsp", 0.9), ("dense", 0.5), ("dense", 0.9)}
    for m in members:
        dense = m.grid_point["method"] == "dense"
        assert (int(m.hparams.dsp.pruning) == NO_PRUNING) == dense
        assert float(m.hparams.dsp.c_final) == m.grid_point["c_final"]


def test_a_methods_preset_wins_over_the_other_values_it_defines():
    members = build_population(PPOHParams(), {"method": ["dense", "dsp", "random"], "lam": [2e-5],
                                              "importance": [1], "k_final": [0.2]}, seeds=[0])
    dense, dsp, random = (m.hparams.dsp for m in members)
    assert float(dense.lam) == 0.0 and int(dense.pruning) == NO_PRUNING
    assert members[0].grid_point["lam"] == 0.0
    assert float(dsp.lam) == np.float32(2e-5) and int(dsp.importance) == 1
    assert IMPORTANCE_NAMES[int(random.importance)] == "random" and float(random.lam) == 0.0
    assert float(random.k_final) == np.float32(0.2)  # not part of the preset: the given value


def test_a_bad_member_is_refused_before_anything_compiles():
    with pytest.raises(ConfigError, match="prune_start=0.5 must be < prune_end=0.4"):
        build_population(PPOHParams(), {"prune_start": [0.1, 0.5]}, seeds=[0])


def test_shared_leaves_stay_unmapped_and_varying_ones_are_batched():
    hps = [PPOHParams(), PPOHParams(lr=1e-3)]
    stacked, axes = stack_hparams(hps)
    assert axes.lr == 0 and axes.gamma is None and axes.dsp.lam is None
    np.testing.assert_allclose(stacked.lr, [2.5e-4, 1e-3])
    assert stacked.dsp.importance.dtype == np.int32 and stacked.dsp.importance.shape == ()


def run(members, config=TINY):
    return run_population(make_train, config, members, progress=False)


def test_a_diverging_member_is_flagged_and_does_not_disturb_the_others():
    good = PPOHParams()
    other = PPOHParams(lr=5e-4)
    poisoned = PPOHParams(lr=float("nan"))  # bypasses validation on purpose
    clean = run([Member(0, 0, {}, good), Member(1, 1, {}, other)])
    mixed = run([Member(0, 0, {}, good), Member(1, 1, {}, poisoned)])
    assert not clean.metrics["diverged"].any()
    assert mixed.metrics["diverged"][1].all() and not mixed.metrics["diverged"][0].any()
    # member 0 trains exactly as it does beside a healthy neighbour
    for name in ("episode_return", "loss", "actor_alive_neurons", "critic_alive_neurons"):
        np.testing.assert_allclose(mixed.metrics[name][0], clean.metrics[name][0], rtol=1e-6)
    np.testing.assert_allclose(mixed.eval_returns[0], clean.eval_returns[0])
    # the diverged member keeps its last finite networks
    for leaf in jax.tree.leaves(mixed.final_state.params):
        assert np.all(np.isfinite(leaf[1]))


def test_population_results_are_numpy_with_a_leading_member_axis():
    members = build_population(PPOHParams(), {"lam": [0.0, 1e-3]}, seeds=[0])
    result = run(members)
    assert result.eval_returns.shape == (2, TINY.eval_episodes)
    assert result.metrics["episode_return"].shape == (2, TINY.num_iterations)
    assert isinstance(result.final_state.params["actor"]["params"]["Dense_0"]["kernel"], np.ndarray)
    assert result.final_state.params["actor"]["params"]["Dense_0"]["kernel"].shape == (2, 4, 16)
    # λ = 0 adds no penalty; λ > 0 does once the ramp has started
    assert np.all(result.metrics["penalty"][0] == 0) and np.any(result.metrics["penalty"][1] > 0)


def test_members_are_split_over_devices_when_there_are_several():
    """Two forced CPU devices: the population runs sharded and gives the one-device results."""
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent("""
        import jax, numpy as np
        from dspjax.agents import PPOConfig, PPOHParams, make_train
        from dspjax.train import build_population, member_sharding, run_population
        assert len(jax.devices()) == 2
        assert member_sharding(3) is None and member_sharding(4) is not None
        config = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 12, update_epochs=1,
                           num_minibatches=2, hidden_sizes=(16, 8), eval_episodes=2)
        members = build_population(PPOHParams(), {"lam": [0.0, 1e-3]}, seeds=[0, 1])
        result = run_population(make_train, config, members, progress=False)
        np.save("alive.npy", result.metrics["actor_alive_neurons"])
    """)
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
               "JAX_PLATFORMS": "cpu"}
        proc = subprocess.run([sys.executable, "-c", script], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        sharded = np.load(os.path.join(tmp, "alive.npy"))
    members = build_population(PPOHParams(), {"lam": [0.0, 1e-3]}, seeds=[0, 1])
    single = run(members)
    assert single.metrics["actor_alive_neurons"].shape == sharded.shape
    np.testing.assert_array_equal(single.metrics["actor_alive_neurons"], sharded)
