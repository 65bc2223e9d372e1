"""Environments behind one batched interface: gymnax (pure JAX) today, host-bridged gymnasium
environments next. ``make_vec_env(env_id, num_envs)`` picks the right one or refuses the id."""

from dspjax.envs.evaluate import evaluate_policy
from dspjax.envs.gymnax_env import GymnaxVecEnv, VecEnvState, gymnax_env_ids


def make_vec_env(env_id: str, num_envs: int):
    """A batched environment for ``env_id``; raises ConfigError naming the known ids."""
    return GymnaxVecEnv(env_id, num_envs)


def known_env_ids() -> tuple[str, ...]:
    return gymnax_env_ids()
