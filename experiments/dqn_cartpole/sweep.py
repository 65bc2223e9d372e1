"""Tuning DQN with DSP on gymnax CartPole-v1: each program is one ``jit(vmap(train))`` over a grid
of sweepable hyperparameters x seeds (``dspjax.train.population``) for one static ``DQNConfig``.

Members that differ only in array leaves share a program; static knobs (steps, widths, buffer,
target cadence) and discrete choices (``method``) get a program each. A grid point's figure of
merit is the *worst* seed's mean greedy return (10 episodes), then the neurons it removes.

Usage (from the repository root):
  python experiments/dqn_cartpole/sweep.py list STAGE                 # the programs of a stage
  python experiments/dqn_cartpole/sweep.py run STAGE PROGRAM --out DIR  # writes DIR/PROGRAM.json
  python experiments/dqn_cartpole/sweep.py report DIR... > experiments/dqn_cartpole/sweep.md

Stage 1 searched broadly from the DQN settings of ``first_look.py`` (pinned below as
``BEFORE_CONFIG`` / ``before_hparams``), stage 2 refined it; both ran on one H100 with
``stage N --jobs 3`` (a few hundred members per program, one to three minutes each). Stage 3 ran
on a 2-core CPU, one program at a time with ``run 3 PROGRAM``, after the device time was spent.
The committed results are in ``sweep_runs/`` and ``sweep.md``; the chosen defaults are stage 3's
``dsp_h128_c0.7`` (and its ``_more_seeds``), confirmed by ``run.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time

import jax
import numpy as np

from dspjax.agents.dqn import DQNConfig, DQNHParams, make_train
from dspjax.pruning import THRESHOLD_NAMES, DSPHParams
from dspjax.train.population import Member, run_population, set_hparam

TARGET = 475.0


def grid_members(base, grid: dict, seeds) -> list[Member]:
    """The product of ``grid`` (name → values; a name ``"a/b"`` sets two fields from pairs, e.g.
    the prune window) times ``seeds``, every member validated before anything is compiled."""
    names = list(grid)
    members = []
    for values in itertools.product(*(grid[n] for n in names)):
        hp, point = base, {}
        for name, value in zip(names, values):
            parts = name.split("/")
            vals = value if len(parts) > 1 else (value,)
            for part, v in zip(parts, vals):
                hp = set_hparam(hp, part, v)
                point[part] = v
        hp.validate()
        for seed in seeds:
            members.append(Member(len(members), int(seed), point, hp))
    return members


# --- the programs ---------------------------------------------------------------------------
# Each: static config overrides, method, base hparam overrides, grid, seeds.
STAGES = {}

def program(stage, name, *, config=None, method="dsp", base=None, grid=None, seeds=4):
    STAGES.setdefault(stage, {})[name] = dict(config=config or {}, method=method,
                                              base=base or {}, grid=grid or {}, seeds=seeds)


# stage 0: calibration on this CPU (a handful of members)
H128 = dict(hidden_sizes=[128, 128], total_timesteps=100_000, buffer_size=50_000)
program(0, "dense_soft", config=dict(H128, target_update_every=1), method="dense",
        base=dict(tau=0.01), grid={"lr": [5e-4], "lr_decay": [0.0, 1.0]}, seeds=2)
program(0, "dense_hard", config=dict(H128, target_update_every=100), method="dense",
        grid={"lr": [5e-4], "lr_decay": [0.0, 1.0]}, seeds=2)
program(0, "dense_soft2", config=dict(H128, target_update_every=1), method="dense",
        base=dict(tau=0.01, lr_decay=1.0, eps_fraction=0.2), grid={"lr": [1e-3, 2e-3]}, seeds=2)

# stage 1 (H100): dense DQN around the calibrated base (soft target updates every iteration, ε
# decayed over the first 10 %, learning rate decayed linearly) for four static configurations of
# about the same CPU cost (iterations x width²), and the DSP schedule on three of them.
# prune_every is given for 25k iterations and scaled to each program's iteration count.
BASE = dict(lr=1e-3, lr_decay=1.0, eps_fraction=0.1, tau=0.05)
SOFT = dict(buffer_size=100_000, target_update_every=1)
STATIC = {"h128_200k": dict(SOFT, hidden_sizes=[128, 128], total_timesteps=200_000),
          "h256_100k": dict(SOFT, hidden_sizes=[256, 256], total_timesteps=100_000),
          "h128_100k": dict(SOFT, hidden_sizes=[128, 128], total_timesteps=100_000),
          "h64_400k": dict(SOFT, hidden_sizes=[64, 64], total_timesteps=400_000)}
DENSE_GRID = {"lr": [5e-4, 1e-3, 2e-3], "tau": [0.02, 0.05, 0.1], "eps_fraction": [0.05, 0.1, 0.2],
              "lr_decay": [0.0, 1.0]}


def dsp_grid(total_timesteps, num_envs=8):
    scale = total_timesteps / num_envs / 25_000
    return {"lam": [3e-5, 1e-4, 3e-4], "c_final": [0.5, 0.7, 0.9],
            "prune_start/prune_end": [(0.05, 0.25), (0.1, 0.3), (0.1, 0.4), (0.2, 0.5)],
            "prune_every": [max(1, round(pe * scale)) for pe in (50, 100, 200)],
            "tau": [0.05, 0.1]}


for name in ("h128_200k", "h256_100k", "h128_100k"):
    program(1, f"dsp_{name}", config=STATIC[name], base=BASE,
            grid=dsp_grid(STATIC[name]["total_timesteps"]), seeds=3)
    program(1, f"dense_{name}", config=STATIC[name], method="dense", base=BASE, grid=DENSE_GRID,
            seeds=3)
program(1, "dsp_h64_400k", config=STATIC["h64_400k"], base=BASE, grid=dsp_grid(400_000), seeds=3)
program(1, "dense_h64_400k", config=STATIC["h64_400k"], method="dense", base=BASE,
        grid=DENSE_GRID, seeds=3)

# stage 2 (H100): stage 1 showed dense DQN most reliable with τ = 0.02, lr 1e-3–2e-3, and DSP
# failing mostly where the pruned Q-network did not recover, most often with c_final = 0.9 and
# many pruning steps; on this CPU, pruned and dense runs alike often reached 500 and then
# collapsed before the end (the buffer forgets failures). So: DSP on that base with a replay
# buffer that holds the whole run, learning-rate decay, γ, a smoother importance EMA (β), a floor
# of alive neurons per layer (min_alive) and fewer pruning steps (about 40 per window;
# prune_every is shared by a program's members, so pruning stays a real branch, not a select);
# and dense checks of the same bases.
BASE2 = dict(eps_fraction=0.1, tau=0.02, lam=1e-4)
STAGE2_STATIC = {
    "h128_200k": (dict(STATIC["h128_200k"], buffer_size=200_000), 125),
    "h256_100k": (STATIC["h256_100k"], 60),
    "h64_400k": (dict(STATIC["h64_400k"], buffer_size=200_000), 250)}
DQN_GRID2 = {"lr": [1e-3, 2e-3], "gamma": [0.98, 0.99], "lr_decay": [0.0, 1.0]}
DSP_GRID2 = dict(DQN_GRID2, beta=[0.01, 0.05], c_final=[0.8, 0.9], min_alive=[4, 8],
                 **{"prune_start/prune_end": [(0.05, 0.25), (0.1, 0.3), (0.2, 0.4)]})
for name, (cfg, pe) in STAGE2_STATIC.items():
    program(2, f"dsp_{name}", config=cfg, base=dict(BASE2, prune_every=pe), grid=DSP_GRID2, seeds=3)
for name, (cfg, pe) in STAGE2_STATIC.items():
    program(2, f"dense_{name}", config=cfg, method="dense", base=BASE2, grid=DQN_GRID2, seeds=6)

# stage 3 (this 2-core CPU; the device time was spent): pruned Q-networks end small, so first a
# DQN recipe under which *small* dense networks learn reliably (16 x 16), then DSP with it on
# 128 x 128: γ = 0.995 and lr 2e-3–3e-3 decayed to 0 carried small networks; a floor of alive
# neurons per layer (min_alive) kept pruning from leaving too few to fit the TD targets.
CPU = dict(target_update_every=1, total_timesteps=200_000, buffer_size=200_000)
program(3, "dense_h16_a", config=dict(CPU, hidden_sizes=[16, 16]), method="dense",
        base=dict(lr_decay=1.0),
        grid={"gamma": [0.99, 0.995], "lr": [1e-3, 3e-3], "tau": [0.005, 0.02],
              "eps_fraction": [0.1, 0.3]}, seeds=6)
program(3, "dense_h16_b", config=dict(CPU, hidden_sizes=[16, 16]), method="dense",
        base=dict(eps_fraction=0.1, tau=0.02),
        grid={"gamma": [0.995, 0.998], "lr": [3e-3, 5e-3], "lr_decay": [0.0, 1.0]}, seeds=8)
R = dict(eps_fraction=0.1, tau=0.02, lr_decay=1.0, gamma=0.995)
RDSP = dict(R, beta=0.05, prune_every=125, lam=1e-4)
program(3, "dense_h128", config=dict(CPU, hidden_sizes=[128, 128]), method="dense", base=R,
        grid={"lr": [2e-3, 3e-3]}, seeds=6)
program(3, "dsp_h128_window", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(RDSP, lr=3e-3, c_final=0.8),
        grid={"prune_start/prune_end": [(0.2, 0.4), (0.3, 0.5)]}, seeds=6)
program(3, "dsp_h128_floor", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(RDSP, lr=3e-3, c_final=0.9, prune_start=0.2, prune_end=0.4),
        grid={"min_alive": [12, 16]}, seeds=6)
program(3, "dsp_h128_lr", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(RDSP, c_final=0.9, min_alive=16),
        grid={"lr": [2e-3, 3e-3], "prune_start/prune_end": [(0.1, 0.25), (0.2, 0.4)]}, seeds=6)
FINAL = dict(RDSP, lr=2e-3, c_final=0.9, min_alive=16, prune_start=0.2, prune_end=0.4)
program(3, "dsp_h128_200k", config=dict(CPU, hidden_sizes=[128, 128]), base=FINAL, seeds=6)
program(3, "dsp_h128_300k", config=dict(CPU, hidden_sizes=[128, 128], total_timesteps=300_000,
                                        buffer_size=300_000),
        base=dict(FINAL, prune_every=188), seeds=6)
# pruning early, so that the small network trains for most of the run (as from scratch)
EARLY = dict(RDSP, lr=3e-3, c_final=0.9, min_alive=16, prune_every=50)
for start, end in ((0.02, 0.1), (0.05, 0.15)):
    program(3, f"dsp_h128_early_{start:g}_{end:g}", config=dict(CPU, hidden_sizes=[128, 128]),
            base=dict(EARLY, prune_start=start, prune_end=end), seeds=6)
# the regularizer's share: the same early schedule with a weaker λ, and none (pruning alone)
for lam in (1e-5, 0.0):
    program(3, f"dsp_h128_early_lam{lam:g}", config=dict(CPU, hidden_sizes=[128, 128]),
            base=dict(EARLY, prune_start=0.02, prune_end=0.1, lam=lam), seeds=6)
# less pruning on the base where dense 128 x 128 solved 6/6 (lr 2e-3): a floor of 32 per layer
for c_final in (0.7, 0.5):
    program(3, f"dsp_h128_c{c_final:g}", config=dict(CPU, hidden_sizes=[128, 128]),
            base=dict(FINAL, c_final=c_final, min_alive=32), seeds=6)
program(3, "dsp_h128_c0.7_more_seeds", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(FINAL, c_final=0.7, min_alive=32), seeds=list(range(6, 12)))
# stage 2's one grid point that kept >= 90 % removed on all 3 seeds, with 6 seeds on this CPU
program(3, "dsp_h128_stage2_best", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(BASE2, prune_every=125, lr=2e-3, gamma=0.98, lr_decay=0.0, beta=0.05,
                  c_final=0.9, min_alive=8, prune_start=0.05, prune_end=0.25), seeds=6)
# a wider start with the same floor: 256 x 256 pruned to about 32 per layer
program(3, "dsp_h256_floor32", config=dict(CPU, hidden_sizes=[256, 256]),
        base=dict(FINAL, c_final=0.9, min_alive=32), seeds=6)
program(3, "dsp_h256_floor32_more_seeds", config=dict(CPU, hidden_sizes=[256, 256]),
        base=dict(FINAL, c_final=0.9, min_alive=32), seeds=list(range(6, 12)))
program(3, "dense_h256", config=dict(CPU, hidden_sizes=[256, 256]), method="dense",
        base=FINAL, seeds=6)
program(3, "dsp_h128_floor24", config=dict(CPU, hidden_sizes=[128, 128]),
        base=dict(FINAL, c_final=0.9, min_alive=24), seeds=6)


CHOSEN = [(3, "dsp_h128_c0.7"), (3, "dsp_h128_c0.7_more_seeds")]

# Every program starts from the DQN settings from before this sweep (``first_look.py``), pinned
# here so that the programs stay what they were after the defaults changed.
BEFORE_CONFIG = dict(num_envs=8, total_timesteps=200_000, buffer_size=10_000, batch_size=128,
                     learning_starts=1_000, train_every=1, target_update_every=50,
                     hidden_sizes=(256, 256), activation="relu", eval_episodes=10)


def before_hparams() -> DQNHParams:
    return DQNHParams(lr=2.5e-4, gamma=0.99, eps_start=1.0, eps_end=0.05, eps_fraction=0.5,
                      double_dqn=1, max_grad_norm=10.0, lr_decay=0.0, tau=1.0,
                      dsp=DSPHParams(threshold_rule=THRESHOLD_NAMES.index("adaptive"),  # the defaults then (0.1)
                                     prune_end=0.6, reg_end=1.0))


def build(spec) -> tuple[DQNConfig, list[Member]]:
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    config = DQNConfig(**{**BEFORE_CONFIG, **cfg})
    base = before_hparams()
    for k, v in spec["base"].items():
        base = set_hparam(base, k, v)
    base = set_hparam(base, "method", spec["method"])  # last: dense keeps λ = 0
    seeds = spec["seeds"]
    return config, grid_members(base, spec["grid"], range(seeds) if isinstance(seeds, int) else seeds)


def run(stage: int, name: str, out: str) -> None:
    spec = STAGES[stage][name]
    config, members = build(spec)
    t0 = time.perf_counter()
    result = run_population(make_train, config, members, progress=False)
    m = result.metrics
    tail = max(1, m["episodes"].shape[1] // 20)  # training episodes of the last 5 % of iterations
    eps = m["episodes"][:, -tail:]
    train_return = (m["episode_return"][:, -tail:] * eps).sum(1) / np.maximum(eps.sum(1), 1)
    rows = []
    for i, member in enumerate(members):
        rows.append(dict(point=member.grid_point, seed=member.seed,
                         eval_return=float(result.eval_returns[i].mean()),
                         train_return=float(train_return[i]),
                         neurons_removed=float(m["q_neurons_removed"][i, -1]),
                         weights_removed=float(m["q_weights_removed"][i, -1]),
                         alive=[int(m[f"q_alive_layer{l}"][i, -1])
                                for l in range(len(config.hidden_sizes))],
                         diverged=bool(m["diverged"][i, -1])))
    record = dict(stage=stage, program=name, spec=spec, config=dict(vars(config)),
                  members=len(members), compile_seconds=result.compile_seconds,
                  run_seconds=result.run_seconds, total_seconds=time.perf_counter() - t0,
                  device=str(jax.devices()[0].device_kind), host=platform.node(), rows=rows)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(record, f, default=str)
    print(f"{name}: {len(members)} members, compile {result.compile_seconds:.0f} s, "
          f"run {result.run_seconds:.0f} s on {record['device']}", flush=True)


def run_stage(stage: int, out: str, jobs: int, timeout: float | None,
              deadline: float | None = None) -> None:
    """Runs the programs of ``stage`` as subprocesses, ``jobs`` at a time, in the order they are
    declared; a program that fails or outlasts ``timeout`` (or the stage's ``deadline``) is
    reported and skipped, the others' results are kept."""
    pending = list(STAGES[stage])
    running = {}
    start = time.monotonic()
    while pending or running:
        if deadline and time.monotonic() - start > deadline:
            for name in pending:
                print(f"{name}: skipped (deadline)", flush=True)
            pending = []
            timeout = 0.0
        while pending and len(running) < jobs:
            name = pending.pop(0)
            cmd = [sys.executable, __file__, "run", str(stage), name, "--out", out]
            running[name] = (subprocess.Popen(cmd), time.monotonic())
        time.sleep(1)
        for name, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                if proc.returncode:
                    print(f"{name}: exit {proc.returncode}", flush=True)
                del running[name]
            elif timeout is not None and time.monotonic() - t0 > timeout:
                proc.kill()
                print(f"{name}: killed after {timeout:.0f} s", flush=True)
                del running[name]


def summarise(record) -> list[dict]:
    """One line per grid point: worst / mean seed return, seeds >= 475, neurons removed."""
    points = {}
    for r in record["rows"]:
        points.setdefault(json.dumps(r["point"], sort_keys=True), []).append(r)
    out = []
    for key, rows in points.items():
        ret = np.array([r["eval_return"] for r in rows])
        out.append(dict(program=record["program"], point=json.loads(key), worst=ret.min(),
                        mean=ret.mean(), solved=int((ret >= TARGET).sum()), seeds=len(rows),
                        train=np.mean([r["train_return"] for r in rows]),
                        neurons=np.mean([r["neurons_removed"] for r in rows]),
                        min_neurons=np.min([r["neurons_removed"] for r in rows]),
                        weights=np.mean([r["weights_removed"] for r in rows]),
                        alive=np.mean([r["alive"] for r in rows], 0).round(1).tolist()))
    return out


def seed_text(seeds) -> str:
    return ", ".join(map(str, seeds)) if isinstance(seeds, list) else f"0–{seeds - 1}"


def report(dirs, top: int) -> None:
    records = []
    for d in dirs:
        for f in sorted(os.listdir(d)):
            if f.endswith(".json"):
                records.append(json.load(open(os.path.join(d, f))))
    order = {(k, name): i for k, stage in STAGES.items() for i, name in enumerate(stage)}
    records.sort(key=lambda r: (r["stage"], order.get((r["stage"], r["program"]), 0)))
    print("# DQN + DSP on gymnax CartPole-v1: sweep\n")
    print("Written by `python experiments/dqn_cartpole/sweep.py report "
          "experiments/dqn_cartpole/sweep_runs/s* > experiments/dqn_cartpole/sweep.md`. "
          "Stages 1 and 2 ran on one H100 (`sweep.py stage N --out DIR --jobs 3`), stage 3 on a "
          "2-core CPU (`sweep.py run 3 PROGRAM --out DIR`, one program at a time); the device "
          "column says which. Figure of merit per grid point: "
          "the worst seed's mean greedy return over 10 episodes (`worst`), seeds reaching "
          f"{TARGET:g} (`solved`), Q-network hidden neurons removed (mean over seeds, and the "
          "lowest). Members whose hyperparameters differ are mapped leaves of one program, and a "
          "seed's run can change with what else is mapped (float rounding), so a grid point's "
          "seeds are samples of its success rate, not fixed outcomes.\n")
    chosen = [row for r in records if (r["stage"], r["program"]) in CHOSEN for row in r["rows"]]
    if chosen:
        ret = np.array([row["eval_return"] for row in chosen])
        removed = np.array([row["neurons_removed"] for row in chosen])
        print("## The chosen defaults\n")
        print(f"Stage 3's {' and '.join(p for _, p in CHOSEN)} are the current defaults of "
              f"`DQNConfig` / `DQNHParams`. Over their {len(ret)} seeds: {int((ret >= TARGET).sum())}"
              f" reach {TARGET:g} (returns {', '.join(f'{x:.0f}' for x in ret)}), Q-network "
              f"neurons removed {100 * removed.min():.1f}–{100 * removed.max():.1f} %.\n")
        strong = [(r["stage"], x) for r in records for x in summarise(r)
                  if x["solved"] == x["seeds"] and x["min_neurons"] >= 0.9]
        print(f"Grid points where every seed reached {TARGET:g} with >= 90 % of the neurons "
              f"removed on each: {len(strong)}"
              + "".join(f"; stage {st} {x['program']} `{json.dumps(x['point'])}` "
                        f"({x['seeds']} seeds)" for st, x in strong)
              + ". Stage 3's `dsp_h128_stage2_best` reran stage 2's on 6 seeds.\n")
    print("## Programs\n")
    print("| stage | program | method | static config (changes from `BEFORE_CONFIG`) | "
          "base hparams | members | compile s | run s | device |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in records:
        s = r["spec"]
        print(f"| {r['stage']} | {r['program']} | {s['method']} | `{json.dumps(s['config'])}` | "
              f"`{json.dumps(s['base'])}` (on `before_hparams()`) | {r['members']} | {r['compile_seconds']:.0f} | "
              f"{r['run_seconds']:.0f} | {r['device']} |")
    for r in records:
        lines = sorted(summarise(r), key=lambda x: (-x["solved"] / x["seeds"], -x["worst"],
                                                    -x["neurons"]))
        s = r["spec"]
        print(f"\n## Stage {r['stage']}, {r['program']} ({s['method']}; grid "
              f"`{json.dumps(s['grid'])}`; seeds {seed_text(s['seeds'])})\n")
        n_ok = sum(x["solved"] == x["seeds"] for x in lines)
        print(f"{n_ok} of {len(lines)} grid points reach {TARGET:g} on every seed. "
              f"Best {min(top, len(lines))}:\n")
        keys = list(lines[0]["point"]) if lines else []
        print("| " + " | ".join([*keys, "worst", "mean", "solved", "train return (last 5 %)",
                                 "neurons removed (min)", "weights removed", "alive per layer"])
              + " |")
        print("|" + "---|" * (len(keys) + 7))
        for x in lines[:top]:
            cells = [f"{x['point'][k]:g}" if isinstance(x['point'][k], float) else str(x['point'][k])
                     for k in keys]
            cells += [f"{x['worst']:.1f}", f"{x['mean']:.1f}", f"{x['solved']}/{x['seeds']}",
                      f"{x['train']:.1f}",
                      f"{100 * x['neurons']:.1f} % ({100 * x['min_neurons']:.1f} %)",
                      f"{100 * x['weights']:.1f} %", str(x['alive'])]
            print("| " + " | ".join(cells) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list")
    p.add_argument("stage", type=int)
    p = sub.add_parser("run")
    p.add_argument("stage", type=int)
    p.add_argument("program")
    p.add_argument("--out", required=True)
    p = sub.add_parser("stage", help="every program of a stage, --jobs at a time, each in its "
                                          "own process (one compile each, run side by side)")
    p.add_argument("stage", type=int)
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None, help="seconds per program")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds for the whole stage: then running programs are killed and "
                        "pending ones skipped")
    p = sub.add_parser("report")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, spec in STAGES[args.stage].items():
            print(name, len(build(spec)[1]))
    elif args.cmd == "run":
        run(args.stage, args.program, args.out)
    elif args.cmd == "stage":
        run_stage(args.stage, args.out, args.jobs, args.timeout, args.deadline)
    else:
        report(args.dirs, args.top)


if __name__ == "__main__":
    sys.exit(main())
