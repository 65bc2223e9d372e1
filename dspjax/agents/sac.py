"""Soft Actor-Critic with DSP (box actions), end to end under ``jit``.

``make_train(config)`` returns a pure ``train(key, hparams)``. Each iteration steps every
environment once with an action sampled from the policy (uniform before ``learning_starts``),
writes the transitions to a flashbax replay buffer kept on the device, and takes
``updates_per_iteration`` gradient steps on sampled batches, each one ``DSP.step`` (METHOD.md
§2–§4).

The policy is a tanh-squashed diagonal Gaussian (``policy_distribution``): the actor outputs
``2 · dims`` numbers, the mean ``u`` and the log std (tanh-rescaled into ``LOG_STD_RANGE``); an
action is ``tanh(x)``, ``x ~ N(u, σ²)``, in ``[-1, 1]``, rescaled to the box ``[low, high]`` on its
way to the environment (``rescale``). The log-probability and the target entropy are those of the
squashed action in ``[-1, 1]`` (without the rescaling's constant ``Σ log((high − low) / 2)``), the
replay buffer and the critics see that action too. The greedy action is ``rescale(tanh(u))``
(``greedy_action``): the policy network the library exports is the actor, its outputs
``[u, log-std pre-activations]``, and the greedy action is computed from its first ``dims`` outputs.

Twin critics ``Q1``, ``Q2`` (MLPs on ``concat(obs, action)``) and their targets. DSP prunes the
actor and each critic with its own mask (``networks``); the targets are kept outside the optimizer:
every iteration they move a fraction ``tau`` towards the online critics (Polyak) and are masked with
the online critics' masks, so they are exactly 0 on pruned groups (like DQN's target).

One Adam over ``{"actor", "q1", "q2", "log_alpha"}`` and one loss, the sum of the three SAC losses
(``sac_losses``), whose stop-gradients make each part train only its own parameters: the sum's
gradient is each loss's gradient with respect to its own part. That keeps DSP's one call per
optimiser step. The taps (``∂L/∂h`` for Taylor importance) are taken on the first call of each
declared network in the loss: the loss runs the actor first on the batch's ``s`` (the actor loss;
the critics there run on stop-gradient copies, which are not tapped), then each critic on the
batch's ``(s, a)`` (the critic loss; the next action ``a' ~ π(s')`` is drawn with a stop-gradient
copy of the actor). So each network's importance is measured on the loss that trains it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import distrax
import flashbax
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
from dspjax.envs import ActionSpace, config_vec_env
from dspjax.hparams import hparam, validate_fields
from dspjax.networks import MLP
from dspjax.pruning import DSP, NO_PRUNING, DSPHParams, DSPState, chain_apply

PRUNE_CRITIC_NAMES = ("off", "on")
LOG_STD_RANGE = (-5.0, 2.0)  # the actor's log std, tanh-rescaled into this range
CRITICS = ("q1", "q2")

# SAC's own DSP schedule: like DQN's (many small iterations, one gradient step each), a pruning
# step every 100 iterations between 20 % and 50 % of training, λ 1e-4, importance EMA rate 0.05,
# the penalty on to the end. Not tuned, one measurement: Pendulum-v1, 20k steps, seed 0 (2-core
# AMD EPYC) reaches a greedy return of −164 with DSP, the same as dense, with the actor pruned to
# 90 of its 512 neurons and each critic to about 460.
SAC_DSP = DSPHParams(lam=1e-4, beta=0.05, prune_start=0.2, prune_end=0.5, prune_every=100, reg_end=1.0)


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Static configuration: everything that fixes shapes or the program's structure."""
    env_id: str = "Pendulum-v1"
    env_config: str = ""          # JSON object passed to a gymnasium env's ``config`` (highway-env)
    env_workers: int | None = None  # host-env worker processes: None = one per core, 0 = in-process
    num_envs: int = 1
    total_timesteps: int = 20_000
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 1_000
    updates_per_iteration: int = 1  # gradient steps per iteration (one step of every env)
    hidden_sizes: tuple = (256, 256)
    critic_hidden_sizes: tuple | None = None  # None: the actor's hidden_sizes
    activation: str = "relu"
    eval_episodes: int = 10

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.num_envs

    @property
    def critic_sizes(self) -> tuple:
        """The critics' hidden widths (the actor's unless ``critic_hidden_sizes`` is set)."""
        return tuple(self.hidden_sizes if self.critic_hidden_sizes is None else self.critic_hidden_sizes)

    def validate(self) -> None:
        """Raises ConfigError naming the first bad field; builds nothing."""
        check_positive(self, ("num_envs", "buffer_size", "batch_size", "updates_per_iteration", "eval_episodes"))
        check_replay(self)
        check_networks(self, {"hidden_sizes": self.hidden_sizes, "critic_hidden_sizes": self.critic_sizes})
        check_action_space(self, "SAC", discrete=False, instead="--algo ppo or dqn for discrete actions")


@struct.dataclass
class SACHParams:
    """Sweepable SAC hyperparameters (array leaves) and the DSP ones of actor and critics."""
    lr: float = hparam(3e-4, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = hparam(0.99, low=0.0, high=1.0, help="discount γ")
    tau: float = hparam(0.005, low=0.0, high=1.0, low_open=True,
                        help="target update rate: every iteration target ← τ·online + (1 − τ)·target")
    init_alpha: float = hparam(1.0, low=0.0, low_open=True, help="SAC's initial temperature α")
    target_entropy_scale: float = hparam(1.0, low=0.0,
                                         help="SAC's target entropy is −scale · (action dimensions)")
    prune_critic: int = hparam(1, choices=PRUNE_CRITIC_NAMES,
                               help="regularize and prune SAC's critics too (on, the default: each with "
                                    "its own mask; off: they stay dense)")
    dsp: DSPHParams = struct.field(default_factory=lambda: SAC_DSP)

    def validate(self) -> None:
        validate_fields(self)
        self.dsp.validate()


def network_dsp_hparams(hp: SACHParams) -> dict:
    """DSP hyperparameters by network: the actor's are ``hp.dsp``; the critics' too, or, with
    ``prune_critic`` off, the dense baseline's (no penalty, no pruning)."""
    off = hp.prune_critic == PRUNE_CRITIC_NAMES.index("off")
    critic = hp.dsp.replace(lam=jnp.where(off, 0.0, hp.dsp.lam),
                            pruning=jnp.where(off, NO_PRUNING, hp.dsp.pruning))
    return {"actor": hp.dsp, "q1": critic, "q2": critic}


def rescale(action, action_space: ActionSpace):
    """An action in ``[-1, 1]`` mapped linearly onto the box ``[low, high]``."""
    low = jnp.asarray(action_space.low, jnp.float32)
    high = jnp.asarray(action_space.high, jnp.float32)
    return low + 0.5 * (action + 1.0) * (high - low)


def policy_distribution(outputs) -> distrax.Distribution:
    """π(·|s) in ``[-1, 1]`` from the actor's ``outputs`` (batch, 2 · dims): ``tanh(x)``, ``x`` a
    diagonal Gaussian with mean ``outputs[..., :dims]`` and log std ``outputs[..., dims:]``
    tanh-rescaled into ``LOG_STD_RANGE``."""
    mean, raw = jnp.split(outputs, 2, axis=-1)
    lo, hi = LOG_STD_RANGE
    log_std = lo + 0.5 * (hi - lo) * (jnp.tanh(raw) + 1.0)
    return distrax.Transformed(distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)),
                               distrax.Block(distrax.Tanh(), 1))


def greedy_action(outputs, action_space: ActionSpace):
    """The deterministic action of the actor's ``outputs``: ``rescale(tanh(mean))``, the mean
    being the first ``dims`` outputs."""
    return rescale(jnp.tanh(outputs[..., :action_space.size]), action_space)


def critic_targets(reward, terminated, next_q1, next_q2, next_log_prob, alpha, gamma):
    """``y = r + γ (1 − terminated) (min(Q1', Q2')(s', a') − α log π(a'|s'))`` (truncation is
    bootstrapped: only termination stops it)."""
    soft_value = jnp.minimum(next_q1, next_q2) - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * soft_value


def temperature_loss(log_alpha, log_prob, target_entropy):
    """``−mean(log α · (log π(a|s) + target entropy))``, ``log π`` held fixed."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


@struct.dataclass
class SACState:
    params: dict             # {"actor", "q1", "q2": MLP variables, "log_alpha": ()}
    target_params: dict      # {"q1", "q2"}: masked Polyak averages of the online critics
    dsp: DSPState            # Adam's state, masks and importance of actor and critics
    buffer: object           # flashbax TrajectoryBufferState of transitions
    env_state: object
    obs: jnp.ndarray
    key: jnp.ndarray
    diverged: jnp.ndarray


def models(config: SACConfig, action_space: ActionSpace) -> dict:
    """The actor (``2 · dims`` outputs: mean and log-std pre-activations) and the twin critics
    (one output, on ``concat(obs, action)``)."""
    critic = MLP(config.critic_sizes, 1, config.activation)
    return {"actor": MLP(config.hidden_sizes, 2 * action_space.size, config.activation, output_scale=0.01),
            "q1": critic, "q2": critic}


def networks(config: SACConfig) -> dict:
    """SAC's pruning declaration: the actor (the policy network) and each critic, each with its
    own mask; the target critics are masked with the online critics' masks (``DSP.masked``)."""
    return {"actor": MLP(config.hidden_sizes, 1, config.activation).chain(("actor", "params")),
            **{q: MLP(config.critic_sizes, 1, config.activation).chain((q, "params")) for q in CRITICS}}


def make_buffer(config: SACConfig):
    """The flashbax item buffer: ``buffer_size`` transitions, ``batch_size`` drawn uniformly."""
    return flashbax.make_item_buffer(max_length=config.buffer_size, min_length=1,
                                     sample_batch_size=config.batch_size, add_batches=True)


def make_train(config: SACConfig, progress_callback: Callable[[int], None] | None = None):
    """Returns ``train(key, hparams) -> (final SACState, per-iteration metrics, eval returns)``."""
    config.validate()
    env = config_vec_env(config, config.num_envs)
    space = env.action_space
    nets = models(config, space)
    buffer = make_buffer(config)
    n_iter = config.num_iterations
    start_iteration = config.learning_starts // config.num_envs

    def actor_outputs(params, obs):
        return nets["actor"].apply(params["actor"], obs)

    def q_value(q, critic_params, obs, action):
        return nets[q].apply(critic_params, jnp.concatenate([obs, action], -1))[..., 0]

    def make_dsp(hp: SACHParams) -> DSP:
        return DSP(networks(config), optax.adam(hp.lr), network_dsp_hparams(hp), n_iter,
                   updates_per_iteration=config.updates_per_iteration, step_size=lambda _: hp.lr)

    def masked_target(dsp, target, params, dsp_state):
        """The target critics with the online critics' masks applied."""
        full = dsp.masked(dict(params, **target), dsp_state)
        return {q: full[q] for q in CRITICS}

    def init(key, hp: SACHParams) -> SACState:
        k_actor, k_q1, k_q2, k_dsp, k_env, key = jax.random.split(key, 6)
        obs, env_state = env.reset(k_env)
        action = jnp.zeros((config.num_envs, space.size), jnp.float32)
        obs_action = jnp.concatenate([obs, action], -1)
        params = {"actor": nets["actor"].init(k_actor, obs), "q1": nets["q1"].init(k_q1, obs_action),
                  "q2": nets["q2"].init(k_q2, obs_action),
                  "log_alpha": jnp.log(jnp.asarray(hp.init_alpha, jnp.float32))}
        item = dict(obs=obs[0], action=action[0], reward=jnp.zeros((), jnp.float32),
                    next_obs=obs[0], terminated=jnp.zeros((), bool))
        return SACState(params, {q: params[q] for q in CRITICS}, make_dsp(hp).init(k_dsp, params),
                        buffer.init(item), env_state, obs, key, jnp.array(False))

    def loss_fn(params, batch, target_params, key, hp):
        """The SAC losses summed (actor, critics, temperature); DSP adds its penalty itself."""
        return sac_losses(params, batch, target_params, key, hp, actor_outputs, q_value, space.size)

    def gradient_step(carry, key_and_step, hp, iteration):
        state = carry
        key, step = key_and_step
        k_batch, k_loss = jax.random.split(key)
        batch = buffer.sample(state.buffer, k_batch).experience
        dsp = make_dsp(hp)
        (loss, aux), grads, taps = dsp.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, state.target_params, k_loss, hp)
        params, dsp_state, info = dsp.step(state.dsp, state.params, grads, taps,
                                           dsp.update_index(iteration, step))
        return state.replace(params=params, dsp=dsp_state), dict(aux, **info, loss=loss + info["penalty"])

    def learn(state, key, hp, iteration):
        state, losses = jax.lax.scan(
            lambda s, k: gradient_step(s, k, hp, iteration), state,
            (jax.random.split(key, config.updates_per_iteration), jnp.arange(config.updates_per_iteration)))
        return state, jax.tree.map(jnp.mean, losses)

    def iteration_step(state: SACState, iteration, hp: SACHParams):
        if progress_callback is not None:
            jax.debug.callback(progress_callback, iteration)
        key, k_random, k_action, k_env, k_learn = jax.random.split(state.key, 5)
        sampled = policy_distribution(actor_outputs(state.params, state.obs)).sample(seed=k_action)
        uniform = jax.random.uniform(k_random, sampled.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(iteration < start_iteration, uniform, sampled)
        next_obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, state.env_state, rescale(action, space))
        buffer_state = buffer.add(state.buffer, dict(
            obs=state.obs, action=action, reward=reward.astype(jnp.float32),
            next_obs=info["final_observation"], terminated=terminated))
        new = state.replace(buffer=buffer_state, env_state=env_state, obs=next_obs, key=key)

        shapes = jax.eval_shape(lambda s: learn(s, k_learn, hp, iteration)[1], new)
        zero_losses = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        new, losses = jax.lax.cond(iteration >= start_iteration,
                                   lambda s: learn(s, k_learn, hp, iteration),
                                   lambda s: (s, zero_losses), new)
        dsp = make_dsp(hp)
        target = jax.tree.map(lambda t, p: hp.tau * p + (1.0 - hp.tau) * t,
                              new.target_params, {q: new.params[q] for q in CRITICS})
        target = masked_target(dsp, target, new.params, new.dsp)

        diverged = state.diverged | ~all_finite(losses["loss"], new.params)
        updated = new.replace(target_params=target, diverged=diverged)
        next_state = keep_unless_diverged(diverged, state.replace(
            diverged=diverged, buffer=buffer_state, env_state=env_state, obs=next_obs, key=key), updated)
        metrics = dict(timesteps=(iteration + 1) * config.num_envs, **episode_metrics(info),
                       diverged=diverged, **losses)
        metrics.update(dsp.metrics(next_state.params, next_state.dsp))
        return next_state, metrics

    evaluate = make_greedy_evaluate(config, actor_outputs, space,
                                    greedy=lambda outputs: greedy_action(outputs, space))
    return make_scan_train(init, iteration_step, evaluate, n_iter, make_env_restart(env))


def sac_losses(params, batch, target_params, key, hp: SACHParams, actor_outputs, q_value, dims: int):
    """``(actor + critic + temperature loss, aux)`` on a batch of transitions (actions in
    ``[-1, 1]``), with stop-gradients so that each loss trains only its own part of ``params``:

    - actor: ``mean(α log π(ã|s) − min(Q1, Q2)(s, ã))``, ``ã ~ π(s)``, α and the critics fixed;
    - critics: ``0.5 · mean((Q1(s, a) − y)²) + 0.5 · mean((Q2(s, a) − y)²)``, ``y`` of
      ``critic_targets`` (``a' ~ π(s')``, the target critics; fixed);
    - temperature: ``temperature_loss`` on ``log α`` with the target entropy ``−scale · dims``.

    The order of the calls is the taps' (see the module docstring): the actor on ``s`` first, then
    the critics on ``(s, a)``.
    """
    sg = jax.lax.stop_gradient
    k_actor, k_next = jax.random.split(key)
    log_alpha = params["log_alpha"]
    alpha = sg(jnp.exp(log_alpha))
    fixed = sg({q: params[q] for q in CRITICS})

    pi = policy_distribution(actor_outputs(params, batch["obs"]))
    new_action, log_prob = pi.sample_and_log_prob(seed=k_actor)
    q_new = jnp.minimum(q_value("q1", fixed["q1"], batch["obs"], new_action),
                        q_value("q2", fixed["q2"], batch["obs"], new_action))
    actor_loss = jnp.mean(alpha * log_prob - q_new)

    q1 = q_value("q1", params["q1"], batch["obs"], batch["action"])
    q2 = q_value("q2", params["q2"], batch["obs"], batch["action"])
    next_pi = policy_distribution(actor_outputs(sg({"actor": params["actor"]}), batch["next_obs"]))
    next_action, next_log_prob = next_pi.sample_and_log_prob(seed=k_next)
    y = sg(critic_targets(batch["reward"], batch["terminated"],
                          q_value("q1", target_params["q1"], batch["next_obs"], next_action),
                          q_value("q2", target_params["q2"], batch["next_obs"], next_action),
                          next_log_prob, alpha, hp.gamma))
    critic_loss = 0.5 * jnp.mean((q1 - y) ** 2) + 0.5 * jnp.mean((q2 - y) ** 2)

    alpha_loss = temperature_loss(log_alpha, log_prob, -hp.target_entropy_scale * dims)
    loss = actor_loss + critic_loss + alpha_loss
    return loss, dict(actor_loss=actor_loss, critic_loss=critic_loss, alpha_loss=alpha_loss,
                      alpha=jnp.exp(log_alpha), entropy=-jnp.mean(log_prob), q_mean=jnp.mean(q1))


def greedy_policy(activation: str, action_space: ActionSpace):
    """``policy(actor layers, obs) -> actions`` of a (masked or compact) actor's layers: the
    actor outputs ``2 · dims`` numbers (mean, log-std pre-activations); the action is
    ``rescale(tanh(mean))``."""
    return lambda layers, obs: greedy_action(chain_apply(layers, obs, activation)[0], action_space)
