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


def member_sharding(num_members: int, devices=None):
    """A ``NamedSharding`` that splits the leading (member) axis over ``devices`` (default: all),
    or ``None`` on one device or when the member count does not divide evenly."""
    devices = jax.devices() if devices is None else list(devices)
    if len(devices) < 2 or num_members % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.asarray(devices), ("members",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("members"))


def run_population(make_train, config, members: Sequence[Member],
                   progress: bool = True) -> PopulationResult:
    """Trains every member in one ``jit(vmap(train))`` call and returns NumPy results."""
    bar = None

    def on_iteration(i):
        nonlocal bar
        if bar is None:  # opened at the first iteration, so compilation does not skew the ETA
            from tqdm.auto import tqdm
            bar = tqdm(total=config.num_iterations, unit="it", dynamic_ncols=True,
                       desc=f"training {len(members)} member{'s' * (len(members) > 1)}")
        if int(i) + 1 > bar.n:
            bar.update(int(i) + 1 - bar.n)

    train = make_train(config, progress_callback=on_iteration if progress else None)
    hp, hp_axes = stack_hparams([m.hparams for m in members])
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([m.seed for m in members], jnp.uint32))
    sharding = member_sharding(len(members))
    if sharding is not None:
        keys = jax.device_put(keys, sharding)
        hp = jax.tree.map(lambda x, axis: x if axis is None else jax.device_put(x, sharding),
                          hp, hp_axes)
    program = jax.jit(jax.vmap(train, in_axes=(0, hp_axes)))
    t0 = time.perf_counter()
    compiled = program.lower(keys, hp).compile()
    t1 = time.perf_counter()
    try:
        state, metrics, eval_returns = jax.block_until_ready(compiled(keys, hp))
    except Exception:
        host_error = take_host_error()  # JAX wraps it; raise the one that names env and step
        if host_error is not None:
            raise host_error from None
        raise
    finally:
        close_host_envs()  # bridged environments' workers end with the run
        if bar is not None:
            bar.close()
    t2 = time.perf_counter()
    to_np = lambda tree: jax.tree.map(np.asarray, tree)
    return PopulationResult(list(members), to_np(metrics), np.asarray(eval_returns),
                            to_np(state), t1 - t0, t2 - t1)
