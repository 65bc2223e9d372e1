"""What a compact policy buys at inference: latency and bytes of the dense vs the compact policy
network, in jitted JAX, NumPy (``dspjax.policy_file``) and onnxruntime, side by side in this one
process.

The networks are those of committed runs: the architecture of the best member of a run's dense
baseline (nothing pruned) and of its best pruned member, read from ``summary.json``
(``compact_sizes``) and ``config.json`` (activation). Run checkpoints are not in git, so the
weights are the run's own when its ``checkpoint/`` is there and orthogonal-init weights of the same
shapes otherwise (latency does not depend on the values); each row says which.

For each network, batch size and engine, one sample times ``inner`` calls (enough for about a
millisecond), the engines and both networks interleaved within every round so that a noisy machine
slows them alike; reported is the median over ``--rounds`` rounds after ``--warmup`` rounds, per
call. ``bytes``: float32 parameters; ``npz``/``onnx`` bytes: the exported files. Ratios are
dense ÷ compact. Every engine runs on one thread (NumPy's BLAS, XLA's CPU backend, onnxruntime's
session), as a policy would on a small on-board computer, and so that the other processes of a
shared machine slow them alike.

Usage: python benchmarks/inference.py [--out FILE] [--rounds 1000] [--warmup 50] [--table]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads BLAS
    os.environ.setdefault(_var, "1")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from dspjax.networks import init_layers  # noqa: E402
from dspjax.policy_file import forward  # noqa: E402
from dspjax.pruning import chain_apply  # noqa: E402
from dspjax.train.export import compact_policy, npz_bytes, onnx_bytes  # noqa: E402
from dspjax.train.run_dir import load_run, member_network, networks_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = [  # name, run directory of the dense baseline, run directory of the pruned members
    ("CartPole-v1 PPO actor", "experiments/cartpole/runs/dense", "experiments/cartpole/runs/dsp"),
    ("highway-fast-v0 DQN Q-network", "experiments/highway/runs/dqn", "experiments/highway/runs/dqn"),
]
BATCHES = (1, 256)
ENGINES = ("jax", "numpy", "onnxruntime")


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
            f"({jax.devices()[0].platform}), numpy {np.__version__}, onnxruntime {ort.__version__}")


def best_member(run_dir: Path, pruned: bool) -> tuple[dict, str, str]:
    """``(member record, policy network, activation)`` of the best member of ``run_dir`` with
    (``pruned``) or without neurons removed from its policy network."""
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = json.loads((run_dir / "config.json").read_text())
    net = networks_of(summary)[0]
    records = [r for r in summary["members"] if (r[net]["neurons_removed"] > 0) == pruned]
    best = max(records, key=lambda r: (r["final_return"], -r["member"]))
    return best, net, cfg["config"]["activation"]


def policy_layers(run_dir: Path, record: dict, net: str, seed: int):
    """``([(kernel, bias), ...], source)``: the member's compact network from the run's checkpoint
    when there is one, else orthogonal-init weights of its compact sizes."""
    if (run_dir / "checkpoint").is_dir():
        _, tree = load_run(run_dir)
        return compact_policy(*member_network(tree, net, record["member"])), "run checkpoint"
    params = init_layers(jax.random.PRNGKey(seed), record[net]["compact_sizes"])
    return [(np.asarray(p["kernel"]), np.asarray(p["bias"])) for p in params], "orthogonal init (no checkpoint)"


def engines(layers, activation: str) -> dict:
    """One callable per engine, ``obs -> outputs`` as NumPy, for the network ``layers``."""
    params = tuple({"kernel": jax.device_put(k), "bias": jax.device_put(b)} for k, b in layers)
    jitted = jax.jit(lambda p, obs: chain_apply(p, obs, activation)[0])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a small policy on a small computer: one thread
    session = ort.InferenceSession(onnx_bytes(layers, activation), options, providers=["CPUExecutionProvider"])
    return {"jax": lambda obs: jitted(params, obs).block_until_ready(),
            "numpy": lambda obs: forward(layers, obs, activation),
            "onnxruntime": lambda obs: session.run(None, {"observation": obs})[0]}


def sample(fn, obs, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn(obs)
    return (time.perf_counter() - t0) / inner


def time_side_by_side(calls: dict, obs, rounds: int, warmup: int) -> dict:
    """Median seconds per call of every ``calls[key](obs)``, all interleaved in each round."""
    inner = {k: max(1, int(1e-3 / max(sample(fn, obs, 5), 1e-7))) for k, fn in calls.items()}
    times = {k: [] for k in calls}
    for r in range(warmup + rounds):
        for k, fn in calls.items():
            t = sample(fn, obs, inner[k])
            if r >= warmup:
                times[k].append(t)
    return {k: float(np.median(v)) for k, v in times.items()}


def param_bytes(layers) -> int:
    return sum(4 * (k.size + b.size) for k, b in layers)


def run_case(name, dense_dir, pruned_dir, rounds, warmup) -> list[dict]:
    nets = {}
    for kind, run_dir, seed in (("dense", ROOT / dense_dir, 0), ("compact", ROOT / pruned_dir, 1)):
        record, net, activation = best_member(run_dir, pruned=kind == "compact")
        layers, source = policy_layers(run_dir, record, net, seed)
        nets[kind] = dict(layers=layers, activation=activation, source=source, member=record["member"],
                          run=str(run_dir.relative_to(ROOT)), net=net, calls=engines(layers, activation))
    for kind, n in nets.items():
        out = {e: np.asarray(fn(np.zeros((2, n["layers"][0][0].shape[0]), np.float32)))
               for e, fn in n["calls"].items()}
        for e in ENGINES[1:]:  # the engines compute the same function
            np.testing.assert_allclose(out[e], out["jax"], atol=1e-4, rtol=1e-4)
    rows = []
    n_in = nets["dense"]["layers"][0][0].shape[0]
    for batch in BATCHES:
        obs = np.random.default_rng(batch).normal(size=(batch, n_in)).astype(np.float32)
        calls = {(kind, e): n["calls"][e] for e in ENGINES for kind, n in nets.items()}
        seconds = time_side_by_side(calls, obs, rounds, warmup)
        for e in ENGINES:
            rows.append({"policy": name, "batch": batch, "engine": e,
                         "dense_s": seconds[("dense", e)], "compact_s": seconds[("compact", e)],
                         "latency_ratio": seconds[("dense", e)] / seconds[("compact", e)]})
    sizes = {kind: [n["layers"][0][0].shape[0]] + [b.shape[0] for _, b in n["layers"]] for kind, n in nets.items()}
    nbytes = {kind: {"params": param_bytes(n["layers"]), "npz": len(npz_bytes(n["layers"])),
                     "onnx": len(onnx_bytes(n["layers"], n["activation"]))} for kind, n in nets.items()}
    info = {"policy": name, "activation": nets["dense"]["activation"], "network": nets["dense"]["net"],
            "dense_sizes": sizes["dense"], "compact_sizes": sizes["compact"],
            "neurons_removed": 1 - sum(sizes["compact"][1:-1]) / sum(sizes["dense"][1:-1]),
            "dense_weights": f"{nets['dense']['run']} member {nets['dense']['member']}: {nets['dense']['source']}",
            "compact_weights": f"{nets['compact']['run']} member {nets['compact']['member']}: "
                               f"{nets['compact']['source']}",
            "bytes": nbytes, "bytes_ratio": {k: nbytes["dense"][k] / nbytes["compact"][k] for k in nbytes["dense"]}}
    return [{**info, **row} for row in rows]


def _arch(r, kind) -> str:
    return "-".join(map(str, r[f"{kind}_sizes"]))


def tables(rows) -> str:
    """The latency table (one row per policy, batch and engine) and the bytes table (per policy)."""
    lines = ["| policy | batch | engine | dense [µs] | compact [µs] | dense ÷ compact |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['policy']} | {r['batch']} | {r['engine']} | {1e6 * r['dense_s']:,.1f} "
                     f"| {1e6 * r['compact_s']:,.1f} | {r['latency_ratio']:.1f} |")
    lines += ["", "| policy | dense → compact | neurons removed | float32 parameters [bytes] | .npz file "
              "| .onnx file |", "|---|---|---|---|---|---|"]
    for r in {r["policy"]: r for r in rows}.values():
        b, q = r["bytes"], r["bytes_ratio"]
        cells = [f"{b['dense'][k]:,} → {b['compact'][k]:,} ({q[k]:.0f}x)" for k in ("params", "npz", "onnx")]
        lines.append(f"| {r['policy']} | {_arch(r, 'dense')} → {_arch(r, 'compact')} "
                     f"| {100 * r['neurons_removed']:.1f} % | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inference_cpu2.json"))
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--table", action="store_true", help="only print the tables of the rows in --out")
    args = parser.parse_args()
    if args.table:
        print(tables(json.loads(Path(args.out).read_text())["rows"]))
        return
    rows = []
    for name, dense_dir, pruned_dir in CASES:
        rows += run_case(name, dense_dir, pruned_dir, args.rounds, args.warmup)
        r = rows[-1]
        print(f"{name}: dense {r['dense_weights']}; compact {r['compact_weights']}; file bytes "
              f"npz {r['bytes']['dense']['npz']:,} → {r['bytes']['compact']['npz']:,}, "
              f"onnx {r['bytes']['dense']['onnx']:,} → {r['bytes']['compact']['onnx']:,}", flush=True)
    result = {"machine": machine(), "rounds": args.rounds, "warmup": args.warmup,
              "statistic": "median seconds per call", "threads": 1, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(tables(rows))
    print(f"\nrows: {args.out}")


if __name__ == "__main__":
    main()
