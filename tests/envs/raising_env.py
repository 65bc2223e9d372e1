"""A gymnasium environment that raises on a chosen step, for the bridge's error tests.

Made by id ``raising_env:Raising-v0`` (gymnasium imports this module first, in the worker too).
"""

import gymnasium as gym
import numpy as np


class RaisingEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.config = {"raise_at_step": 3, "raise_in_env_with_seed": None, **(config or {})}
        self.t = 0
        self.seed_used = None

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.seed_used = seed
        self.t = 0
        return np.full(3, 0.5, np.float32), {}

    def step(self, action):
        self.t += 1
        target = self.config["raise_in_env_with_seed"]
        if self.t == self.config["raise_at_step"] and (target is None or target == self.seed_used):
            raise ValueError("the simulator broke")
        return np.full(3, 0.1 * self.t, np.float32), 1.0, False, False, {}


gym.register("Raising-v0", entry_point=RaisingEnv, max_episode_steps=50)
