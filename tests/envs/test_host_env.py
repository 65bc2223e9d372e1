"""The host bridge: same transitions as gymnasium's own vector env with the same seeds and actions,
auto-reset and truncation as for gymnax environments, one pool for a whole population, clear
errors for bad input and for an environment that raises, and no worker process left behind."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import highway_env  # noqa: F401  (registers highway-fast-v0 for the reference vector env)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from dspjax.envs import HostEnvError, close_host_envs, make_vec_env, take_host_error
from dspjax.hparams import ConfigError

HERE = Path(__file__).parent


def bridge_rollout(env, key, actions):
    """``reset(key)`` then one ``step`` per row of ``actions``, all inside one jitted scan."""
    def run(key):
        obs, state = env.reset(key)

        def body(state, a):
            obs, state, reward, terminated, truncated, info = env.step(key, state, a)
            return state, dict(obs=obs, reward=reward, terminated=terminated, truncated=truncated,
                               final_obs=info["final_observation"],
                               episode_return=info["episode_return"],
                               episode_length=info["episode_length"])
        return obs, jax.lax.scan(body, state, actions)[1]
    return jax.tree.map(np.asarray, jax.jit(run)(key))


def reference_rollout(env_id, seeds, actions, config=None):
    """The same episodes stepped by gymnasium's SyncVectorEnv (same-step auto-reset)."""
    kwargs = {"config": config} if config else {}
    vec = gym.make_vec(env_id, num_envs=len(seeds), vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)
    flat = lambda x: np.asarray(x, np.float32).reshape(len(seeds), -1)
    obs0, _ = vec.reset(seed=[int(s) for s in seeds])
    steps = []
    for a in actions:
        obs, reward, terminated, truncated, info = vec.step(np.asarray(a))
        final = flat(obs).copy()
        for i in np.flatnonzero(info.get("_final_obs", np.zeros(len(seeds), bool))):
            final[i] = np.asarray(info["final_obs"][i], np.float32).reshape(-1)
        steps.append(dict(obs=flat(obs), reward=reward, terminated=terminated,
                          truncated=truncated, final_obs=final))
    vec.close()
    return flat(obs0), {k: np.stack([s[k] for s in steps]) for k in steps[0]}


def check_same(ours, reference):
    obs0, out = ours
    ref_obs0, ref = reference
    np.testing.assert_allclose(obs0, ref_obs0, rtol=1e-6)
    for name in ("obs", "final_obs", "reward"):
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(out["terminated"], ref["terminated"])
    np.testing.assert_array_equal(out["truncated"], ref["truncated"] & ~ref["terminated"])


@pytest.mark.parametrize("workers", [0, 2])
def test_cartpole_same_transitions_as_gymnasium_vector_env(workers):
    env = make_vec_env("gymnasium:CartPole-v1", 4, num_workers=workers)
    actions = np.random.default_rng(0).integers(0, 2, (80, 4)).astype(np.int32)
    key = jax.random.PRNGKey(3)
    ours = bridge_rollout(env, key, actions)
    close_host_envs()
    assert ours[1]["terminated"].sum() >= 4  # several episodes ended and auto-reset
    check_same(ours, reference_rollout("CartPole-v1", np.asarray(env.reset_seeds(key)), actions))


@pytest.mark.parametrize("workers", [0, 2])
def test_box_actions_same_transitions_as_gymnasium_vector_env(workers):
    # Pendulum-v1 through the bridge (``gymnasium:``: gymnax has its own): float actions, one
    # dimension, 200-step episodes truncated; torques outside [-2, 2] are the env's to clip.
    env = make_vec_env("gymnasium:Pendulum-v1", 3, num_workers=workers)
    assert str(env.action_space) == "Box(1,) in [-2, 2]"
    actions = np.random.default_rng(0).uniform(-3, 3, (210, 3, 1)).astype(np.float32)
    key = jax.random.PRNGKey(5)
    ours = bridge_rollout(env, key, actions)
    close_host_envs()
    assert ours[1]["truncated"][199].all()  # every episode cut at 200 steps, then auto-reset
    check_same(ours, reference_rollout("Pendulum-v1", np.asarray(env.reset_seeds(key)), actions))


def test_box_actions_of_a_population_reach_each_members_environments():
    # Under vmap the members' calls become one host call: each member's float actions must
    # still step its own environments (gymnasium's vector env per member as the reference).
    env = make_vec_env("gymnasium:MountainCarContinuous-v0", 2, num_workers=0)
    actions = np.random.default_rng(2).uniform(-1, 1, (3, 20, 2, 1)).astype(np.float32)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)

    def run(key, actions):
        obs, state = env.reset(key)

        def body(s, a):
            obs, s, reward, *_ = env.step(key, s, a)
            return s, (obs, reward)
        return jax.lax.scan(body, state, actions)[1]

    obs, reward = jax.tree.map(np.asarray, jax.jit(jax.vmap(run))(keys, actions))
    close_host_envs()
    for m in range(3):
        _, ref = reference_rollout("MountainCarContinuous-v0", np.asarray(env.reset_seeds(keys[m])),
                                   actions[m])
        np.testing.assert_allclose(obs[m], ref["obs"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(reward[m], ref["reward"], rtol=1e-5, atol=1e-6)


def test_highway_same_transitions_truncation_and_episode_figures():
    config = {"duration": 4}
    env = make_vec_env("highway-fast-v0", 2, json.dumps(config), num_workers=2)
    assert (env.observation_size, env.action_space.n, env.max_episode_steps) == (25, 5, 4)
    actions = np.ones((10, 2), np.int32)  # IDLE: keep lane and speed
    key = jax.random.PRNGKey(0)
    ours = bridge_rollout(env, key, actions)
    close_host_envs()
    check_same(ours, reference_rollout("highway-fast-v0", np.asarray(env.reset_seeds(key)),
                                       actions, config))
    out = ours[1]
    done = out["terminated"] | out["truncated"]
    assert out["truncated"].any()                    # episodes hit the 4-step limit
    assert (out["episode_length"] <= 4).all()
    assert (out["episode_length"][done] > 0).all() and (out["episode_length"][~done] == 0).all()
    # the return of an ended episode is the sum of its rewards since the last reset
    for i in range(2):
        start = 0
        for t in np.flatnonzero(done[:, i]):
            np.testing.assert_allclose(out["episode_return"][t, i], out["reward"][start:t + 1, i].sum(),
                                       rtol=1e-5)
            start = t + 1


def test_population_steps_one_pool_and_members_match_single_runs():
    env = make_vec_env("gymnasium:CartPole-v1", 2, num_workers=2)
    actions = np.random.default_rng(1).integers(0, 2, (30, 2)).astype(np.int32)
    keys = jax.random.split(jax.random.PRNGKey(7), 3)

    def run(key):
        obs, state = env.reset(key)

        def body(s, a):
            obs, s, *_ = env.step(key, s, a)
            return s, obs
        return jax.lax.scan(body, state, actions)[1]

    together = np.asarray(jax.jit(jax.vmap(run))(keys))
    assert env._slot.pool.num_envs == 6           # members x num_envs, in one pool
    alone = [np.asarray(jax.jit(run)(k)) for k in keys]
    close_host_envs()
    for i in range(3):
        np.testing.assert_allclose(together[i], alone[i], rtol=1e-6)


def child_pids():
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def test_raising_env_gives_a_clear_error_and_leaves_no_worker():
    sys.path.insert(0, str(HERE))  # so that gymnasium can import raising_env here and in workers
    try:
        before = set(child_pids())
        env = make_vec_env("raising_env:Raising-v0", 4, num_workers=2)
        with pytest.raises(Exception, match=r"Raising-v0.*env 0 of 4.*step 3.*the simulator broke"):
            bridge_rollout(env, jax.random.PRNGKey(0), np.zeros((10, 4), np.int32))
        error = take_host_error()
        assert isinstance(error, HostEnvError) and "ValueError: the simulator broke" in str(error)
        pool = env._slot.pool
        assert pool.closed and all(p.poll() is not None for p in pool.processes)
        assert set(child_pids()) <= before
    finally:
        sys.path.remove(str(HERE))


def test_pool_names_the_environment_that_raised():
    from dspjax.envs.host_pool import HostEnvPool
    sys.path.insert(0, str(HERE))
    try:
        pool = HostEnvPool("raising_env:Raising-v0", 4, {"raise_in_env_with_seed": 12}, num_workers=2)
        pool.reset([10, 11, 12, 13])
        pool.step([0, 0, 0, 0])
        pool.step([0, 0, 0, 0])
        with pytest.raises(HostEnvError, match=r"env 2 of 4\) failed at step 3 after reset"):
            pool.step([0, 0, 0, 0])
        assert pool.closed and all(p.poll() is not None for p in pool.processes)
    finally:
        sys.path.remove(str(HERE))


def test_workers_leave_when_their_parent_dies_without_closing():
    script = textwrap.dedent("""
        import os, sys
        from dspjax.envs.host_pool import HostEnvPool
        pool = HostEnvPool("CartPole-v1", 2, None, num_workers=2)
        pool.reset([0, 1])
        print(" ".join(str(p.pid) for p in pool.processes), flush=True)
        os._exit(0)  # no close, no atexit
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive


class MultiBinaryActionsEnv(gym.Env):
    """An environment whose actions are neither Discrete nor Box."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.MultiBinary(3)


gym.register("MultiBinaryActions-v0", entry_point=MultiBinaryActionsEnv, max_episode_steps=5)


def test_bad_input_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"env='NoSuchEnv-v0': unknown environment"):
        make_vec_env("NoSuchEnv-v0", 1)
    with pytest.raises(ConfigError, match=r"env='MultiBinaryActions-v0': action space MultiBinary.* "
                                          r"neither Discrete nor Box"):
        make_vec_env("MultiBinaryActions-v0", 1)
    with pytest.raises(ConfigError, match=r"env_config: not valid JSON"):
        make_vec_env("highway-fast-v0", 1, "{duration: 3")
    with pytest.raises(ConfigError, match=r"env_config: must be a JSON object"):
        make_vec_env("highway-fast-v0", 1, "[1, 2]")
    with pytest.raises(ConfigError, match=r"env_config='nope.json': neither"):
        make_vec_env("highway-fast-v0", 1, "nope.json")
    with pytest.raises(ConfigError, match=r"env_config: CartPole-v1 is a gymnax environment"):
        make_vec_env("CartPole-v1", 1, '{"a": 1}')
    with pytest.raises(ConfigError, match=r"env_workers=-1"):
        make_vec_env("gymnasium:CartPole-v1", 1, num_workers=-1)
    path = tmp_path / "lanes.json"
    path.write_text('{"lanes_count": 2, "duration": 7}')
    assert make_vec_env("highway-fast-v0", 1, str(path)).max_episode_steps == 7


def test_highway_ids_are_bridged_with_discrete_actions():
    sizes = {eid: (make_vec_env(eid, 1).observation_size, make_vec_env(eid, 1).action_space.n)
             for eid in ("merge-v1", "roundabout-v1", "intersection-v1", "LunarLander-v3")}
    assert sizes == {"merge-v1": (25, 5), "roundabout-v1": (25, 5), "intersection-v1": (40, 3),
                     "LunarLander-v3": (8, 4)}


def test_a_policy_that_ignores_observations_still_steps_every_time():
    # Constant actions make every step's inputs alike but the step counter: the compiler must
    # neither hoist nor merge the host calls.
    env = make_vec_env("gymnasium:CartPole-v1", 2, num_workers=0)
    obs0, out = bridge_rollout(env, jax.random.PRNGKey(0), jnp.zeros((40, 2), jnp.int32))
    close_host_envs()
    assert out["terminated"].any()
    assert len({tuple(o) for o in out["obs"][:, 0]}) > 30


def test_a_config_value_of_the_wrong_type_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match=r"env='highway-fast-v0' with env_config .*duration"):
        make_vec_env("highway-fast-v0", 1, '{"duration": "x"}')
