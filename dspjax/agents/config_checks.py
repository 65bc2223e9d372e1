"""The checks every agent config makes before anything is built: each raises ``ConfigError``
naming the field and what is allowed."""

from __future__ import annotations

from dspjax.envs import config_vec_env
from dspjax.hparams import ConfigError
from dspjax.pruning import ACTIVATIONS


def check_positive(config, names) -> None:
    """Every field in ``names`` is an integer >= 1."""
    for name in names:
        if int(getattr(config, name)) < 1:
            raise ConfigError(f"{name}={getattr(config, name)}: must be an integer >= 1")


def check_networks(config, widths: dict) -> None:
    """Every network's hidden widths (``{field name: widths}``) are one or more widths >= 1, and
    ``config.activation`` is known."""
    for name, sizes in widths.items():
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"{name}={sizes}: must be one or more widths >= 1")
    if config.activation not in ACTIVATIONS:
        raise ConfigError(f"activation={config.activation!r}: must be one of {', '.join(ACTIVATIONS)}")


def check_replay(config) -> None:
    """An off-policy agent's replay settings: ``learning_starts`` >= 0, at least one iteration,
    a buffer that holds one step of every environment."""
    if config.learning_starts < 0:
        raise ConfigError(f"learning_starts={config.learning_starts}: must be >= 0")
    if config.num_iterations < 1:
        raise ConfigError(f"total_timesteps={config.total_timesteps}: must be at least "
                          f"num_envs = {config.num_envs}")
    if config.buffer_size < config.num_envs:
        raise ConfigError(f"buffer_size={config.buffer_size}: must hold one step of every "
                          f"environment (>= num_envs = {config.num_envs})")


def check_action_space(config, algo: str, discrete: bool, instead: str) -> None:
    """The config's environment (made only to read its spaces) has the kind of actions ``algo``
    acts in; else ConfigError pointing to ``instead``."""
    space = config_vec_env(config, 1).action_space
    if space.is_discrete != discrete:
        raise ConfigError(f"env={config.env_id!r}: {algo} needs {'discrete' if discrete else 'box'} "
                          f"actions, and its actions are {space}; use {instead}")
