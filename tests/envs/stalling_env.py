"""A gymnasium environment whose worker stalls or dies on a chosen step, for the pool's tests of
dead and hung workers.

Made by id ``stalling_env:Stalling-v0`` (gymnasium imports this module first, in the worker too).
On step ``at_step`` of the env reset with seed ``in_env_with_seed`` (None: every env) it does
``then``: ``"sleep"`` for ``seconds`` (first writing a file named after its process id into
``marker_dir``, if given, so a test knows the step has begun), or ``"die"`` (SIGKILL to its own
process). Every step first sleeps ``step_seconds`` (default 0). ``hold_socket``: before
sleeping, fork a child that keeps the process's file descriptors (its socket to the pool among
them) open for ``seconds``, so the pool cannot see the death from its socket, only from the
process; the marker file holds the child's pid.
"""

import os
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np


class StallingEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.config = {"at_step": 2, "in_env_with_seed": None, "then": "sleep", "seconds": 600.0,
                       "marker_dir": None, "hold_socket": False, "step_seconds": 0.0,
                       **(config or {})}
        self.t = 0
        self.seed_used = None

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.seed_used = seed
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        c = self.config
        time.sleep(c["step_seconds"])
        if self.t == c["at_step"] and c["in_env_with_seed"] in (None, self.seed_used):
            if c["then"] == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            child = os.fork() if c["hold_socket"] else None
            if child == 0:  # the child: keep the inherited descriptors open, then leave
                time.sleep(c["seconds"])
                os._exit(0)
            if c["marker_dir"]:
                Path(c["marker_dir"], str(os.getpid())).write_text(str(child or ""))
            time.sleep(c["seconds"])
        return np.full(2, 0.01 * self.t, np.float32), 1.0, False, False, {}


gym.register("Stalling-v0", entry_point=StallingEnv, max_episode_steps=50)
