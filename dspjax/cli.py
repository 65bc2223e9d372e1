"""The ``dspjax`` command: ``train`` a population, ``report`` its plots, ``eval`` its policies.

Every argument is checked before anything is compiled; a bad one exits with code 2 and one line
that names it and what is allowed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import sys
from pathlib import Path

from dspjax.envs import HostEnvError
from dspjax.hparams import ConfigError, allowed
from dspjax.pruning import METHOD_PRESETS
from dspjax.train import (
    build_population,
    hparam_specs,
    parse_assignment,
    run_population,
)
from dspjax.train.algos import ALGOS, get_algo


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise SystemExit(_fail(f"{message} (see `{self.prog} --help`)"))


def _fail(message: str, code: int = 2) -> int:
    print("dspjax: error: " + " ".join(str(message).split("\n")), file=sys.stderr)
    return code


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


OPTION_TYPES = {"int": _int, "workers": _int, "widths": _widths, "str": str}
METAVARS = {"env_id": "ID", "env_config": "JSON_OR_FILE", "hidden_sizes": "W1,W2", "critic_hidden_sizes": "W1,W2",
            "activation": "NAME"}


def _static_options() -> dict:
    """Every algo's CLI options by flag: ``flag -> (Option, names of the algos that have it)``."""
    out = {}
    for algo in ALGOS.values():
        for opt in algo.options:
            out.setdefault(opt.flag, (opt, []))[1].append(algo.name)
    return out


def _hparam_owners() -> dict:
    """Every algo's hyperparameters by flat name: ``name -> (metadata, names of the algos)``."""
    out = {}
    for algo in ALGOS.values():
        for name, (_, meta) in hparam_specs(algo.hparams_cls).items():
            out.setdefault(name, (meta, []))[1].append(algo.name)
    return out


def _only(owners) -> str:
    return "" if len(owners) == len(ALGOS) else f" [{', '.join(owners)} only]"


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value in ("", None) else str(value)


def _defaults(field: str, owners) -> str:
    values = {name: _shown(getattr(ALGOS[name].config_cls(), field)) for name in owners}
    box = {name: _shown(ALGOS[name].box_config[field]) for name in owners
           if field in (ALGOS[name].box_config or {})}
    shown = f"default {next(iter(values.values()))}" if len(set(values.values())) == 1 else \
        "defaults " + ", ".join(f"{name} {v}" for name, v in values.items())
    return shown + "".join(f"; {name} with box actions {v}" for name, v in box.items())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dspjax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train a population (default: PPO+DSP on CartPole-v1, 3 seeds)")
    tr.add_argument("--algo", default="ppo", help=f"agent: {', '.join(ALGOS)} (default ppo)")
    tr.add_argument("--seeds", type=_int, default=3, metavar="N",
                    help="number of seeds per grid point (default 3)")
    tr.add_argument("--seed-offset", type=_int, default=0, metavar="N", help="first seed")
    static = tr.add_argument_group("static options (shapes and environment; default: the agent's config)")
    for flag, (opt, owners) in _static_options().items():
        default = "" if opt.kind == "workers" else f" ({_defaults(opt.field, owners)})"
        static.add_argument(flag, dest=f"opt_{opt.field}", type=OPTION_TYPES[opt.kind], default=None,
                            metavar=METAVARS.get(opt.field, "N"),
                            help=f"{opt.help}{_only(owners)}{default}")
    tr.add_argument("--method", default="dsp",
                    help=f"method or baseline: {', '.join(METHOD_PRESETS)} (METHOD.md §7); a "
                         "baseline's own settings (dense: λ 0, no pruning; random: random "
                         "importance, λ 0) win over the other options")
    hp_group = tr.add_argument_group("hyperparameters (each may also be swept)")
    for name, (meta, owners) in _hparam_owners().items():
        hp_group.add_argument(f"--{name.replace('_', '-')}", dest=f"hp_{name}", default=None,
                              metavar="V", help=f"{meta['help']}; {allowed(meta)}{_only(owners)}")
    tr.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="grid over a hyperparameter (repeatable: grid product); NAME may be method")
    tr.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<time>-<env>-<algo>)")
    tr.add_argument("--no-progress", action="store_true", help="no progress display")
    runs = tr.add_argument_group("segments, checkpoints and resuming")
    runs.add_argument("--segment-length", type=_int, default=None, metavar="N",
                      help="iterations per segment; a checkpoint is saved after each (default: a "
                           "tenth of the run)")
    runs.add_argument("--keep-checkpoints", type=_int, default=2, metavar="K",
                      help="training checkpoints kept in RUN_DIR/checkpoints (default 2)")
    runs.add_argument("--resume", default=None, metavar="RUN_DIR",
                      help="go on with an interrupted run from its latest good checkpoint, with "
                           "the options it was started with (give no others)")
    dist = tr.add_argument_group(
        "several processes or hosts (jax.distributed; give the same command on each, with its own "
        "--process-id; also allowed beside --resume)")
    dist.add_argument("--distributed", action="store_true",
                      help="one population over the devices of every process: jax.distributed."
                           "initialize with the options below, else JAX_COORDINATOR_ADDRESS, "
                           "DSPJAX_NUM_PROCESSES, DSPJAX_PROCESS_ID, else the cluster JAX detects "
                           "(SLURM, Open MPI, Kubernetes, Cloud TPU); process 0 writes the run directory")
    dist.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                      help="address of process 0's coordinator (implies --distributed)")
    dist.add_argument("--num-processes", type=_int, default=None, metavar="N",
                      help="number of processes (implies --distributed)")
    dist.add_argument("--process-id", type=_int, default=None, metavar="I",
                      help="this process's index, 0..N-1 (implies --distributed)")

    rp = sub.add_parser("report", help="redraw the plots of a run directory, print its per-member "
                                        "table and its seed statistics per grid point")
    rp.add_argument("run_dir")

    ev = sub.add_parser("eval", help="evaluate the saved policies of a run (masked and compact), "
                                     "or write a video of them")
    ev.add_argument("run_dir")
    ev.add_argument("--episodes", type=_int, default=10)
    ev.add_argument("--seed", type=_int, default=0)
    ev.add_argument("--policy", choices=("greedy", "sample"), default="greedy",
                    help="greedy: the argmax action (default); sample: actions drawn from the "
                         "actor's softmax, the stochastic policy PPO trains (ppo only)")
    ev.add_argument("--video", default=None, metavar="PATH",
                    help="instead of the table, write one episode of the best dense member and "
                         "the best pruned member (compact) side by side to PATH (.gif or .mp4)")
    ev.add_argument("--video-seed", type=_int, default=0, help="environment seed of the video")
    ev.add_argument("--env-config", default=None, metavar="JSON_OR_FILE",
                    help="evaluate (or film) under another environment config: its top-level keys "
                         "are put over the run's env_config, e.g. '{\"vehicles_density\": 2}' "
                         "(gymnasium environments only)")
    ev.add_argument("--env", default=None, metavar="ID",
                    help="evaluate on another environment with the same observations and actions, "
                         "e.g. a run trained on jax:highway-fast-v0 on highway-env's highway-fast-v0")

    ex = sub.add_parser("export", help="write one member's compact policy network (.npz and a JSON "
                                       "manifest, read with NumPy alone; or ONNX)")
    ex.add_argument("run_dir")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--member", type=_int, default=None, metavar="K", help="the member to export")
    which.add_argument("--best", action="store_true",
                       help="the member with the highest final return (the default)")
    ex.add_argument("--out", default=None, metavar="PATH",
                    help="the file to write, .npz or .onnx (default RUN_DIR/export/member<K>.<format>); "
                         "its manifest goes to PATH.json")
    ex.add_argument("--format", choices=("npz", "onnx"), default=None,
                    help="npz (default; NumPy) or onnx (needs `pip install dspjax[onnx]`)")
    ex.add_argument("--force", action="store_true", help="replace existing files")
    return parser


def _not_for(kind: str, what: str, algo, owners) -> ConfigError:
    return ConfigError(f"{what} is {kind} of {', '.join(owners)}, not of --algo {algo.name}")


def _train_setup(args, resuming: bool = False):
    """Everything ``train`` needs, validated; raises ConfigError before anything is compiled."""
    algo = get_algo(args.algo)
    if args.seeds < 1:
        raise ConfigError(f"seeds={args.seeds}: must be an integer >= 1")
    fields = {}
    for flag, (opt, owners) in _static_options().items():
        value = getattr(args, f"opt_{opt.field}")
        if value is None:
            continue
        if algo.name not in owners:
            raise _not_for("an option", flag, algo, owners)
        fields[opt.field] = value
    if fields.get("env_workers", 0) < 0:
        raise ConfigError(f"env_workers={fields['env_workers']}: must be >= 0 (0 = in-process)")
    hp_cls = algo.hparams_cls
    owners = _hparam_owners()
    given = {name: text for name in owners if (text := getattr(args, f"hp_{name}")) is not None}
    for name in given:
        if algo.name not in owners[name][1]:
            raise _not_for("a hyperparameter", f"--{name.replace('_', '-')}", algo, owners[name][1])
    sweeps = []
    for item in args.sweep:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values:
            raise ConfigError(f"--sweep {item!r}: expected NAME=V1,V2,...")
        if name in owners and algo.name not in owners[name][1]:
            raise _not_for("a hyperparameter", f"--sweep {name}", algo, owners[name][1])
        sweeps.append((name, values))
    config, base = algo.defaults(**fields)  # PPO has its own for box actions (ppo.BOX_CONFIG, PPO_BOX)
    config.validate()
    sweep = {"method": [parse_assignment(hp_cls, "method", args.method)]}
    for name, text in given.items():
        sweep[name] = [parse_assignment(hp_cls, name, text)]
    for name, values in sweeps:
        try:
            sweep[name] = [parse_assignment(hp_cls, name, v.strip()) for v in values.split(",")]
        except ConfigError as e:
            raise ConfigError(f"{e} (--algo {algo.name})" if "unknown" in str(e) else str(e)) from None
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    members = build_population(base, sweep, seeds)
    if args.segment_length is not None and args.segment_length < 1:
        raise ConfigError(f"segment_length={args.segment_length}: must be an integer >= 1")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"keep_checkpoints={args.keep_checkpoints}: must be an integer >= 1")
    out = Path(args.out) if args.out else Path("runs") / (
        _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        + f"-{config.env_id.replace(':', '_').replace('/', '_')}-{algo.name}")
    if not resuming and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out={str(out)!r}: exists and is not an empty directory; choose a new "
                          "one (nothing is overwritten), or go on with an interrupted run there: "
                          f"dspjax train --resume {out}")
    swept = {k: v for k, v in sweep.items() if len(v) > 1 or k == "method"}
    return algo, config, base, swept, seeds, members, out


DISTRIBUTED_ARGS = ("distributed", "coordinator", "num_processes", "process_id")
RESUMABLE_ARGS = ("no_progress", *DISTRIBUTED_ARGS)  # what --resume may be given beside the run directory


def _resume_args(args):
    """The arguments an interrupted run was started with (its ``config.json``), checked: a run
    of another dspjax version, a finished run or other options given beside ``--resume`` are
    ConfigErrors."""
    from dspjax.train.run_dir import read_run_config
    run_dir = Path(args.resume)
    cfg = read_run_config(run_dir)
    defaults = vars(build_parser().parse_args(["train"]))
    given = [k for k, v in vars(args).items() if k not in ("command", "resume", *RESUMABLE_ARGS)
             and v != defaults.get(k)]
    if given:
        flags = ", ".join("--" + k.removeprefix("opt_").removeprefix("hp_").replace("_", "-")
                          for k in given)
        raise ConfigError(f"resume: {flags} cannot be changed on resume; the run goes on with the "
                          "options it was started with (only --no-progress may be given)")
    if "train_args" not in cfg:
        raise ConfigError(f"resume={str(run_dir)!r}: its config.json has no command line to resume "
                          "(written by a dspjax without checkpoints)")
    from dspjax import __version__
    if cfg.get("dspjax_version") != __version__:
        raise ConfigError(f"resume={str(run_dir)!r}: written by dspjax {cfg.get('dspjax_version')}, "
                          f"this is {__version__}; resume it with that version")
    if (run_dir / "summary.json").is_file():
        raise ConfigError(f"resume={str(run_dir)!r}: the run is already finished (summary.json); "
                          f"see dspjax report {run_dir}")
    saved = argparse.Namespace(**cfg["train_args"])
    saved.out, saved.resume, saved.no_progress = str(run_dir), str(run_dir), args.no_progress
    for name in DISTRIBUTED_ARGS:
        setattr(saved, name, getattr(args, name))
    for name, value in vars(saved).items():  # JSON gave widths back as lists
        if name.startswith("opt_") and isinstance(value, list):
            setattr(saved, name, tuple(value))
    return saved, cfg


def cmd_train(args) -> int:
    import os

    from dspjax.envs import close_host_envs
    from dspjax.train.checkpoints import IncompatibleCheckpoint, TrainingCheckpoints
    from dspjax.train.distributed import barrier, initialize, is_primary
    from dspjax.train.population import TrainingStopped
    from dspjax.train.report import draw_plots, format_table
    from dspjax.train.run_dir import run_config, start_run, write_metrics_csv, write_run
    from dspjax.train.stopping import StopNow, StopOnSignal, announce_stop
    if args.distributed or any(getattr(args, k) is not None for k in DISTRIBUTED_ARGS[1:]):
        initialize(args.coordinator, args.num_processes, args.process_id)  # before any backend
    saved_cfg = None
    if args.resume is not None:
        args, saved_cfg = _resume_args(args)
    algo, config, base, sweep, seeds, members, out = _train_setup(args, resuming=saved_cfg is not None)
    train_args = {k: v for k, v in vars(args).items()
                  if k not in ("resume", "no_progress", "out", *DISTRIBUTED_ARGS)}
    extra = {"train_args": train_args, "segment_length": args.segment_length}
    cfg = run_config(algo.name, config, base, sweep, seeds, members, **extra)
    if saved_cfg is not None:
        if json.loads(json.dumps(cfg)) != saved_cfg:
            raise ConfigError(f"resume={str(out)!r}: its config.json does not match the run its "
                              "command line makes now (edited by hand?); it cannot be resumed")
    else:
        barrier("dspjax-checked")  # every process has checked --out before process 0 makes it
        if is_primary():
            start_run(out, cfg)
        barrier("dspjax-run-dir")
    checkpoints = TrainingCheckpoints(out / "checkpoints", keep=args.keep_checkpoints)
    what = "going on with" if saved_cfg else "compiling"
    if is_primary():
        print(f"dspjax: {algo.name} on {config.env_id}, {len(members)} member(s), "
              f"{config.total_timesteps:,} steps each; {what} one program... (run directory: {out})",
              file=sys.stderr)

    def stream_metrics(done, metrics):
        write_metrics_csv(out / "metrics.csv", members, metrics, iterations_done=done)

    def resume_hint() -> str:
        its = checkpoints.iterations()
        if not its:
            return "no checkpoint was saved yet; start it again"
        return (f"checkpoint at iteration {its[-1]} of {config.num_iterations}; go on with: "
                f"dspjax train --resume {out}")

    stop = StopOnSignal(on_first=announce_stop)
    try:
        with stop:
            result = run_population(algo.make_train, config, members, progress=not args.no_progress,
                                    segment_length=args.segment_length, checkpoints=checkpoints,
                                    should_stop=stop, on_segment=stream_metrics)
    except TrainingStopped:
        checkpoints.close()
        print(f"dspjax: stopped by {stop.name or 'a stop on another process'}; {resume_hint()}",
              file=sys.stderr)
        return stop.exit_code
    except (StopNow, KeyboardInterrupt):
        close_host_envs()
        print(f"\ndspjax: stopped at once; {resume_hint()}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(stop.exit_code if stop.signum else 130)  # the program may still run: don't wait for it
    except HostEnvError as e:
        checkpoints.close()
        raise HostEnvError(f"{e}; {resume_hint()}") from None
    except IncompatibleCheckpoint as e:
        raise ConfigError(f"resume={str(out)!r}: {e}") from None
    checkpoints.close()
    if not is_primary():  # process 0 writes the run directory
        barrier("dspjax-written")
        return 0
    summary = write_run(out, algo.name, config, base, sweep, seeds, result, **extra)
    draw_plots(out)
    barrier("dspjax-written")
    print(format_table(summary))
    print(f"\ncompiled in {result.compile_seconds:.1f}s, trained in {result.run_seconds:.1f}s; "
          f"run directory: {out}")
    return 0


def cmd_report(args) -> int:
    from dspjax.train.report import draw_plots, format_seed_stats, format_table, write_seed_stats
    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").is_file() or not (run_dir / "metrics.csv").is_file():
        raise ConfigError(f"run_dir={args.run_dir!r}: needs summary.json and metrics.csv")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"run_dir={args.run_dir!r}: summary.json is not valid JSON ({e})") from None
    paths = draw_plots(run_dir)
    stats, stats_paths = write_seed_stats(run_dir, summary)
    print(format_table(summary))
    print(f"\nseed statistics per grid point ({stats['statistic']}):")
    print(format_seed_stats(stats))
    print("\nplots: " + ", ".join(str(p) for p in paths + stats_paths[1:]))
    print(f"seed statistics: {stats_paths[0]}")
    return 0


@contextlib.contextmanager
def _bridged_envs():
    """Re-raises a bridged environment's own error (JAX wraps it) and closes the envs' workers."""
    from dspjax.envs import close_host_envs, take_host_error
    try:
        yield
    except Exception:
        host_error = take_host_error()
        if host_error is not None:
            raise host_error from None
        raise
    finally:
        close_host_envs()


def cmd_eval(args) -> int:
    if args.video is not None:
        return _eval_video(args)
    import jax
    import numpy as np

    from dspjax.envs import config_vec_env, evaluate_policy, with_env_config, with_env_id
    from dspjax.pruning import compact, dense_param_count
    from dspjax.train.run_dir import load_run, member_network, run_algo
    if args.episodes < 1:
        raise ConfigError(f"episodes={args.episodes}: must be an integer >= 1")
    cfg, tree = load_run(args.run_dir)
    algo, config = run_algo(cfg)
    config = with_env_config(with_env_id(config, args.env), args.env_config)
    policy = algo.evaluation_policy(args.policy, config)
    key = jax.random.PRNGKey(args.seed)
    with_config = f" with env_config {config.env_config}" if config.env_config else ""
    print(f"dspjax: {algo.name}'s {algo.policy_network} network of {len(cfg['members'])} "
          f"member(s) on {config.env_id}{with_config}, {args.episodes} episode(s) each, "
          f"{args.policy} policy", file=sys.stderr)

    with _bridged_envs():
        env = config_vec_env(config, args.episodes)  # one env (and worker pool) for every call

        @jax.jit
        def episodes(params):
            return evaluate_policy(lambda _: env, lambda obs, k: policy(params, obs, k), key,
                                   args.episodes)

        print(f"{'#':>3}  {'seed':>4}  {'masked return':>13}  {'compact return':>14}  "
              f"{'compact sizes':<22} {'params (dense)':>16}  hyperparameters")
        for m in cfg["members"]:
            i = m["member"]
            params, masks, _ = member_network(tree, algo.policy_network, i)
            small = compact(params, masks)
            masked_ret = float(np.mean(episodes(params)))
            compact_ret = float(np.mean(episodes(small)))
            sizes = [small[0]["kernel"].shape[0]] + [layer["bias"].shape[0] for layer in small]
            point = ", ".join(f"{k}={v}" for k, v in m["grid_point"].items())
            print(f"{i:>3}  {m['seed']:>4}  {masked_ret:>13.1f}  {compact_ret:>14.1f}  "
                  f"{'x'.join(map(str, sizes)):<22} {dense_param_count(small):>7} "
                  f"({dense_param_count(params)})  {point}")
    return 0


def _eval_video(args) -> int:
    from dspjax.train.video import check_video_path, record_video
    if args.policy != "greedy":
        raise ConfigError(f"policy={args.policy}: a video shows the greedy policy; drop --policy "
                          "or --video")
    path = check_video_path(args.video)
    panels = record_video(args.run_dir, path, args.video_seed, args.env_config, args.env)
    if panels and panels[0]["env_config"]:
        print(f"env_config: {panels[0]['env_config']}")
    for side, p in zip(("left", "right") if len(panels) > 1 else ("",), panels):
        where = f"{side}: " if side else ""
        print(f"{where}member {p['member']} ({p['kind']}), return {p['return']:.1f}, "
              f"{p['parameters']:,} parameters, {p['frames']} frames")
    print(f"video: {path}")
    return 0


def cmd_export(args) -> int:
    from dspjax.train.export import export_policy
    manifest = export_policy(args.run_dir, args.member, args.out, args.format, args.force)
    member, comp = manifest["member"], manifest["compression"]
    point = ", ".join(f"{k}={v}" for k, v in member["grid_point"].items())
    print(f"member {member['index']} (seed {member['seed']}, {point}), return "
          f"{member['final_return']:.1f}: {manifest['network']} "
          f"{'x'.join(map(str, manifest['layer_sizes']))}, {comp['compact_params']:,} of "
          f"{comp['dense_params']:,} parameters ({100 * comp['neurons_removed']:.1f} % of neurons removed)")
    print(f"{manifest['file_format']}: {manifest['path']}\nmanifest: {manifest['manifest_path']}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "report": cmd_report, "eval": cmd_eval, "export": cmd_export}[args.command](args)
    except ConfigError as e:
        return _fail(str(e))
    except HostEnvError as e:  # a bridged environment failed while running: nothing was written
        return _fail(str(e), code=1)


if __name__ == "__main__":
    sys.exit(main())
