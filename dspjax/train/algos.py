"""The agents the command line and run directories know, each described once.

An ``Algo`` names an agent's static config and hyperparameter classes, its ``make_train``, its
pruning declaration (``declare(config) -> {name: DenseChain}``, the policy network first), a greedy
policy of that network's layers (and a sampling one for a stochastic actor), and the static
options the CLI exposes as ``--flag -> config field``. Everything above ``dspjax.agents`` (run
directories, reports, evaluation, videos) reads an agent through this table, never by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from dspjax.agents import dqn, ppo, sac
from dspjax.agents.loop import greedy_policy
from dspjax.envs import ActionSpace, make_vec_env
from dspjax.hparams import ConfigError
from dspjax.policy_file import MEAN_ACTION, SQUASHED_MEAN_AND_LOG_STD


@dataclasses.dataclass(frozen=True)
class Option:
    """A static config field set from the command line; ``kind`` says how its text is read:
    ``int``, ``widths`` (comma-separated ints), ``str`` or ``workers`` (an int, or none)."""
    flag: str
    field: str
    kind: str
    help: str


COMMON_OPTIONS = (
    Option("--env", "env_id", "str", "environment id: gymnax, a registered gymnasium id "
           "(highway-fast-v0, merge-v1, roundabout-v1, intersection-v1, LunarLander-v3, ...) "
           "or gymnasium:<id>"),
    Option("--env-config", "env_config", "str",
           "JSON object (or the path of a .json file) passed to a gymnasium env's config"),
    Option("--env-workers", "env_workers", "workers",
           "worker processes stepping a gymnasium env (default one per core; 0 = in-process)"),
    Option("--steps", "total_timesteps", "int", "environment steps per member"),
    Option("--num-envs", "num_envs", "int", "parallel environments per member"),
    Option("--hidden", "hidden_sizes", "widths", "hidden widths, e.g. 256,256"),
    Option("--activation", "activation", "str", "hidden activation: tanh or relu"),
    Option("--eval-episodes", "eval_episodes", "int", "greedy evaluation episodes at the end"),
)


def action_space_of(config) -> ActionSpace:
    """The action space of an agent config's environment (a probe: nothing is stepped)."""
    return make_vec_env(config.env_id, 1, config.env_config, 0).action_space


@dataclasses.dataclass(frozen=True)
class Algo:
    """One agent as the layers above ``agents`` see it."""
    name: str
    config_cls: type
    hparams_cls: type
    make_train: Callable
    declare: Callable                # config -> {name: DenseChain}, the policy network first
    greedy_policy: Callable          # (activation, action space) -> policy(layers of the policy network, obs)
    options: tuple[Option, ...]      # static options of the CLI, the common ones included
    sampled_policy: Callable | None = None  # (activation, action space) -> policy(layers, obs, key); None: greedy only
    box_outputs: str = MEAN_ACTION   # what the policy network outputs for box actions (policy_file)
    deployed_params: Callable | None = None  # (config, one member's final state) -> params as deployed
    box_config: dict | None = None   # config fields whose defaults differ for box actions
    box_hparams: object | None = None  # the default hyperparameters for box actions; None: hparams_cls()

    @property
    def networks(self) -> tuple[str, ...]:
        """The networks with their own masks, the policy network first."""
        return tuple(n for n, c in self.declare(self.config_cls()).items() if c.mask_of is None)

    @property
    def policy_network(self) -> str:
        return self.networks[0]

    def evaluation_policy(self, kind: str, config) -> Callable:
        """``policy(params, obs, key) -> actions`` of the policy network of an agent with
        ``config``: ``greedy`` (the key is unused) or ``sample``; ConfigError for ``sample`` when
        the agent offers none (``sampled_policy``) or the actions are a box (the Gaussian's σ is
        not part of the policy network)."""
        activation, action_space = config.activation, action_space_of(config)
        if kind == "sample":
            if self.sampled_policy is None:
                raise ConfigError(f"policy=sample: {self.name} is evaluated by its greedy action; "
                                  "sampling is offered for ppo's discrete actions")
            if not action_space.is_discrete:
                raise ConfigError(f"policy=sample: for discrete actions; these are {action_space}, "
                                  "whose greedy policy (the mean action) is the one that ships")
            return self.sampled_policy(activation, action_space)
        greedy = self.greedy_policy(activation, action_space)
        return lambda params, obs, _: greedy(params, obs)

    def defaults(self, **fields):
        """``(config, hyperparameters)`` for ``config(**fields)``'s environment: where the agent has
        its own for box actions and the environment's actions are a box (probed once), the fields
        of ``box_config`` that ``fields`` leave unset take their box values and the
        hyperparameters are ``box_hparams``; else ``config(**fields)`` and ``hparams_cls()``."""
        config = self.config(**fields)
        if (self.box_config or self.box_hparams is not None) and not action_space_of(config).is_discrete:
            return (self.config(**{**(self.box_config or {}), **fields}),
                    self.hparams_cls() if self.box_hparams is None else self.box_hparams)
        return config, self.hparams_cls()

    def deployed(self, config, final_state) -> dict:
        """The parameters of a population's final state (members on the leading axis) as its
        networks are deployed and saved: ``deployed_params`` where the agent has one (PPO folds its
        observation normalization into the first layers), else the state's own."""
        if self.deployed_params is None:
            return final_state.params
        return jax.vmap(lambda state: self.deployed_params(config, state))(final_state)

    def config(self, **fields):
        """The config class with ``fields`` set (lists become tuples, unknown keys are refused)."""
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: not a config field of {self.name}")
        return self.config_cls(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in fields.items()})

    def config_from_dict(self, saved: dict):
        """The config of a run directory's ``config.json`` (fields it does not know are dropped,
        so a run written by an older dspjax still loads)."""
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        return self.config(**{k: v for k, v in saved.items() if k in known})


ALGOS = {
    "ppo": Algo("ppo", ppo.PPOConfig, ppo.PPOHParams, ppo.make_train, ppo.networks,
                greedy_policy, COMMON_OPTIONS + (
                    Option("--num-steps", "num_steps", "int", "steps per env per rollout"),
                    Option("--epochs", "update_epochs", "int", "epochs over each rollout"),
                    Option("--minibatches", "num_minibatches", "int", "minibatches per epoch"),
                    Option("--critic-hidden", "critic_hidden_sizes", "widths",
                           "critic hidden widths (default: the actor's --hidden)"),
                    Option("--reward-scaling", "reward_scaling", "str",
                           "divide rewards by the running std of the discounted return: on, off, "
                           "or auto (on for box actions)"),
                    Option("--obs-normalization", "obs_normalization", "str",
                           "observations to (x - running mean) / running std, folded into the first "
                           "layers of the saved networks: on, off, or auto (on for box actions)"),
                ), sampled_policy=ppo.sampled_policy, deployed_params=ppo.deployed_params,
                box_config=ppo.BOX_CONFIG, box_hparams=ppo.PPO_BOX),
    "dqn": Algo("dqn", dqn.DQNConfig, dqn.DQNHParams, dqn.make_train, dqn.networks, greedy_policy,
                COMMON_OPTIONS + (
                    Option("--buffer-size", "buffer_size", "int", "replay buffer capacity"),
                    Option("--batch-size", "batch_size", "int", "transitions per gradient step"),
                    Option("--learning-starts", "learning_starts", "int",
                           "environment steps before the first gradient step"),
                    Option("--train-every", "train_every", "int",
                           "iterations (steps of every env) between gradient steps"),
                    Option("--target-update-every", "target_update_every", "int",
                           "iterations between target network refreshes"),
                )),
    "sac": Algo("sac", sac.SACConfig, sac.SACHParams, sac.make_train, sac.networks, sac.greedy_policy,
                COMMON_OPTIONS + (
                    Option("--buffer-size", "buffer_size", "int", "replay buffer capacity"),
                    Option("--batch-size", "batch_size", "int", "transitions per gradient step"),
                    Option("--learning-starts", "learning_starts", "int",
                           "environment steps before the first gradient step"),
                    Option("--updates-per-iteration", "updates_per_iteration", "int",
                           "gradient steps per iteration (one step of every env)"),
                    Option("--critic-hidden", "critic_hidden_sizes", "widths",
                           "critic hidden widths (default: the actor's --hidden)"),
                ), box_outputs=SQUASHED_MEAN_AND_LOG_STD),
}


def get_algo(name: str) -> Algo:
    """The registered agent ``name``; ConfigError naming the known ones otherwise."""
    if name not in ALGOS:
        raise ConfigError(f"algo={name!r}: must be one of {', '.join(ALGOS)}")
    return ALGOS[name]
