"""PPO with DSP, end to end under ``jit``, for discrete and box actions.

``make_train(config)`` returns a pure ``train(key, hparams)``: rollout, GAE and the clipped
objective inside ``lax.scan``, each optimiser step one ``DSP.step`` (penalty, importance, masking,
pruning). Separate actor and critic MLPs (``networks``) are each pruned with their own mask
(METHOD.md §1). ``jit(vmap(train))`` trains a population of hyperparameters and seeds in one
program (``dspjax.train.population``).

The policy (``policy_distribution``) is a categorical over the actor's outputs for discrete
actions, and for box actions a diagonal Gaussian whose mean is the actor's output and whose log
standard deviation is one state-independent parameter per action dimension (``params["log_std"]``,
not pruned: it is no neuron); a sampled box action is clipped to the bounds on its way to the
environment, and its log-probability is that of the unclipped sample. The greedy action is the
argmax, or the mean clipped to the bounds.

With ``pruning=none`` and ``lam=0`` the same code is the dense baseline; ``importance=none``,
``pruning=unstructured`` and ``importance=random`` give the other baselines of §7.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

from dspjax.agents.config_checks import check_networks, check_positive
from dspjax.agents.loop import (
    all_finite,
    episode_metrics,
    keep_unless_diverged,
    make_env_restart,
    make_greedy_evaluate,
    make_scan_train,
)
from dspjax.agents.normalization import RewardScaler, RunningMeanStd, folded_first_layer, normalize
from dspjax.envs import ActionSpace, config_vec_env
from dspjax.hparams import ConfigError, hparam, validate_fields
from dspjax.networks import MLP
from dspjax.pruning import (
    DSP,
    NO_PRUNING,
    DSPHParams,
    DSPState,
    chain_apply,
    chain_layers,
    with_chain_layers,
)

PRUNE_CRITIC_NAMES = ("off", "on")
AUTO_ON_OFF = ("auto", "on", "off")  # reward_scaling, obs_normalization: auto = on for box actions


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static configuration: everything that fixes shapes or the program's structure."""
    env_id: str = "CartPole-v1"
    env_config: str = ""          # JSON object passed to a gymnasium env's ``config`` (highway-env)
    env_workers: int | None = None  # host-env worker processes: None = one per core, 0 = in-process
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple = (256, 256)
    critic_hidden_sizes: tuple | None = None  # None: the actor's hidden_sizes
    activation: str = "tanh"
    anneal_lr: bool = True
    eval_episodes: int = 10
    reward_scaling: str = "auto"  # rewards / std of the discounted return: on, off, auto (on for box actions)
    obs_normalization: str = "auto"  # obs to (x − running mean) / std: on, off, auto (on for box actions)

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)

    @property
    def critic_sizes(self) -> tuple:
        """The critic's hidden widths (the actor's unless ``critic_hidden_sizes`` is set)."""
        return tuple(self.hidden_sizes if self.critic_hidden_sizes is None else self.critic_hidden_sizes)

    @property
    def minibatch_size(self) -> int:
        return self.num_envs * self.num_steps // self.num_minibatches

    def validate(self) -> None:
        """Raises ConfigError naming the first bad field; builds nothing."""
        check_positive(self, ("num_envs", "num_steps", "update_epochs", "num_minibatches", "eval_episodes"))
        if self.num_iterations < 1:
            raise ConfigError(f"total_timesteps={self.total_timesteps}: must be at least "
                              f"num_envs * num_steps = {self.num_envs * self.num_steps}")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ConfigError(f"num_minibatches={self.num_minibatches}: must divide num_envs * "
                              f"num_steps = {self.num_envs * self.num_steps}")
        check_networks(self, {"hidden_sizes": self.hidden_sizes, "critic_hidden_sizes": self.critic_sizes})
        for name in ("reward_scaling", "obs_normalization"):
            if getattr(self, name) not in AUTO_ON_OFF:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be one of {', '.join(AUTO_ON_OFF)}")
        config_vec_env(self, 1)


@struct.dataclass
class PPOHParams:
    """Sweepable PPO hyperparameters (array leaves) and the DSP ones shared by actor and critic."""
    lr: float = hparam(2.5e-4, low=0.0, low_open=True, help="Adam learning rate")
    gamma: float = hparam(0.99, low=0.0, high=1.0, help="discount γ")
    gae_lambda: float = hparam(0.95, low=0.0, high=1.0, help="GAE λ")
    clip_eps: float = hparam(0.2, low=0.0, low_open=True, help="PPO clip ε")
    ent_coef: float = hparam(0.01, low=0.0, help="entropy bonus coefficient")
    vf_coef: float = hparam(0.5, low=0.0, help="value loss coefficient")
    max_grad_norm: float = hparam(0.5, low=0.0, low_open=True, help="global gradient-norm clip")
    prune_critic: int = hparam(0, choices=PRUNE_CRITIC_NAMES,
                               help="regularize and prune the critic(s) too, each with its own mask "
                                    "(ppo's default off: only the deployed actor is pruned; sac's on)")
    dsp: DSPHParams = struct.field(default_factory=DSPHParams)

    def validate(self) -> None:
        validate_fields(self)
        self.dsp.validate()


# PPO's defaults for box actions (``Algo.defaults`` takes ``BOX_CONFIG`` and ``PPO_BOX`` when the
# actions are a box; a flag still wins). PPO's own: CleanRL's ppo_continuous_action (2,048 steps per
# rollout, here 8 envs x 256, 10 epochs of 32 minibatches, lr 3e-4, no entropy bonus). DSP's: a
# penalty ten times the discrete one over a later window (λ 3.2e-2 per iteration, pruning between
# 20 % and 50 % of training, the penalty ramping up to 20 % and off from 50 %). Chosen on Hopper-v5
# among 10 variants, one seed each (experiments/hopper/box_defaults_study): the discrete defaults
# left 376 of 512 actor neurons; of the variants that removed > 80 %, this one had the best
# training return. Its 5-seed results: experiments/hopper/results.md, experiments/walker2d/results.md.
BOX_CONFIG = {"num_envs": 8, "num_steps": 256, "update_epochs": 10, "num_minibatches": 32}
PPO_BOX_DSP = DSPHParams(lam=3.2e-2, prune_start=0.2, prune_end=0.5, reg_warmup=0.2, reg_end=0.5)
PPO_BOX = PPOHParams(lr=3e-4, ent_coef=0.0, dsp=PPO_BOX_DSP)


def network_dsp_hparams(hp: PPOHParams) -> dict:
    """DSP hyperparameters by network: the actor's are ``hp.dsp``; the critic's too, or, with
    ``prune_critic`` off, the dense baseline's (no penalty, no pruning)."""
    off = hp.prune_critic == PRUNE_CRITIC_NAMES.index("off")
    critic = hp.dsp.replace(lam=jnp.where(off, 0.0, hp.dsp.lam),
                            pruning=jnp.where(off, NO_PRUNING, hp.dsp.pruning))
    return {"actor": hp.dsp, "critic": critic}


@struct.dataclass
class PPOState:
    params: dict             # {"actor": MLP variables, "critic": MLP variables[, "log_std": (dims,)]}
    dsp: DSPState            # Adam's state, masks and importance of actor and critic
    env_state: object
    obs: jnp.ndarray
    key: jnp.ndarray
    diverged: jnp.ndarray    # bool: a non-finite loss or parameter was met; updates stopped
    reward_scaler: RewardScaler  # running discounted returns and their statistics (reward_scaling)
    obs_stats: RunningMeanStd    # running mean and variance of the observations (obs_normalization)


def generalized_advantages(rewards, values, dones, truncated, final_values, last_value, gamma,
                           gae_lambda):
    """GAE over a rollout of shape (steps, envs); returns ``(advantages, value targets)``.

    An episode that ends at step t is not bootstrapped from the next step's value (that belongs to
    the next episode); a *truncated* one is bootstrapped from the value of its final observation,
    ``r_t + γ V(s_final)``, a terminated one is not.
    """
    def step(carry, t):
        advantage, next_value = carry
        reward, value, done, trunc, final_value = t
        nonterminal = 1.0 - done.astype(jnp.float32)
        reward = reward + gamma * trunc * final_value
        delta = reward + gamma * next_value * nonterminal - value
        advantage = delta + gamma * gae_lambda * nonterminal * advantage
        return (advantage, value), advantage
    _, advantages = jax.lax.scan(step, (jnp.zeros_like(last_value), last_value),
                                 (rewards, values, dones, truncated, final_values), reverse=True)
    return advantages, advantages + values


def actor_critic(config: PPOConfig, action_space: ActionSpace) -> dict:
    """The actor and critic MLPs by name (the actor's last layer starts small, as usual in PPO):
    the actor outputs the action scores (discrete) or the mean action (box)."""
    return {"actor": MLP(config.hidden_sizes, action_space.size, config.activation, output_scale=0.01),
            "critic": MLP(config.critic_sizes, 1, config.activation, output_scale=1.0)}


def policy_distribution(action_space: ActionSpace, outputs, log_std=None) -> distrax.Distribution:
    """π(·|s) from the actor's ``outputs`` (batch, size): ``Categorical`` over the logits, or a
    diagonal Gaussian with mean ``outputs`` and standard deviation ``exp(log_std)`` (one per
    dimension, the same in every state)."""
    if action_space.is_discrete:
        return distrax.Categorical(logits=outputs)
    return distrax.MultivariateNormalDiag(outputs, jnp.broadcast_to(jnp.exp(log_std), outputs.shape))


def networks(config: PPOConfig) -> dict:
    """PPO's pruning declaration: actor and critic, each with its own mask (the actor first: it is
    the policy network)."""
    return {name: MLP(sizes, 1, config.activation).chain((name, "params"))
            for name, sizes in (("actor", config.hidden_sizes), ("critic", config.critic_sizes))}


def make_train(config: PPOConfig, progress_callback: Callable[[int], None] | None = None):
    """Returns ``train(key, hparams) -> (final PPOState, per-iteration metrics, eval returns)``.

    ``progress_callback(iteration)`` is called from inside the compiled loop once per iteration
    (once per population, not per member, under ``vmap``).
    """
    config.validate()
    env = config_vec_env(config, config.num_envs)
    space = env.action_space
    enabled = lambda option: option == "on" or (option == "auto" and not space.is_discrete)
    scale_rewards, normalize_obs = enabled(config.reward_scaling), enabled(config.obs_normalization)
    models = actor_critic(config, space)
    n_iter = config.num_iterations
    n_grad_steps = n_iter * config.update_epochs * config.num_minibatches

    def policy_logits(params, obs):
        return models["actor"].apply(params["actor"], obs)

    def value_of(params, obs):
        return models["critic"].apply(params["critic"], obs)[..., 0]

    def observed(stats, obs):  # what the networks see: normalized observations, or the raw ones
        return normalize(stats, obs) if normalize_obs else obs

    def policy(params, obs) -> distrax.Distribution:
        return policy_distribution(space, policy_logits(params, obs), params.get("log_std"))

    def learning_rate(hp, count):
        frac = 1.0 - count / n_grad_steps if config.anneal_lr else 1.0
        return hp.lr * frac

    def make_dsp(hp) -> DSP:
        optimizer = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm),
                                optax.scale_by_adam(eps=1e-5),
                                optax.scale_by_schedule(lambda count: -learning_rate(hp, count)))
        return DSP(networks(config), optimizer, network_dsp_hparams(hp), n_iter,
                   updates_per_iteration=config.update_epochs * config.num_minibatches,
                   step_size=lambda opt_state: learning_rate(hp, opt_state[-1].count - 1))

    def init(key, hp: PPOHParams) -> PPOState:
        k_actor, k_critic, k_dsp, _, k_env, key = jax.random.split(key, 6)
        obs, env_state = env.reset(k_env)
        params = {"actor": models["actor"].init(k_actor, obs),
                  "critic": models["critic"].init(k_critic, obs)}
        if not space.is_discrete:  # σ = 1 at the start
            params["log_std"] = jnp.zeros((space.size,), jnp.float32)
        return PPOState(params, make_dsp(hp).init(k_dsp, params), env_state, obs, key,
                        jnp.array(False), RewardScaler.create(config.num_envs),
                        RunningMeanStd.create((env.observation_size,)))

    def rollout(state: PPOState, gamma):
        def step(carry, _):
            env_state, raw_obs, key, scaler, stats = carry
            key, k_act, k_env = jax.random.split(key, 3)
            if normalize_obs:  # every observation enters the statistics once, when it is acted on
                stats = stats.update(raw_obs)
            obs = observed(stats, raw_obs)
            pi = policy(state.params, obs)
            value = value_of(state.params, obs)
            action = pi.sample(seed=k_act)
            log_prob = pi.log_prob(action)
            next_obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, space.clip(action))
            # A truncated episode is cut but bootstrapped from its final observation's value.
            final_value = value_of(state.params, observed(stats, info["final_observation"]))
            if scale_rewards:
                scaler, reward = scaler.scale(reward, terminated | truncated, gamma)
            transition = dict(obs=obs, action=action, reward=reward, done=terminated | truncated,
                              truncated=truncated, final_value=final_value,
                              log_prob=log_prob, value=value, info=info)
            return (env_state, next_obs, key, scaler, stats), transition
        (env_state, obs, key, scaler, stats), traj = jax.lax.scan(
            step, (state.env_state, state.obs, state.key, state.reward_scaler, state.obs_stats), None,
            config.num_steps)
        return state.replace(env_state=env_state, obs=obs, key=key, reward_scaler=scaler, obs_stats=stats), traj

    def loss_fn(params, batch, hp):
        """PPO's loss (clipped objective, value loss, entropy); DSP adds its penalty itself."""
        pi = policy(params, batch["obs"])
        value = value_of(params, batch["obs"])
        log_prob = pi.log_prob(batch["action"])
        ratio = jnp.exp(log_prob - batch["log_prob"])
        adv = batch["advantage"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - hp.clip_eps,
                                                                1 + hp.clip_eps) * adv))
        v_clipped = batch["value"] + jnp.clip(value - batch["value"], -hp.clip_eps, hp.clip_eps)
        v_loss = 0.5 * jnp.mean(jnp.maximum((value - batch["target"]) ** 2,
                                            (v_clipped - batch["target"]) ** 2))
        entropy = jnp.mean(pi.entropy())
        rl_loss = pg_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
        return rl_loss, dict(pg_loss=pg_loss, v_loss=v_loss, entropy=entropy)

    def update_minibatch(carry, batch, hp, update):
        params, dsp_state = carry
        dsp = make_dsp(hp)
        (rl_loss, aux), grads, taps = dsp.value_and_grad(loss_fn, has_aux=True)(params, batch, hp)
        params, dsp_state, info = dsp.step(dsp_state, params, grads, taps, update)
        return (params, dsp_state), dict(aux, **info, loss=rl_loss + info["penalty"])

    def update_epoch(carry, key_and_epoch, batch, hp, iteration):
        key, epoch = key_and_epoch
        n = config.num_envs * config.num_steps
        perm = jax.random.permutation(key, n)
        shuffled = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:])[perm], batch)
        minibatches = jax.tree.map(
            lambda x: x.reshape((config.num_minibatches, -1) + x.shape[1:]), shuffled)
        # The step index from scan counters, not from the (per-member) state: see DSP.step.
        update = lambda k: make_dsp(hp).update_index(iteration, epoch * config.num_minibatches + k)
        return jax.lax.scan(lambda c, b_k: update_minibatch(c, b_k[0], hp, update(b_k[1])), carry,
                            (minibatches, jnp.arange(config.num_minibatches)))

    def iteration_step(state: PPOState, iteration, hp: PPOHParams):
        if progress_callback is not None:
            jax.debug.callback(progress_callback, iteration)
        new, traj = rollout(state, hp.gamma)
        last_value = value_of(new.params, observed(new.obs_stats, new.obs))
        advantages, targets = generalized_advantages(
            traj["reward"], traj["value"], traj["done"], traj["truncated"], traj["final_value"],
            last_value, hp.gamma, hp.gae_lambda)
        batch = dict(obs=traj["obs"], action=traj["action"], log_prob=traj["log_prob"],
                     value=traj["value"], advantage=advantages, target=targets)
        key, k_epochs = jax.random.split(new.key)
        (params, dsp_state), losses = jax.lax.scan(
            lambda c, k: update_epoch(c, k, batch, hp, iteration), (new.params, new.dsp),
            (jax.random.split(k_epochs, config.update_epochs), jnp.arange(config.update_epochs)))

        losses = jax.tree.map(jnp.mean, losses)
        diverged = state.diverged | ~all_finite(losses["loss"], params)
        updated = new.replace(params=params, dsp=dsp_state, key=key, diverged=diverged)
        # A diverged member keeps its last finite networks; the population is never touched.
        next_state = keep_unless_diverged(diverged, state.replace(
            diverged=diverged, env_state=new.env_state, obs=new.obs, key=key,
            reward_scaler=new.reward_scaler, obs_stats=new.obs_stats), updated)
        metrics = dict(timesteps=(iteration + 1) * config.num_envs * config.num_steps,
                       **episode_metrics(traj["info"]), diverged=diverged, **losses)
        metrics.update(make_dsp(hp).metrics(next_state.params, next_state.dsp))
        return next_state, metrics

    greedy_evaluate = make_greedy_evaluate(config, policy_logits, space)

    def evaluate(state, key):  # the network that ships: the normalization folded in
        return greedy_evaluate(state.replace(params=deployed_params(config, state)), key)

    return make_scan_train(init, iteration_step, evaluate,
                           n_iter, make_env_restart(env))


def deployed_params(config: PPOConfig, state: PPOState) -> dict:
    """``state.params`` as the networks are deployed: the observation normalization folded into the
    first layer of the actor and of the critic, so that they take raw observations (the params
    themselves where the normalization is off). For one member's state; ``jax.vmap`` it over a
    population's."""
    params = state.params
    for chain in networks(config).values():
        layers = chain_layers(params, chain)
        params = with_chain_layers(params, chain, (folded_first_layer(layers[0], state.obs_stats),) + layers[1:])
    return params


def sampled_policy(activation: str, action_space: ActionSpace):
    """``policy(actor layers, obs, key) -> actions`` drawn from the softmax PPO trains, as opposed
    to its argmax: discrete actions only (a box policy's σ, ``params["log_std"]``, is not among
    the actor's layers; ``Algo.evaluation_policy`` refuses sampling there)."""
    return lambda layers, obs, key: policy_distribution(
        action_space, chain_apply(layers, obs, activation)[0]).sample(seed=key)
