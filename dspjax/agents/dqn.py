"""DQN with DSP (discrete actions), end to end under ``jit``.

``make_train(config)`` returns a pure ``train(key, hparams)``. Each iteration steps every
environment once with an ε-greedy policy, writes the transitions to a replay buffer kept on the
device, and every ``train_every`` iterations takes one gradient step on a sampled batch: the TD
loss (optionally double DQN), made one ``DSP.step`` (penalty, importance, masking and pruning,
METHOD.md §2–§4; a pruning iteration prunes when it takes a gradient step). The Q-network is the
one network pruned; the target network shares its mask (§1): every ``target_update_every``
iterations it moves a fraction ``tau`` of the way to the online network (Polyak averaging;
``tau = 1`` is a hard copy), and it is masked with the online network's masks every iteration.
The Adam learning rate decays linearly, ``lr · (1 − lr_decay · t)`` at training fraction ``t``.

The defaults solve gymnax CartPole-v1 while pruning (``experiments/dqn_cartpole``: ``sweep.py``
found them, ``run.py`` confirms them on three seeds). DQN takes many more, smaller iterations
than PPO, so its DSP schedule is its own (``DQN_DSP``), not ``DSPHParams``' PPO-tuned defaults.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dspjax.agents.config_checks import check_action_space, check_networks, check_positive, check_replay
from dspjax.agents.loop import (
    all_finite,
    episode_metrics,
    keep_unless_diverged,
    make_env_restart,
    make_greedy_evaluate,
    make_scan_train,
)
from dspjax.envs import config_vec_env
from dspjax.hparams import hparam, validate_fields
from dspjax.networks import MLP
from dspjax.pruning import DSP, DSPHParams, DSPState

DOUBLE_DQN_NAMES = ("off", "on")

# DQN's own DSP schedule (experiments/dqn_cartpole/sweep.md). A run has 25k small iterations
# (PPO's default: under 1k large ones), so a pruning step every 125 of them, 40 steps in a window
# that ends at 40 % of training and leaves 60 % for the pruned Q-network to recover; λ 1e-4 and an
# importance EMA rate of 0.05. The threshold is DSPHParams' default, ``relative``, with its floor of
# 4 neurons per layer: on CartPole-v1 it stops by itself at 67-98 neurons per layer of 128 and
# reaches 475 on 10 of seeds 0-11 (experiments/dqn_cartpole/results.md), as many as the adaptive
# schedule this was first tuned with (c_final 0.7, kept for that option), whose size came from a
# floor of 32 neurons per layer.
# One optimiser step per iteration, so λ per iteration is λ per step; the penalty stays on to the
# end of training (reg_end 1), as it was tuned.
DQN_DSP = DSPHParams(lam=1e-4, beta=0.05, c_final=0.7, prune_start=0.2, prune_end=0.4, prune_every=125,
                     reg_end=1.0)


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Static configuration: everything that fixes shapes or the program's structure."""
    env_id: str = "CartPole-v1"
    env_config: str = ""          # JSON object passed to a gymnasium env's ``config`` (highway-env)
    env_workers: int | None = None  # host-env worker processes: None = one per core, 0 = in-process
    num_envs: int = 8
    total_timesteps: int = 200_000
    buffer_size: int = 200_000    # the whole run: failures seen early are not forgotten
    batch_size: int = 128
    learning_starts: int = 1_000
    train_every: int = 1
    target_update_every: int = 1  # with τ = 0.02: Polyak averaging every iteration
    hidden_sizes: tuple = (128, 128)
    activation: str = "relu"
    eval_episodes: int = 10

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.num_envs

    def validate(self) -> None:
        """Raises ConfigError naming the first bad field; builds nothing."""
        check_positive(self, ("num_envs", "buffer_size", "batch_size", "train_every",
                              "target_update_every", "eval_episodes"))
        check_replay(self)
        check_networks(self, {"hidden_sizes": self.hidden_sizes})
        check_action_space(self, "DQN", discrete=True, instead="--algo ppo for box actions")


@struct.dataclass
class DQNHParams:
    """Sweepable DQN hyperparameters (array leaves) and the DSP ones of the Q-network."""
    lr: float = hparam(2e-3, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = hparam(0.995, low=0.0, high=1.0, help="discount γ")
    eps_start: float = hparam(1.0, low=0.0, high=1.0, help="ε of the ε-greedy policy at the start")
    eps_end: float = hparam(0.05, low=0.0, high=1.0, help="final ε")
    eps_fraction: float = hparam(0.1, low=0.0, high=1.0, low_open=True,
                                 help="fraction of training over which ε decays linearly")
    double_dqn: int = hparam(1, choices=DOUBLE_DQN_NAMES, help="double DQN target")
    max_grad_norm: float = hparam(10.0, low=0.0, low_open=True, help="global gradient-norm clip")
    lr_decay: float = hparam(1.0, low=0.0, high=1.0,
                             help="linear learning-rate decay: lr · (1 − lr_decay · progress)")
    tau: float = hparam(0.02, low=0.0, high=1.0, low_open=True,
                        help="target update rate: every target_update_every iterations "
                             "target ← τ·online + (1 − τ)·target (1 = hard copy)")
    dsp: DSPHParams = struct.field(default_factory=lambda: DQN_DSP)

    def validate(self) -> None:
        validate_fields(self)
        self.dsp.validate()


@struct.dataclass
class ReplayBuffer:
    """A ring buffer of transitions on the device; ``next_obs`` is the observation the action led
    to (the final one when the episode ended), ``terminated`` excludes truncation."""
    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    terminated: jnp.ndarray
    position: jnp.ndarray
    size: jnp.ndarray


def init_buffer(capacity: int, obs_size: int) -> ReplayBuffer:
    z = lambda *shape, dtype=jnp.float32: jnp.zeros(shape, dtype)  # noqa: E731
    return ReplayBuffer(z(capacity, obs_size), z(capacity, dtype=jnp.int32), z(capacity),
                        z(capacity, obs_size), z(capacity, dtype=bool), jnp.array(0), jnp.array(0))


def add_transitions(buffer: ReplayBuffer, obs, action, reward, next_obs, terminated) -> ReplayBuffer:
    """Writes a batch of transitions at the ring position, overwriting the oldest."""
    capacity = buffer.obs.shape[0]
    idx = (buffer.position + jnp.arange(obs.shape[0])) % capacity
    return buffer.replace(obs=buffer.obs.at[idx].set(obs), action=buffer.action.at[idx].set(action),
                          reward=buffer.reward.at[idx].set(reward),
                          next_obs=buffer.next_obs.at[idx].set(next_obs),
                          terminated=buffer.terminated.at[idx].set(terminated),
                          position=(buffer.position + obs.shape[0]) % capacity,
                          size=jnp.minimum(buffer.size + obs.shape[0], capacity))


def sample_transitions(buffer: ReplayBuffer, key, batch_size: int) -> dict:
    """``batch_size`` transitions drawn uniformly (with replacement) from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return dict(obs=buffer.obs[idx], action=buffer.action[idx], reward=buffer.reward[idx],
                next_obs=buffer.next_obs[idx], terminated=buffer.terminated[idx])


def td_targets(reward, terminated, next_q_target, next_q_online, gamma, double_dqn):
    """``r + γ (1 − terminated) Q_target(s', a*)`` with ``a* = argmax Q_online(s')`` for double
    DQN and ``argmax Q_target(s')`` otherwise."""
    greedy = jnp.where(double_dqn == 1, jnp.argmax(next_q_online, -1), jnp.argmax(next_q_target, -1))
    next_value = jnp.take_along_axis(next_q_target, greedy[:, None], -1)[:, 0]
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def epsilon(hp: DQNHParams, progress):
    """Linear decay from ``eps_start`` to ``eps_end`` over the first ``eps_fraction`` of training."""
    frac = jnp.clip(progress / hp.eps_fraction, 0.0, 1.0)
    return hp.eps_start + frac * (hp.eps_end - hp.eps_start)


@struct.dataclass
class DQNState:
    params: dict             # {"q": MLP variables}
    target_params: dict      # masked copy of params
    dsp: DSPState            # Adam's state, masks and importance of the Q-network
    buffer: ReplayBuffer
    env_state: object
    obs: jnp.ndarray
    key: jnp.ndarray
    diverged: jnp.ndarray


def networks(config: DQNConfig) -> dict:
    """DQN's pruning declaration: the Q-network (its target is masked with the same masks)."""
    return {"q": MLP(config.hidden_sizes, 1, config.activation).chain(("q", "params"))}


def make_train(config: DQNConfig, progress_callback=None):
    """Returns ``train(key, hparams) -> (final DQNState, per-iteration metrics, eval returns)``."""
    config.validate()
    env = config_vec_env(config, config.num_envs)
    q_network = MLP(config.hidden_sizes, env.action_space.n, config.activation)
    n_iter = config.num_iterations
    start_iteration = config.learning_starts // config.num_envs

    def q_values(params, obs):
        return q_network.apply(params["q"], obs)

    def learning_rate(hp, progress):
        return hp.lr * (1.0 - hp.lr_decay * progress)

    def make_dsp(hp, progress=0.0) -> DSP:
        optimizer = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm),
                                optax.adam(learning_rate(hp, progress)))
        return DSP(networks(config), optimizer, hp.dsp, n_iter,
                   step_size=lambda _: learning_rate(hp, progress))

    def init(key, hp: DQNHParams) -> DQNState:
        k_net, k_dsp, k_env, key = jax.random.split(key, 4)
        obs, env_state = env.reset(k_env)
        params = {"q": q_network.init(k_net, obs)}
        return DQNState(params, params, make_dsp(hp).init(k_dsp, params),
                        init_buffer(config.buffer_size, env.observation_size), env_state, obs,
                        key, jnp.array(False))

    def loss_fn(params, batch, target_params, hp):
        """The TD loss; DSP adds its penalty itself."""
        q = q_values(params, batch["obs"])
        q_taken = jnp.take_along_axis(q, batch["action"][:, None], -1)[:, 0]
        targets = jax.lax.stop_gradient(td_targets(
            batch["reward"], batch["terminated"], q_values(target_params, batch["next_obs"]),
            q_values(params, batch["next_obs"]), hp.gamma, hp.double_dqn))
        td_loss = 0.5 * jnp.mean((q_taken - targets) ** 2)
        return td_loss, dict(td_loss=td_loss, q_mean=jnp.mean(q_taken))

    def gradient_step(state: DQNState, key, hp, iteration):
        batch = sample_transitions(state.buffer, key, config.batch_size)
        dsp = make_dsp(hp, iteration / n_iter)
        (td_loss, aux), grads, taps = dsp.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, state.target_params, hp)
        params, dsp_state, info = dsp.step(state.dsp, state.params, grads, taps, iteration)
        return state.replace(params=params, dsp=dsp_state), dict(aux, **info, loss=td_loss + info["penalty"])

    def iteration_step(state: DQNState, iteration, hp: DQNHParams):
        if progress_callback is not None:
            jax.debug.callback(progress_callback, iteration)
        progress = iteration / n_iter
        key, k_explore, k_action, k_env, k_batch = jax.random.split(state.key, 5)
        greedy = jnp.argmax(q_values(state.params, state.obs), -1)
        random_action = jax.random.randint(k_action, greedy.shape, 0, env.action_space.n)
        explore = jax.random.uniform(k_explore, greedy.shape) < epsilon(hp, progress)
        action = jnp.where(explore, random_action, greedy)
        next_obs, env_state, reward, terminated, truncated, info = env.step(k_env, state.env_state,
                                                                            action)
        buffer = add_transitions(state.buffer, state.obs, action, reward,
                                 info["final_observation"], terminated)
        new = state.replace(buffer=buffer, env_state=env_state, obs=next_obs, key=key)

        learn = (iteration >= start_iteration) & (iteration % config.train_every == 0)
        zero_losses = dict(td_loss=0.0, q_mean=0.0, loss=0.0, **make_dsp(hp).no_step_info())
        new, losses = jax.lax.cond(learn, lambda s: gradient_step(s, k_batch, hp, iteration),
                                   lambda s: (s, jax.tree.map(jnp.asarray, zero_losses)), new)
        refresh = iteration % config.target_update_every == 0
        target = jax.tree.map(lambda t, p: jnp.where(refresh, hp.tau * p + (1.0 - hp.tau) * t, t),
                              new.target_params, new.params)
        target = make_dsp(hp).masked(target, new.dsp)

        diverged = state.diverged | ~all_finite(losses["loss"], new.params)
        updated = new.replace(target_params=target, diverged=diverged)
        next_state = keep_unless_diverged(diverged, state.replace(
            diverged=diverged, buffer=buffer, env_state=env_state, obs=next_obs, key=key), updated)
        metrics = dict(timesteps=(iteration + 1) * config.num_envs, **episode_metrics(info),
                       epsilon=epsilon(hp, progress), diverged=diverged, **losses)
        metrics.update(make_dsp(hp).metrics(next_state.params, next_state.dsp))
        return next_state, metrics

    return make_scan_train(init, iteration_step, make_greedy_evaluate(config, q_values, env.action_space), n_iter,
                           make_env_restart(env))
