"""``dspjax export``: one member's compact policy network as a file that ships.

The policy network of the run's agent (PPO's ``actor``, DQN's ``q``) of one member, pruned neurons
physically removed (``dspjax.pruning.compact``, METHOD.md §6), written as

- ``npz``: ``layer0_kernel``, ``layer0_bias``, ... read back by ``dspjax.policy_file.load_policy``
  with NumPy alone, or
- ``onnx``: the same network as an ONNX graph (Gemm/Add and the activation) through ``jax2onnx``
  (``pip install dspjax[onnx]``), input ``observation`` ``(batch, n_in)``, output ``action_scores``,

and beside it the JSON manifest ``<file>.json`` (``policy_manifest``). Every check runs before the
checkpoint is read; an existing file is never overwritten unless ``force``, and a failed write
leaves nothing behind (files are written under a temporary name, then renamed).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np

import dspjax
from dspjax.envs import gymnax_env_ids
from dspjax.hparams import ConfigError
from dspjax.policy_file import (
    FORMAT,
    FORMAT_VERSION,
    MEAN_ACTION,
    SQUASHED_MEAN_AND_LOG_STD,
    layer_names,
    manifest_path,
)
from dspjax.pruning import compact, compression_stats, dense_param_count, param_masks
from dspjax.train.algos import action_space_of
from dspjax.train.run_dir import load_run, member_network, run_algo

EXPORT_FORMATS = {".npz": "npz", ".onnx": "onnx"}
ONNX_INPUT, ONNX_OUTPUT = "observation", "action_scores"
ONNX_OPSET = 17  # Gemm, Add, Tanh, Relu: any ONNX runtime of the last years reads opset 17


def onnx_available() -> bool:
    """Whether the ``onnx`` extra (jax2onnx and onnx) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("jax2onnx", "onnx"))


def read_summary(run_dir) -> dict:
    """A run's ``summary.json``, after checking that the run finished: ConfigError if it has no
    final ``checkpoint/`` (interrupted before the end) or no readable summary."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"run_dir={str(run_dir)!r}: no config.json there; not a dspjax run")
    for name in ("checkpoint", "summary.json"):
        if not (run_dir / name).exists():
            kind = "final checkpoint/" if name == "checkpoint" else "summary.json"
            raise ConfigError(f"run_dir={str(run_dir)!r}: has no {kind} (the run did not finish); "
                              "only a finished run can be exported")
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"run_dir={str(run_dir)!r}: summary.json cannot be read "
                          f"({type(e).__name__}: {e})") from None


def choose_member(summary: dict, member: int | None) -> int:
    """``member`` when it is one of the run's, else (``None``) the best: the highest final return
    among members that did not diverge (the lowest index on a tie)."""
    records = summary["members"]
    if member is not None:
        if not 0 <= member < len(records):
            raise ConfigError(f"member={member}: must be in 0..{len(records) - 1} (the run has "
                              f"{len(records)} member(s))")
        return member
    finite = [r for r in records if not r.get("diverged") and math.isfinite(r["final_return"])]
    if not finite:
        raise ConfigError("member: every member of the run diverged; choose one with --member K")
    return max(finite, key=lambda r: (r["final_return"], -r["member"]))["member"]


def export_path(run_dir, member: int, out=None, fmt: str | None = None, force: bool = False) -> Path:
    """Where the export goes (default ``RUN_DIR/export/member<K>.<fmt>``), checked: the suffix
    names the format, and neither the file nor its manifest exists unless ``force``."""
    if fmt is not None and fmt not in EXPORT_FORMATS.values():
        raise ConfigError(f"format={fmt!r}: must be one of {', '.join(EXPORT_FORMATS.values())}")
    if out is None:
        path = Path(run_dir) / "export" / f"member{member}.{fmt or 'npz'}"
    else:
        path = Path(out)
        if path.suffix not in EXPORT_FORMATS:
            raise ConfigError(f"out={str(path)!r}: the file name must end in "
                              f"{' or '.join(EXPORT_FORMATS)}")
        if fmt is not None and EXPORT_FORMATS[path.suffix] != fmt:
            raise ConfigError(f"out={str(path)!r}: a {fmt} file must end in .{fmt}")
    for p in (path, manifest_path(path)):
        if p.is_dir():
            raise ConfigError(f"out={str(p)!r}: is a directory; give a file name")
        if p.exists() and not force:
            raise ConfigError(f"out={str(p)!r}: exists; nothing was overwritten (--force replaces it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"out={str(path)!r}: cannot create its directory ({type(e).__name__}: "
                          f"{e.strerror or e})") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"out={str(path)!r}: its directory is not writable")
    return path


def compact_policy(params, neuron_masks, weight_masks):
    """The compact network as ``[(kernel, bias), ...]`` float32 NumPy arrays: every masked
    parameter zeroed (unstructured weight masks included), then the pruned neurons removed."""
    masks = param_masks(params, neuron_masks, weight_masks)
    masked = tuple({k: np.asarray(layer[k]) * np.asarray(m[k]) for k in ("kernel", "bias")}
                   for layer, m in zip(params, masks))
    return [(np.asarray(layer["kernel"], np.float32), np.asarray(layer["bias"], np.float32))
            for layer in compact(masked, neuron_masks)]


def _env_config(config) -> dict | str:
    """The config a gymnasium env is made with (dspjax's defaults under the run's own), or the
    run's raw ``env_config`` text where that cannot be resolved (e.g. a file since moved)."""
    if not config.env_config and config.env_id in gymnax_env_ids():
        return {}
    try:
        from dspjax.train.video import merged_env_config
        return merged_env_config(config.env_id, config.env_config)
    except Exception:  # noqa: BLE001 - the manifest then keeps what the run recorded
        return config.env_config


# What the greedy box action is, for each kind of box outputs (``Algo.box_outputs``).
BOX_GREEDY_ACTIONS = {
    MEAN_ACTION: "the outputs clipped to the action space's low and high",
    SQUASHED_MEAN_AND_LOG_STD: "low + (tanh(outputs[:dims]) + 1) / 2 * (high - low), the first dims "
                               "outputs being the Gaussian's mean before tanh (the other dims its log std's "
                               "pre-activations)",
}


def policy_manifest(cfg: dict, summary: dict, member: int, net: str, layers, stats: dict,
                    full_params, path: Path, fmt: str) -> dict:
    """The JSON manifest of an exported policy: what it is, where it came from, how small it is
    (``full_params``: the member's network before compaction, for the dense figures)."""
    algo, config = run_algo(cfg)
    space = action_space_of(config)
    record = summary["members"][member]
    sizes = [int(layers[0][0].shape[0])] + [int(b.shape[0]) for _, b in layers]
    member_cfg = next((m for m in cfg["members"] if m["member"] == member), {})
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "file": path.name, "file_format": fmt,
        "dspjax_version": dspjax.__version__,
        "network": net, "layer_sizes": sizes, "activation": config.activation,
        "observation_size": sizes[0],
        "action_space": space.to_json(),
        "outputs": ("logits" if algo.sampled_policy is not None else "q_values") if space.is_discrete
        else algo.box_outputs,
        "greedy_action": "argmax of the outputs" if space.is_discrete
        else BOX_GREEDY_ACTIONS[algo.box_outputs],
        "compression": {
            "dense_layer_sizes": [int(full_params[0]["kernel"].shape[0])]
            + [int(layer["bias"].shape[0]) for layer in full_params],
            "dense_params": dense_param_count(full_params),
            "compact_params": int(sum(k.size + b.size for k, b in layers)),
            **{k: float(v) for k, v in stats.items()},
        },
        "member": {"index": member, "seed": record["seed"], "grid_point": record["grid_point"],
                   "final_return": record["final_return"], "hparams": member_cfg.get("hparams")},
        "env": {"id": config.env_id, "env_config": _env_config(config)},
        "agent": {"algo": algo.name, "config": cfg["config"]},
    }
    if fmt == "npz":
        manifest["arrays"] = layer_names(len(layers))
    else:
        manifest["onnx"] = {"input": ONNX_INPUT, "input_shape": ["batch", sizes[0]],
                            "output": ONNX_OUTPUT, "opset": ONNX_OPSET}
    return manifest


def _as_params(layers):
    return tuple({"kernel": k, "bias": b} for k, b in layers)


def npz_bytes(layers) -> bytes:
    """The ``.npz`` file of ``layers`` (uncompressed: a few KB, read without decompression)."""
    import io
    buf = io.BytesIO()
    np.savez(buf, **{f"layer{i}_{part}": a for i, layer in enumerate(layers)
                     for part, a in zip(("kernel", "bias"), layer)})
    return buf.getvalue()


def onnx_bytes(layers, activation: str) -> bytes:
    """The serialized ONNX model of the MLP ``layers`` (dynamic batch) through jax2onnx."""
    from dspjax.pruning import chain_apply
    params = _as_params(layers)
    logging.getLogger("jax2onnx").setLevel(logging.ERROR)  # plugins for other libraries' layers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jax2onnx's use of jax.core names
        from jax2onnx import to_onnx
        model = to_onnx(lambda obs: chain_apply(params, obs, activation)[0],
                        [("batch", layers[0][0].shape[0])], model_name="dspjax_policy", opset=ONNX_OPSET,
                        input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT])
    return model.SerializeToString()


def _write_all(files: dict[Path, bytes]) -> None:
    """Writes every file under a temporary name, then renames them all into place."""
    tmp = {path: path.with_name(f".{path.name}.tmp") for path in files}
    try:
        for path, data in files.items():
            tmp[path].write_bytes(data)
        for path in files:
            os.replace(tmp[path], path)
    except OSError as e:
        for t in tmp.values():
            t.unlink(missing_ok=True)
        raise ConfigError(f"out={str(next(iter(files)))!r}: cannot be written ({type(e).__name__}: "
                          f"{e.strerror or e})") from None


def export_policy(run_dir, member: int | None = None, out=None, fmt: str | None = None,
                  force: bool = False) -> dict:
    """Exports one member's compact policy network (default: the best member) and returns its
    manifest (with ``path`` and ``manifest_path`` added). ConfigError for any bad input."""
    summary = read_summary(run_dir)
    member = choose_member(summary, member)
    fmt = fmt or (EXPORT_FORMATS.get(Path(out).suffix) if out is not None else None) or "npz"
    if fmt == "onnx" and not onnx_available():
        raise ConfigError("format=onnx: needs the onnx extra (jax2onnx); pip install dspjax[onnx]")
    path = export_path(run_dir, member, out, fmt, force)
    cfg, tree = load_run(run_dir)
    algo, config = run_algo(cfg)
    net = algo.policy_network
    params, neuron_masks, weight_masks = member_network(tree, net, member)
    layers = compact_policy(params, neuron_masks, weight_masks)
    stats = compression_stats(params, neuron_masks, weight_masks)
    manifest = policy_manifest(cfg, summary, member, net, layers, stats, params, path, fmt)
    data = npz_bytes(layers) if fmt == "npz" else onnx_bytes(layers, config.activation)
    _write_all({path: data, manifest_path(path): (json.dumps(manifest, indent=2) + "\n").encode()})
    return {**manifest, "path": str(path), "manifest_path": str(manifest_path(path))}
