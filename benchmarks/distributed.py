"""Members per second of one population trained by one process against the same population split
over two processes (``jax.distributed`` on this machine, coordinator on localhost).

Each row is one ``run_population`` (PPO+DSP on gymnax CartPole-v1, ``--members`` seeds, default
config but ``--steps``) in fresh processes: ``compile_s`` is the compilation of the three
programs (init, segment, evaluation; each process compiles its own), ``train_s`` the segments and
the evaluation, results gathered to every process; ``members_per_s`` is members / ``train_s``.
On a machine whose processes share the same cores, two processes cannot be faster than one: the
row measures what splitting costs (collectives, gathers, two programs where there was one).

Usage: python benchmarks/distributed.py [--members 8] [--steps 100000] [--repeats 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time


def worker(args) -> None:
    if args.num_processes > 1:
        from dspjax.train.distributed import initialize
        initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    from dspjax.agents import PPOConfig, PPOHParams, make_train
    from dspjax.train import build_population, run_population
    config = PPOConfig(total_timesteps=args.steps)
    members = build_population(PPOHParams(), {"method": ["dsp"]}, range(args.members))
    t0 = time.perf_counter()
    result = run_population(make_train, config, members, progress=False)
    wall = time.perf_counter() - t0
    if jax.process_index() == 0:
        dev = jax.devices()[0]
        print(json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                          "machine": f"{dev.platform}, {os.cpu_count()} host cores "
                                     f"({platform.processor() or platform.machine()}), jax {jax.__version__}",
                          "iterations": config.num_iterations, "compile_s": result.compile_seconds,
                          "train_s": result.run_seconds, "wall_s": wall}))


def run(n: int, args) -> dict:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{port.getsockname()[1]}"
    port.close()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--coordinator", address,
                               "--num-processes", str(n), "--process-id", str(i), "--members",
                               str(args.members), "--steps", str(args.steps)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(n)]
    outs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode:
            raise SystemExit(err[-2000:])
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rows = []
    for n in (1, 2):
        runs = [run(n, args) for _ in range(args.repeats)]
        train_s = statistics.median(r["train_s"] for r in runs)
        rows.append({**runs[0], "job": f"PPO+DSP CartPole-v1 (gymnax), {args.members} members, "
                     f"{args.steps:,} steps each", "train_s_runs": [r["train_s"] for r in runs],
                     "compile_s_runs": [r["compile_s"] for r in runs], "train_s": train_s,
                     "compile_s": statistics.median(r["compile_s"] for r in runs),
                     "members_per_s": args.members / train_s})
        r = rows[-1]
        print(f"{n} process(es): compile {r['compile_s']:.1f} s, train {train_s:.2f} s, "
              f"{r['members_per_s']:.3f} members/s", flush=True)
    print(f"2 processes / 1 process members per second: {rows[1]['members_per_s'] / rows[0]['members_per_s']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
