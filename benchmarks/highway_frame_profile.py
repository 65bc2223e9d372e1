"""Where a highway-fast-v0 step of the JAX port spends its time: each piece of a frame (``road_act``,
``road_step``, the neighbour search, the lane-change policy, collisions, ...) run alone, ``vmap``-ed
over N environments inside a jitted ``lax.scan``, microseconds per call (best of 7, compile
excluded). The scene is a reset advanced by 3 IDLE steps; each piece's output feeds back into the
carried state (times 0) so that XLA cannot hoist it out of the loop. Pieces overlap (``act``
contains ``near`` and ``lcp``): the figures say where the time goes, they do not add up.

Usage: taskset -c 0 python benchmarks/highway_frame_profile.py [--envs 1 4096] [--pieces step frame near ...]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from dspjax.envs import highway as hw
from dspjax.envs.highway import collision, idm, kinematics, mobil, road, simulation

IDLE = 1


def pieces(params):
    """``name -> state -> state`` for every timed piece."""
    def touch(s, out):
        total = sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree_util.tree_leaves(out))
        return s.replace(position=s.position + 0.0 * total)

    def context(s):
        lane = road.closest_lane(s.position, s.heading, params.lanes_count)
        traffic = idm.Traffic.of(s.position, s.heading, s.speed, s.target_speed)
        return lane, traffic, idm.neighbours(s.position, params.lanes_count)

    def lane_change_policy(s):
        lane, traffic, near = context(s)
        deciding = jnp.arange(params.num_vehicles) > 0
        return touch(s, mobil.lane_change_policy(traffic, near, s.position, lane, s.target_lane, s.timer, s.delta,
                                                 deciding, params.lanes_count))

    def mobil_target(s):
        lane, traffic, near = context(s)
        return touch(s, mobil.mobil_target_lane(traffic, near, s.position, lane, s.delta, params.lanes_count))

    return {
        "step": lambda s: hw.step(None, s, IDLE, params)[1],
        "frame": lambda s: simulation.frame(s, params),
        "act": lambda s: touch(s, simulation.road_act(s, params)[1:]),
        "roadstep": lambda s: simulation.road_step(s, s.heading * 0, s.speed * 0, params),
        "near": lambda s: touch(s, idm.neighbours(s.position, params.lanes_count)),
        "lcp": lane_change_policy,
        "mobil": mobil_target,
        "collision": lambda s: touch(s, collision.handle_collisions(s.position, s.heading, s.speed, s.crashed,
                                                                    params.dt, params.others_check_collisions)),
        "steering": lambda s: touch(s, kinematics.steering_control(s.position, s.speed, s.heading, s.target_lane)),
        "observation": lambda s: touch(s, hw.observation(s, params)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="highway-fast-v0", choices=sorted(hw.ENV_PARAMS))
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4096])
    parser.add_argument("--pieces", nargs="+", default=None, help="default: all")
    args = parser.parse_args()
    params = hw.ENV_PARAMS[args.env]()
    table = pieces(params)
    names = args.pieces or list(table)
    advance = jax.jit(jax.vmap(lambda s: hw.step(None, s, IDLE, params)[1]))
    print(f"{args.env}, jax {jax.__version__} ({jax.devices()[0].platform}); microseconds per call, best of 7")
    for n in args.envs:
        states = jax.jit(jax.vmap(lambda k: hw.reset(k, params)[1]))(jax.random.split(jax.random.key(0), n))
        for _ in range(3):
            states = advance(states)
        calls = 50 if n <= 256 else 10
        for name in names:
            piece = table[name]
            run = jax.jit(lambda st, piece=piece: jax.lax.scan(lambda c, _: (jax.vmap(piece)(c), None), st, None,
                                                                length=calls)[0]).lower(states).compile()
            best = float("inf")
            for _ in range(7):
                start = time.perf_counter()
                jax.block_until_ready(run(states))
                best = min(best, time.perf_counter() - start)
            print(f"x{n:<5d} {name:12s} {best / calls * 1e6:12.1f} us", flush=True)


if __name__ == "__main__":
    main()
