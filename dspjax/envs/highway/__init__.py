"""highway-env's highway-v0 and highway-fast-v0 in pure JAX, step-exact in float64.

``reset(key, params)`` and ``step(key, state, action, params)`` (``env``); ``EnvParams`` for either
variant (``params``); ``from_highway_env`` imports a live highway-env scene. Modules, one rule each:
``road``, ``kinematics``, ``meta_action`` (ego), ``idm`` and ``mobil`` (others), ``collision``,
``simulation`` (frame order), ``observation``, ``reward``, ``reset``. See docs/highway.md.
"""

from dspjax.envs.highway.env import NUM_ACTIONS, observation, reset, step
from dspjax.envs.highway.params import ENV_PARAMS, EnvParams, highway_fast_v0_params, highway_v0_params
from dspjax.envs.highway.state import EnvState

__all__ = ["ENV_PARAMS", "NUM_ACTIONS", "EnvParams", "EnvState", "highway_fast_v0_params", "highway_v0_params",
           "observation", "reset", "step"]
