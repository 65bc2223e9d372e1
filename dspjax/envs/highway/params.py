"""Environment parameters of highway-v0 and highway-fast-v0 (spec §1).

``EnvParams`` mirrors highway-env's config keys. Keys that fix array shapes or the structure of the
computation (number of lanes and vehicles, simulation and policy frequencies, whether vehicles other
than the ego check collisions) are static; the rest are array leaves, so a batch of environments can
``vmap`` over them.
"""

from __future__ import annotations

import dataclasses
import math

from flax import struct


@struct.dataclass
class EnvParams:
    """highway-env's ``HighwayEnv`` config, with highway-v0's defaults (spec §1)."""
    lanes_count: int = struct.field(pytree_node=False, default=4)
    vehicles_count: int = struct.field(pytree_node=False, default=50)  # others, not counting the ego
    simulation_frequency: int = struct.field(pytree_node=False, default=15)
    policy_frequency: int = struct.field(pytree_node=False, default=1)
    # highway-fast-v0 sets check_collisions = False on every non-controlled vehicle (spec §1, §7).
    others_check_collisions: bool = struct.field(pytree_node=False, default=True)
    initial_lane_id: int = -1  # -1: None (random lane)
    duration: float = 40.0
    ego_spacing: float = 2.0
    vehicles_density: float = 1.0
    collision_reward: float = -1.0
    right_lane_reward: float = 0.1
    high_speed_reward: float = 0.4
    reward_speed_range: tuple[float, float] = (20.0, 30.0)
    normalize_reward: bool = True
    offroad_terminal: bool = False

    @property
    def num_vehicles(self) -> int:
        """Vehicles on the road: the ego (index 0) then the others (spec §3)."""
        return self.vehicles_count + 1

    @property
    def frames_per_step(self) -> int:
        """Simulation frames per policy step: ``simulation_frequency // policy_frequency`` (spec §7)."""
        return self.simulation_frequency // self.policy_frequency

    @property
    def dt(self) -> float:
        """Simulation time step ``1 / simulation_frequency`` (spec §7)."""
        return 1 / self.simulation_frequency

    @property
    def max_episode_steps(self) -> int:
        """Policy steps until truncation (``time >= duration``; spec §9), for the default duration."""
        return math.ceil(float(self.duration) * self.policy_frequency)


def highway_v0_params(**overrides) -> EnvParams:
    """highway-v0's config (spec §1), with config keys in ``overrides`` put over it."""
    return dataclasses.replace(EnvParams(), **overrides)


def highway_fast_v0_params(**overrides) -> EnvParams:
    """highway-fast-v0's config (spec §1): 5 Hz simulation, 3 lanes, 20 others, 30 s, ego_spacing
    1.5, and collisions checked only between the ego and the others."""
    fast = dict(simulation_frequency=5, lanes_count=3, vehicles_count=20, duration=30.0, ego_spacing=1.5,
                others_check_collisions=False)
    return dataclasses.replace(EnvParams(), **{**fast, **overrides})


ENV_PARAMS = {"highway-v0": highway_v0_params, "highway-fast-v0": highway_fast_v0_params}
