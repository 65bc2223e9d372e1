"""A population of hyperparameters x seeds trained in one compiled program.

A population is the product of a grid of hyperparameter values and a number of seeds. All members
run in ``jit(vmap(train))``: hyperparameters that vary are mapped leaves, those shared by every
member stay unmapped (so a ``lax.switch`` on a shared discrete choice runs only its own branch).
Members are independent: one that diverges is flagged (``diverged``) and freezes, the others are
untouched. With several devices the member axis is split over a one-axis ``jax.sharding.Mesh``
(``"members"``), so each device trains its share of the population in the same program.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dspjax.envs import close_host_envs, take_host_error
from dspjax.hparams import ConfigError, parse_value, specs
from dspjax.pruning import METHOD_PRESETS, DSPHParams


def hparam_specs(hp_cls) -> dict[str, tuple[str, dict]]:
    """Flat name → (path, metadata) of every sweepable field, the DSP ones included.
    Paths are ``"lr"`` or ``"dsp.lam"``."""
    out = {name: (name, meta) for name, meta, _ in specs(hp_cls)}
    out.update({name: (f"dsp.{name}", meta) for name, meta, _ in specs(DSPHParams)})
    return out


def set_hparam(hp, name: str, value):
    """A copy of ``hp`` with the flat-named field ``name`` set (``method`` applies a preset)."""
    if name == "method":
        for field, v in METHOD_PRESETS[value].items():
            hp = set_hparam(hp, field, v)
        return hp
    path, _ = hparam_specs(type(hp))[name]
    if path.startswith("dsp."):
        return hp.replace(dsp=hp.dsp.replace(**{path[4:]: value}))
    return hp.replace(**{path: value})


def get_hparam(hp, name: str):
    path, _ = hparam_specs(type(hp))[name]
    return getattr(hp.dsp, path[4:]) if path.startswith("dsp.") else getattr(hp, path)


def parse_assignment(hp_cls, name: str, text: str):
    """Parses one ``name=value`` text into the field's value; ConfigError names the field."""
    if name == "method":
        if text not in METHOD_PRESETS:
            raise ConfigError(f"method={text!r}: must be one of {', '.join(METHOD_PRESETS)}")
        return text
    table = hparam_specs(hp_cls)
    if name not in table:
        raise ConfigError(f"unknown hyperparameter {name!r}; known: method, {', '.join(table)}")
    return parse_value(name, table[name][1], text)


def describe_member(hp, names: Sequence[str]) -> dict[str, Any]:
    """Readable values of the named hyperparameters (choice names, not integer codes)."""
    out = {}
    table = hparam_specs(type(hp))
    for name in names:
        if name == "method":
            continue
        value = get_hparam(hp, name)
        meta = table[name][1]
        out[name] = meta["choices"][int(value)] if meta["choices"] else float(value) \
            if not meta["integer"] else int(value)
    return out


@dataclasses.dataclass
class Member:
    """One population member: its grid point, seed and full hyperparameters."""
    index: int
    seed: int
    grid_point: dict          # the swept names and their (readable) values
    hparams: Any


def build_population(base, sweep: dict[str, Sequence], seeds: Sequence[int]) -> list[Member]:
    """Grid product of ``sweep`` (name → values, ``method`` first) times ``seeds``; validates every
    member before anything is compiled (ConfigError names the field).

    A method's preset is applied last, so the fields that define a baseline win over the other
    values: ``{"method": ["dense", "dsp"], "lam": [2e-5]}`` gives a dense member with λ = 0 and no
    pruning beside a DSP member with λ = 2e-5 (the grid point records the values each member got)."""
    names = sorted(sweep, key=lambda n: n != "method")
    members = []
    for values in itertools.product(*(sweep[n] for n in names)):
        hp = base
        for n, v in sorted(zip(names, values), key=lambda nv: nv[0] == "method"):
            hp = set_hparam(hp, n, v)
        hp.validate()
        point = dict(zip(names, values))
        if "method" not in point:
            point = describe_member(hp, names)
        else:
            point = {"method": point["method"], **describe_member(hp, [n for n in names if n != "method"])}
        for seed in seeds:
            members.append(Member(len(members), int(seed), point, hp))
    return members


def stack_hparams(hparams: Sequence):
    """Batched hyperparameters and the matching ``vmap`` in_axes (None where all agree)."""
    leaves = [jax.tree.leaves(h) for h in hparams]
    treedef = jax.tree.structure(hparams[0])
    stacked, axes = [], []
    for column in zip(*leaves):
        values = np.asarray(column)
        dtype = np.int32 if np.issubdtype(values.dtype, np.integer) else np.float32
        if np.all(values == values[0]):
            stacked.append(jnp.asarray(values[0], dtype))
            axes.append(None)
        else:
            stacked.append(jnp.asarray(values, dtype))
            axes.append(0)
    return jax.tree.unflatten(treedef, stacked), jax.tree.unflatten(treedef, axes)


@dataclasses.dataclass
class PopulationResult:
    members: list
    metrics: dict              # name → (P, iterations) numpy arrays
    eval_returns: np.ndarray   # (P, eval_episodes)
    final_state: Any           # batched agent state (numpy leaves)
    compile_seconds: float
    run_seconds: float
    resumed_from: int = 0      # iterations a checkpoint had done when this run went on from it


class TrainingStopped(Exception):
    """Training stopped between two segments because ``should_stop()`` said so; the checkpoint
    of ``iteration`` (if checkpointing) holds everything done."""

    def __init__(self, iteration: int, num_iterations: int):
        super().__init__(f"stopped after iteration {iteration} of {num_iterations}")
        self.iteration, self.num_iterations = iteration, num_iterations


def member_sharding(num_members: int, devices=None):
    """A ``NamedSharding`` that splits the leading (member) axis over ``devices`` (default: all),
    or ``None`` on one device or when the member count does not divide evenly."""
    devices = jax.devices() if devices is None else list(devices)
    if len(devices) < 2 or num_members % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.asarray(devices), ("members",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("members"))


DEFAULT_SEGMENTS = 10


def default_segment_length(num_iterations: int) -> int:
    """Iterations per segment when none is given: a tenth of the run (rounded up)."""
    return max(1, -(-num_iterations // DEFAULT_SEGMENTS))


def _wait_interruptibly(tree):
    """``block_until_ready`` that leaves the main thread in Python while the program runs, so
    signal handlers (Ctrl-C, SIGTERM) run at once instead of when the program ends."""
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "is_ready")]
    while not all(x.is_ready() for x in leaves):
        time.sleep(0.02)
    return jax.block_until_ready(tree)


def _no_progress(iteration):
    pass


def _raise_host_error_first():
    host_error = take_host_error()  # JAX wraps it; raise the one that names env and step
    if host_error is not None:
        raise host_error from None


def run_population(make_train, config, members: Sequence[Member], progress: bool = True,
                   segment_length: int | None = None, checkpoints=None,
                   should_stop=None, on_segment=None) -> PopulationResult:
    """Trains every member in one ``jit(vmap(...))`` program and returns NumPy results.

    The iterations run in segments of ``segment_length`` (default: a tenth of the run), one
    compiled program called again and again, computing exactly what one long scan computes.
    Between segments: ``checkpoints`` (a ``TrainingCheckpoints``) saves the population state,
    ``on_segment(iteration, metrics)`` sees the metrics so far, and ``should_stop()`` may stop the
    run (``TrainingStopped``, after the checkpoint). With ``checkpoints`` holding a checkpoint of
    this run, training goes on from the newest readable one. ``progress``: a progress display
    (True: a bar on a terminal, a line every few percent otherwise; or a callable
    ``(iteration, num_iterations)``)."""
    from dspjax.agents.loop import split_train_key
    from dspjax.train.distributed import any_process, is_primary, member_layout
    from dspjax.train.progress import make_progress

    n_iter = config.num_iterations
    length = default_segment_length(n_iter) if segment_length is None else int(segment_length)
    if length < 1:
        raise ConfigError(f"segment_length={length}: must be an integer >= 1")
    show = make_progress(progress if is_primary() else False, n_iter,
                         f"training {len(members)} member{'s' * (len(members) > 1)}")
    # Every process compiles the same program: the others' progress callback does nothing.
    callback = show.update if show else (_no_progress if progress and jax.process_count() > 1 else None)
    train = make_train(config, progress_callback=callback)
    layout = member_layout(len(members), one_device_per_process=train.restart_env is not None)
    running = layout.pad(list(members))  # inert copies of member 0 fill the mesh (dropped)
    hp, hp_axes = stack_hparams([m.hparams for m in running])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([m.seed for m in running], jnp.uint32))
    if layout.manual:  # split on the host, then laid over every process's devices
        k_init, k_eval = (layout.place(np.asarray(k)) for k in jax.vmap(split_train_key)(keys))
    else:
        k_init, k_eval = jax.vmap(split_train_key)(layout.place(keys))
    hp = jax.tree.map(lambda x, axis: layout.place(x, mapped=axis is not None), hp, hp_axes)

    init = layout.compile(train.init, (0, hp_axes))
    segment = layout.compile(train.segment(length), (0, hp_axes, None))
    evaluate = layout.compile(train.evaluate, (0, 0))
    abstract_state = layout.abstract(jax.eval_shape(init, k_init, hp))
    abstract_metrics = jax.eval_shape(segment, abstract_state, hp, 0)[1]
    metrics = {k: np.zeros((len(members), n_iter), v.dtype) for k, v in abstract_metrics.items()}

    t0 = time.perf_counter()
    compiled_init = init.lower(k_init, hp).compile()
    compiled_segment = segment.lower(abstract_state, hp, 0).compile()
    compiled_eval = evaluate.lower(abstract_state, k_eval).compile()
    t1 = time.perf_counter()

    done, state = 0, None
    if checkpoints is not None:
        restored = checkpoints.restore_latest(
            abstract_state, {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in metrics.items()},
            sharding=layout.sharding if layout.manual else None)
        if restored is not None:
            for iteration, reason in restored.unreadable:
                print(f"dspjax: checkpoint at iteration {iteration} cannot be read ({reason}); "
                      "moved to checkpoints.unreadable/, using the one before it", file=sys.stderr)
            if restored.state is not None:
                done, metrics = restored.iteration, restored.metrics
                print(f"dspjax: going on from the checkpoint at iteration {done} of {n_iter}",
                      file=sys.stderr)
                state = restored.state if layout.manual else jax.tree.map(
                    lambda x: layout.place(jnp.asarray(x)), restored.state)
    resumed_from = done
    try:
        if state is None:
            state = compiled_init(k_init, hp)
        elif train.restart_env is not None:  # host environments restart from a fresh reset
            restart = layout.compile(train.restart_env, (0, 0))
            fold = layout.compile(jax.random.fold_in, (0, None))
            state = restart(state, fold(k_init, done))
        if show:
            show.start(done)
        while done < n_iter:
            if should_stop is not None and any_process(should_stop()):
                raise TrainingStopped(done, n_iter)
            state, seg_metrics = compiled_segment(state, hp, done)
            seg_metrics = layout.to_host(_wait_interruptibly(seg_metrics))
            count = min(length, n_iter - done)
            for k, v in seg_metrics.items():
                metrics[k][:, done:done + count] = v[:, :count]
            done += count
            if checkpoints is not None:
                checkpoints.save(done, state, metrics)
            if on_segment is not None and is_primary():
                on_segment(done, metrics)
        if should_stop is not None and any_process(should_stop()):
            raise TrainingStopped(done, n_iter)
        eval_returns = _wait_interruptibly(compiled_eval(state, k_eval))
    except TrainingStopped:
        raise
    except Exception:
        _raise_host_error_first()
        raise
    finally:
        if checkpoints is not None:
            checkpoints.wait()
        close_host_envs()  # bridged environments' workers end with the run
        if show:
            show.close()
    t2 = time.perf_counter()
    return PopulationResult(list(members), metrics, layout.to_host(eval_returns),
                            layout.to_host(state), t1 - t0, t2 - t1, resumed_from)
