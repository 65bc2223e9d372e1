"""The ``dspjax`` command: ``train`` a population, ``report`` its plots, ``eval`` its policies.

Every argument is checked before anything is compiled; a bad one exits with code 2 and one line
that names it and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import sys
from pathlib import Path

from dspjax.agents import PPOConfig, PPOHParams, greedy_policy, make_train
from dspjax.hparams import ConfigError, allowed
from dspjax.pruning import METHOD_PRESETS, compact, dense_param_count
from dspjax.train import build_population, hparam_specs, parse_assignment, run_population

ALGOS = {"ppo": (PPOConfig, PPOHParams, make_train)}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise SystemExit(_fail(f"{message} (see `{self.prog} --help`)"))


def _fail(message: str) -> int:
    print(f"dspjax: error: {message}", file=sys.stderr)
    return 2


def _int(text: str) -> int:
    value = float(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def _widths(text: str) -> tuple:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated widths, e.g. 256,256") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dspjax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train a population (default: PPO+DSP on CartPole-v1, 3 seeds)")
    d = PPOConfig()
    tr.add_argument("--env", default=d.env_id, help=f"environment id (default {d.env_id})")
    tr.add_argument("--algo", default="ppo", help=f"algorithm: {', '.join(ALGOS)}")
    tr.add_argument("--steps", type=_int, default=d.total_timesteps, help="environment steps per member")
    tr.add_argument("--seeds", type=_int, default=3, help="number of seeds per grid point")
    tr.add_argument("--seed-offset", type=_int, default=0, help="first seed")
    tr.add_argument("--num-envs", type=_int, default=d.num_envs)
    tr.add_argument("--num-steps", type=_int, default=d.num_steps, help="steps per env per rollout")
    tr.add_argument("--epochs", type=_int, default=d.update_epochs)
    tr.add_argument("--minibatches", type=_int, default=d.num_minibatches)
    tr.add_argument("--hidden", type=_widths, default=d.hidden_sizes, help="hidden widths, e.g. 256,256")
    tr.add_argument("--activation", default=d.activation)
    tr.add_argument("--eval-episodes", type=_int, default=d.eval_episodes)
    tr.add_argument("--method", default="dsp",
                    help=f"method or baseline: {', '.join(METHOD_PRESETS)} (METHOD.md §7)")
    hp_group = tr.add_argument_group("hyperparameters (each may also be swept)")
    for name, (_, meta) in hparam_specs(PPOHParams).items():
        hp_group.add_argument(f"--{name.replace('_', '-')}", dest=f"hp_{name}", default=None,
                              metavar="V", help=f"{meta['help']}; {allowed(meta)}")
    tr.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="grid over a hyperparameter (repeatable: grid product); NAME may be method")
    tr.add_argument("--out", default=None, help="run directory (default runs/<time>-<env>-<algo>)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser("report", help="redraw the plots of a run directory")
    rp.add_argument("run_dir")

    ev = sub.add_parser("eval", help="evaluate the saved policies of a run (masked and compact)")
    ev.add_argument("run_dir")
    ev.add_argument("--episodes", type=_int, default=10)
    ev.add_argument("--seed", type=_int, default=0)
    return parser


def _train_setup(args):
    """Everything ``train`` needs, validated; raises ConfigError before anything is compiled."""
    if args.algo not in ALGOS:
        raise ConfigError(f"algo={args.algo!r}: must be one of {', '.join(ALGOS)}")
    config_cls, hp_cls, make = ALGOS[args.algo]
    if args.seeds < 1:
        raise ConfigError(f"seeds={args.seeds}: must be an integer >= 1")
    config = config_cls(env_id=args.env, num_envs=args.num_envs, num_steps=args.num_steps,
                        total_timesteps=args.steps, update_epochs=args.epochs,
                        num_minibatches=args.minibatches, hidden_sizes=tuple(args.hidden),
                        activation=args.activation, eval_episodes=args.eval_episodes)
    config.validate()
    base = hp_cls()
    sweep = {"method": [parse_assignment(hp_cls, "method", args.method)]}
    for name in hparam_specs(hp_cls):
        text = getattr(args, f"hp_{name}")
        if text is not None:
            sweep[name] = [parse_assignment(hp_cls, name, text)]
    for item in args.sweep:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values:
            raise ConfigError(f"--sweep {item!r}: expected NAME=V1,V2,...")
        sweep[name] = [parse_assignment(hp_cls, name, v.strip()) for v in values.split(",")]
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    members = build_population(base, sweep, seeds)
    out = Path(args.out) if args.out else Path("runs") / (
        _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{args.env}-{args.algo}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out={str(out)!r}: exists and is not an empty directory; "
                          "choose a new one (nothing is overwritten)")
    swept = {k: v for k, v in sweep.items() if len(v) > 1 or k == "method"}
    return config, base, make, swept, seeds, members, out


def cmd_train(args) -> int:
    from dspjax.train.report import draw_plots, format_table
    from dspjax.train.run_dir import write_run
    config, base, make, sweep, seeds, members, out = _train_setup(args)
    print(f"dspjax: {args.algo} on {config.env_id}, {len(members)} member(s), "
          f"{config.total_timesteps:,} steps each; compiling one program...", file=sys.stderr)
    result = run_population(make, config, members, progress=not args.no_progress)
    summary = write_run(out, args.algo, config, base, sweep, seeds, result)
    draw_plots(out)
    print(format_table(summary))
    print(f"\ncompiled in {result.compile_seconds:.1f}s, trained in {result.run_seconds:.1f}s; "
          f"run directory: {out}")
    return 0


def cmd_report(args) -> int:
    from dspjax.train.report import draw_plots, format_table
    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").is_file() or not (run_dir / "metrics.csv").is_file():
        raise ConfigError(f"run_dir={args.run_dir!r}: needs summary.json and metrics.csv")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"run_dir={args.run_dir!r}: summary.json is not valid JSON ({e})") from None
    paths = draw_plots(run_dir)
    print(format_table(summary))
    print("\nplots: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_eval(args) -> int:
    import jax
    import numpy as np

    from dspjax.envs import evaluate_policy, make_vec_env
    from dspjax.train.run_dir import load_run
    if args.episodes < 1:
        raise ConfigError(f"episodes={args.episodes}: must be an integer >= 1")
    cfg, tree = load_run(args.run_dir)
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    config = PPOConfig(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in cfg["config"].items() if k in fields})
    policy = greedy_policy(config.activation)
    key = jax.random.PRNGKey(args.seed)

    @jax.jit
    def episodes(params):
        return evaluate_policy(lambda n: make_vec_env(config.env_id, n),
                               lambda obs: policy(params, obs), key, args.episodes)

    print(f"{'#':>3}  {'seed':>4}  {'masked return':>13}  {'compact return':>14}  "
          f"{'compact sizes':<22} {'params (dense)':>16}  hyperparameters")
    for m in cfg["members"]:
        i = m["member"]
        actor = jax.tree.map(lambda x: np.asarray(x[i]), tree["params"]["actor"])
        masks = [np.asarray(x[i]) for x in tree["neuron_masks"]["actor"]]
        small = compact(tuple(actor), masks)
        masked_ret = float(np.mean(episodes(tuple(actor))))
        compact_ret = float(np.mean(episodes(small)))
        sizes = [small[0]["kernel"].shape[0]] + [layer["bias"].shape[0] for layer in small]
        point = ", ".join(f"{k}={v}" for k, v in m["grid_point"].items())
        print(f"{i:>3}  {m['seed']:>4}  {masked_ret:>13.1f}  {compact_ret:>14.1f}  "
              f"{'x'.join(map(str, sizes)):<22} {dense_param_count(small):>7} "
              f"({dense_param_count(tuple(actor))})  {point}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "report": cmd_report, "eval": cmd_eval}[args.command](args)
    except ConfigError as e:
        return _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
