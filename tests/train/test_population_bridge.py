"""Populations on bridged gymnasium environments: both agents train through the host callback,
runs are reproducible whatever the number of workers, and an environment that raises stops the
run with its own error (not JAX's wrapper) and no worker left."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dspjax.agents.dqn import DQNConfig, DQNHParams
from dspjax.agents.dqn import make_train as make_dqn
from dspjax.agents.ppo import PPOConfig, PPOHParams
from dspjax.agents.ppo import make_train as make_ppo
from dspjax.envs import HostEnvError
from dspjax.train import build_population, run_population

ENVS_TESTS = str(Path(__file__).parents[1] / "envs")


def tiny(algo, env_id, workers):
    if algo == "ppo":
        return make_ppo, PPOConfig(env_id=env_id, env_workers=workers, num_envs=2, num_steps=16,
                                   total_timesteps=320, eval_episodes=2), PPOHParams()
    return make_dqn, DQNConfig(env_id=env_id, env_workers=workers, num_envs=2, total_timesteps=200,
                               learning_starts=40, batch_size=16, buffer_size=200,
                               eval_episodes=2), DQNHParams()


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_agents_train_on_a_bridged_env_reproducibly(algo):
    runs = []
    for workers in (2, 0):
        make, config, hp = tiny(algo, "gymnasium:CartPole-v1", workers)
        result = run_population(make, config, build_population(hp, {"method": ["dsp"]}, [0, 1]),
                                progress=False)
        runs.append(result)
    with_workers, in_process = runs
    assert with_workers.metrics["episodes"].sum() > 0
    assert np.isfinite(with_workers.metrics["loss"]).all()
    np.testing.assert_array_equal(with_workers.eval_returns, in_process.eval_returns)
    np.testing.assert_allclose(with_workers.metrics["loss"], in_process.metrics["loss"], rtol=1e-5)
    # the two members (seeds 0 and 1) saw different episodes
    assert not np.array_equal(with_workers.metrics["episode_return"][0],
                              with_workers.metrics["episode_return"][1])


def test_an_env_that_raises_stops_the_run_with_its_own_error():
    sys.path.insert(0, ENVS_TESTS)
    try:
        make, config, hp = tiny("ppo", "raising_env:Raising-v0", 2)
        with pytest.raises(HostEnvError, match=r"Raising-v0.*step 3 after reset.*simulator broke"):
            run_population(make, config, build_population(hp, {"method": ["dsp"]}, [0]),
                           progress=False)
    finally:
        sys.path.remove(ENVS_TESTS)
