"""brax in the compiled loop: the same transitions as brax's own ``step``, terminated when brax says
done, truncated after 1000 steps, auto-reset from a fresh ``reset``, and bad ids and configs refused
before anything is compiled. brax's ``spring`` backend keeps the compile short on a CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.envs import ActionSpace, make_vec_env
from dspjax.envs.brax_env import MAX_EPISODE_STEPS
from dspjax.hparams import ConfigError

CONFIG = '{"backend": "spring", "terminate_when_unhealthy": false}'


def rollout(env, key, actions):
    def run(key):
        obs, state = env.reset(key)

        def body(state, k_a):
            obs, state, reward, terminated, truncated, info = env.step(k_a[0], state, k_a[1])
            return state, dict(obs=obs, reward=reward, terminated=terminated, truncated=truncated,
                               final_obs=info["final_observation"], length=info["episode_length"],
                               episode_return=info["episode_return"])
        keys = jax.random.split(key, len(actions))
        return obs, state, jax.lax.scan(body, state, (keys, actions))[1]
    return jax.jit(run)(key)


@pytest.fixture(scope="module")
def long_run():
    env = make_vec_env("brax:hopper", 2, CONFIG)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (MAX_EPISODE_STEPS + 5, 2, 3), minval=-1, maxval=1)
    obs0, _, out = rollout(env, jax.random.PRNGKey(0), actions)
    return env, actions, obs0, jax.tree.map(np.asarray, out)


def test_hopper_tells_its_spaces():
    env = make_vec_env("brax:hopper", 1, '{"backend": "spring"}')
    assert (env.observation_size, env.action_space, env.max_episode_steps) == \
        (11, ActionSpace.box([-1.0] * 3, [1.0] * 3), 1000)


def test_same_transitions_as_brax_step_then_truncated_after_1000_steps_and_reset(long_run):
    env, actions, obs0, out = long_run
    brax_env = env._env
    states = jax.vmap(brax_env.reset)(jax.random.split(jax.random.PRNGKey(0), 2))
    np.testing.assert_allclose(obs0, states.obs, rtol=1e-6)
    step = jax.jit(jax.vmap(brax_env.step))
    for t in range(50):  # brax's own steps, with the same actions
        states = step(states, actions[t])
        np.testing.assert_allclose(out["obs"][t], states.obs, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["reward"][t], states.reward, rtol=1e-4, atol=1e-5)
    assert not out["terminated"].any()  # terminate_when_unhealthy false: only the time limit ends
    done_at = np.flatnonzero(out["truncated"][:, 0])
    np.testing.assert_array_equal(done_at, [MAX_EPISODE_STEPS - 1])
    assert out["truncated"][MAX_EPISODE_STEPS - 1].all()
    np.testing.assert_array_equal(out["length"][MAX_EPISODE_STEPS - 1], [MAX_EPISODE_STEPS] * 2)
    np.testing.assert_allclose(out["episode_return"][MAX_EPISODE_STEPS - 1],
                               out["reward"][:MAX_EPISODE_STEPS].sum(0), rtol=1e-4)
    # the next episode starts from a fresh reset: near the initial pose, not where the last ended
    last = MAX_EPISODE_STEPS - 1
    assert np.abs(out["obs"][last] - obs0).max() < 0.05
    assert np.abs(out["final_obs"][last] - out["obs"][last]).max() > 0.05


def test_a_fallen_hopper_is_terminated_and_restarts():
    env = make_vec_env("brax:hopper", 2, '{"backend": "spring"}')
    actions = jnp.ones((150, 2, 3))  # full torque: it falls within a few dozen steps
    _, _, out = rollout(env, jax.random.PRNGKey(3), actions)
    terminated = np.asarray(out["terminated"])
    assert terminated.any(axis=0).all() and not np.asarray(out["truncated"]).any()
    t = np.flatnonzero(terminated[:, 0])[0]
    assert np.asarray(out["length"])[t, 0] == t + 1 and np.asarray(out["length"])[t + 1, 0] == 0


def test_bad_brax_ids_and_configs_are_refused():
    with pytest.raises(ConfigError, match=r"env='brax:hoper': unknown brax environment; brax ids are .*brax:hopper"):
        make_vec_env("brax:hoper", 1)
    with pytest.raises(ConfigError, match=r"env_config: unknown key\(s\) 'gravity' for brax:hopper; valid keys: "):
        make_vec_env("brax:hopper", 1, '{"gravity": 1}')
