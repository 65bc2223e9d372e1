"""PPO and SAC on a gymnasium Box environment through the host bridge (in-process): every action
reaches the environment as a float32 array of the action's shape within the bounds, the
transitions are those gymnasium's own SyncVectorEnv gives for the same seeds and actions, and what
the agent saw and reported (SAC's replay buffer, PPO's running statistics and last observation,
the per-iteration episode figures, the greedy evaluation's return) is made of those transitions.

The environment is gymnasium's Pendulum-v1 with 20-step episodes, registered under its own id
with a wrapper outside every other (``RecordTransitions``) that logs what each instance receives
and returns."""

import gymnasium as gym
import jax
import numpy as np
from gymnasium.envs.registration import WrapperSpec
from gymnasium.vector import AutoresetMode

from dspjax.agents.ppo import PPOConfig, PPOHParams
from dspjax.agents.ppo import make_train as make_ppo_train
from dspjax.agents.sac import SACConfig, SACHParams
from dspjax.agents.sac import make_train as make_sac_train
from dspjax.envs import close_host_envs

ENV_ID = "RecordingPendulum-v0"
EPISODE_STEPS = 20  # Pendulum-v1's episodes last 200 steps; these end within a tiny run
NUM_ENVS = 2
LOW, HIGH = -2.0, 2.0  # Pendulum-v1's torque bounds
LOGS: list[dict] = []  # one per environment instance made in this process, in order


class RecordTransitions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Logs each reset (its seed and observation) and each step (the action as given, and the
    observation, reward, terminated and truncated returned) of the environment it wraps."""

    def __init__(self, env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.log = {k: [] for k in ("seeds", "reset_obs", "reset_at", "actions", "obs", "reward",
                                    "terminated", "truncated")}
        LOGS.append(self.log)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        for k, v in (("seeds", seed), ("reset_obs", obs), ("reset_at", len(self.log["actions"]))):
            self.log[k].append(v)
        return obs, info

    def step(self, action):
        self.log["actions"].append(np.array(action, copy=True))
        obs, reward, terminated, truncated, info = self.env.step(action)
        for k, v in zip(("obs", "reward", "terminated", "truncated"), (obs, reward, terminated, truncated)):
            self.log[k].append(v)
        return obs, reward, terminated, truncated, info


gym.register(ENV_ID, entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv",
             max_episode_steps=EPISODE_STEPS,
             additional_wrappers=(WrapperSpec("RecordTransitions", f"{__name__}:RecordTransitions", {}),))


def train(make_train, config, hp):
    """Trains once (key 0) with fresh logs; ``(final state, metrics, eval returns, logs)``."""
    LOGS.clear()
    try:
        out = jax.tree.map(np.asarray, jax.jit(make_train(config))(jax.random.PRNGKey(0), hp))
    finally:
        close_host_envs()
    return (*out, list(LOGS))


def training_logs(logs, steps):
    """The logs of the training environments, in their order in the batch: the instances stepped
    ``steps`` times (the evaluation environment plays one episode, the probe none)."""
    train_logs = [log for log in logs if len(log["actions"]) == steps]
    assert len(train_logs) == NUM_ENVS
    return train_logs


def reference_rollout(seeds, actions):
    """gymnasium's SyncVectorEnv of Pendulum-v1 (20-step episodes, same-step auto-reset, as the
    bridge does) reset with ``seeds`` and stepped with ``actions`` (steps, envs, 1): the first
    observations, and per step the observations (of the next episode where one ended), the final
    observations (the ended episode's last), rewards, terminated and truncated."""
    vec = gym.vector.SyncVectorEnv(
        [lambda: gym.make("Pendulum-v1", max_episode_steps=EPISODE_STEPS)] * len(seeds),
        autoreset_mode=AutoresetMode.SAME_STEP)
    obs0, _ = vec.reset(seed=[int(s) for s in seeds])
    steps = []
    for a in actions:
        obs, reward, terminated, truncated, info = vec.step(a)
        final = obs.copy()
        for i in np.flatnonzero(info.get("_final_obs", np.zeros(len(seeds), bool))):
            final[i] = info["final_obs"][i]
        steps.append(dict(obs=obs, final_obs=final, reward=reward, terminated=terminated,
                          truncated=truncated))
    vec.close()
    return obs0, {k: np.stack([s[k] for s in steps]) for k in steps[0]}


def check_transitions(logs, steps):
    """The actions and transitions of the training environments against the reference; returns
    ``(first observations, reference per step)`` for the agent-level checks."""
    train_logs = training_logs(logs, steps)
    for log in train_logs:
        for a in log["actions"]:  # as the bridge hands them over: float32, the Box's shape
            assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (1,)
    actions = np.stack([np.stack(log["actions"]) for log in train_logs], 1)  # (steps, envs, 1)
    assert np.all((actions >= LOW) & (actions <= HIGH))
    seeds = [log["seeds"][0] for log in train_logs]
    assert len(set(seeds)) == NUM_ENVS and all(isinstance(s, int) for s in seeds)
    obs0, ref = reference_rollout(seeds, actions)
    # The same float32 actions on the same seeded NumPy generators: the same arithmetic, so equal.
    recorded = lambda name: np.stack([np.stack(log[name]) for log in train_logs], 1)  # noqa: E731
    np.testing.assert_array_equal(np.stack([log["reset_obs"][0] for log in train_logs]), obs0)
    np.testing.assert_array_equal(recorded("obs"), ref["final_obs"])
    np.testing.assert_array_equal(recorded("reward"), ref["reward"])
    np.testing.assert_array_equal(recorded("terminated"), ref["terminated"])
    np.testing.assert_array_equal(recorded("truncated"), ref["truncated"])
    done = ref["terminated"] | ref["truncated"]
    for i, log in enumerate(train_logs):  # auto-reset in the step an episode ended, unseeded
        ended = list(np.flatnonzero(done[:, i]) + 1)
        assert log["reset_at"] == [0, *ended] and log["seeds"][1:] == [None] * len(ended)
        np.testing.assert_array_equal(np.stack(log["reset_obs"][1:]), ref["obs"][done[:, i], i])
    ends = (np.arange(1, steps + 1) % EPISODE_STEPS == 0)[:, None]  # every env at steps 20, 40
    np.testing.assert_array_equal(done, np.broadcast_to(ends, done.shape))
    return obs0, ref


def check_episode_metrics(metrics, ref, steps_per_iteration):
    """Each iteration's ``episodes`` and mean ``episode_return`` are those of the episodes that
    ended in its steps, their returns summed in float32 in step order as the agent does. The mean
    of two float32 returns of 20 terms each, rounded alike: 1e-6 relative leaves a few ulps for
    a different order of the sum over environments."""
    done = ref["terminated"] | ref["truncated"]
    rewards = ref["reward"].astype(np.float32)
    returns, running = [], np.zeros(NUM_ENVS, np.float32)
    for t in range(len(rewards)):
        running = running + rewards[t]
        returns.append(np.where(done[t], running, 0.0))
        running = np.where(done[t], np.float32(0.0), running)
    returns = np.stack(returns).reshape(-1, steps_per_iteration * NUM_ENVS)
    episodes = done.reshape(-1, steps_per_iteration * NUM_ENVS).sum(1)
    np.testing.assert_array_equal(metrics["episodes"], episodes)
    assert episodes.sum() > 0
    np.testing.assert_allclose(metrics["episode_return"], returns.sum(1) / np.maximum(episodes, 1),
                               rtol=1e-6)


def check_evaluation(logs, eval_returns):
    """The greedy evaluation (one episode, its own environment) returns the sum of the rewards
    that environment gave (float32 in step order, as above)."""
    (log,) = [log for log in logs if len(log["actions"]) == EPISODE_STEPS]
    assert log["seeds"][0] is not None and log["truncated"][-1]
    assert all(a.dtype == np.float32 and LOW <= a[0] <= HIGH for a in log["actions"])
    total = np.float32(0.0)
    for r in log["reward"]:
        total = total + np.float32(r)
    np.testing.assert_allclose(eval_returns, [total], rtol=1e-6)


def test_ppo_drives_gymnasiums_transitions_through_the_bridge():
    """PPO, 3 iterations of 16 steps of 2 envs: actions are its Gaussian samples clipped to the
    bounds; its last observation is the reference's, its running observation statistics those of
    every observation it acted on, its running discounted returns those of the reference's
    rewards."""
    steps, per_iteration = 48, 16
    config = PPOConfig(env_id=ENV_ID, env_workers=0, num_envs=NUM_ENVS, num_steps=per_iteration,
                       total_timesteps=NUM_ENVS * steps, update_epochs=1, num_minibatches=2,
                       hidden_sizes=(8, 8), eval_episodes=1)
    hp = PPOHParams()
    state, metrics, eval_returns, logs = train(make_ppo_train, config, hp)
    obs0, ref = check_transitions(logs, steps)
    actions = np.stack([np.stack(log["actions"]) for log in training_logs(logs, steps)])
    assert np.any(np.abs(actions) == HIGH)  # σ = 1 at the start: some samples were clipped
    check_episode_metrics(metrics, ref, per_iteration)
    check_evaluation(logs, eval_returns)

    np.testing.assert_array_equal(state.obs, ref["obs"][-1])  # the next observation to act on
    # Every observation acted on (the first, then each step's but the last) entered the running
    # statistics, merged with their prior (mean 0, variance 1, count 1e-4). Float32 merges of 48
    # batches of observations in [-8, 8] against float64: 1e-5 relative, and 1e-5 absolute for a
    # mean near 0 (they agree to 2e-7 relative on a 2-core AMD EPYC).
    seen = np.concatenate([obs0, ref["obs"][:-1].reshape(-1, 3)]).astype(np.float64)
    count = len(seen) + 1e-4
    mean = seen.sum(0) / count
    var = (1e-4 * (1.0 + mean ** 2) + ((seen - mean) ** 2).sum(0)) / count
    np.testing.assert_allclose(state.obs_stats.count, count, rtol=1e-6)
    np.testing.assert_allclose(state.obs_stats.mean, mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.obs_stats.var, var, rtol=1e-5, atol=1e-5)
    # Each env's discounted return G ← r + γ G, restarted after an episode ended (8 steps since
    # the last end): float32 sums of 8 terms against float64, 1e-5 relative (3e-8 measured).
    done = ref["terminated"] | ref["truncated"]
    g = np.zeros(NUM_ENVS)
    for r, d in zip(ref["reward"], done):
        g = np.where(d, 0.0, r + float(hp.gamma) * g)
    np.testing.assert_allclose(state.reward_scaler.returns, g, rtol=1e-5)
    assert np.all(g != 0.0)


def test_sac_drives_gymnasiums_transitions_through_the_bridge():
    """SAC, 48 iterations of one step of 2 envs (uniform actions for the first 10 iterations, then
    sampled, with a gradient step each): actions are its squashed actions in [-1, 1] rescaled
    onto the bounds; its replay buffer holds exactly the reference's transitions, in order."""
    steps = 48
    config = SACConfig(env_id=ENV_ID, env_workers=0, num_envs=NUM_ENVS,
                       total_timesteps=NUM_ENVS * steps, buffer_size=NUM_ENVS * steps, batch_size=8,
                       learning_starts=NUM_ENVS * 10, hidden_sizes=(8, 8), eval_episodes=1)
    state, metrics, eval_returns, logs = train(make_sac_train, config, SACHParams())
    obs0, ref = check_transitions(logs, steps)
    check_episode_metrics(metrics, ref, 1)
    check_evaluation(logs, eval_returns)
    assert float(metrics["critic_loss"][-1]) != 0.0  # it learned from what it stored

    # flashbax's item buffer: one row, the transitions in the order added (step, then env).
    assert int(state.buffer.current_index) == 0 and bool(state.buffer.is_full)
    stored = {k: v[0].reshape(steps, NUM_ENVS, *v.shape[2:]) for k, v in state.buffer.experience.items()}
    np.testing.assert_array_equal(stored["obs"], np.concatenate([obs0[None], ref["obs"][:-1]]))
    np.testing.assert_array_equal(stored["next_obs"], ref["final_obs"])  # the ended episode's last
    np.testing.assert_array_equal(stored["reward"], ref["reward"].astype(np.float32))
    np.testing.assert_array_equal(stored["terminated"], ref["terminated"])
    # The environment got the stored action in [-1, 1] mapped onto [-2, 2], i.e. doubled; float32
    # rounding of low + (a + 1) / 2 · (high − low): within 2 ulps of 2 (5e-7).
    actions = np.stack([np.stack(log["actions"]) for log in training_logs(logs, steps)], 1)
    assert np.all(np.abs(stored["action"]) <= 1.0)
    np.testing.assert_allclose(actions, 2.0 * stored["action"], rtol=0, atol=5e-7)
