"""Training checkpoints of a population: what ``dspjax train --resume`` goes on from.

A checkpoint holds, for every member at once (leading member axis), the whole agent state — the
parameters, masks, importance EMAs, optimiser states, replay buffers, RNG keys and, for pure-JAX
environments, the environment state — plus every metric recorded so far and the iteration count.
Orbax's ``CheckpointManager`` writes each one atomically (a temporary directory renamed when
complete, in a background thread) and keeps the last ``keep``; a step directory is named by the
number of iterations done.

``restore_latest`` goes from the newest checkpoint back: one that cannot be read (corrupted,
truncated) is reported, moved aside to ``checkpoints.unreadable/`` (nothing is deleted) and the
one before it used.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import jax
import numpy as np

CHECKPOINT_FORMAT = 1  # bumped whenever what a checkpoint holds changes: older ones are refused


@dataclasses.dataclass
class Restored:
    iteration: int            # iterations done when it was saved
    state: object             # the agent state (NumPy leaves, member axis first)
    metrics: dict             # name -> (members, num_iterations), valid up to ``iteration``
    unreadable: list          # (iteration, reason) of newer checkpoints that could not be read


class TrainingCheckpoints:
    """The checkpoints of one run, in ``directory`` (``RUN_DIR/checkpoints``)."""

    def __init__(self, directory, keep: int = 2):
        import orbax.checkpoint as ocp
        self.directory = Path(directory).absolute()
        self._ocp = ocp
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "history": ocp.StandardCheckpointHandler(),
                           "progress": ocp.JsonCheckpointHandler()})

    def iterations(self) -> list[int]:
        """Iteration counts of the checkpoints on disk, oldest first."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def save(self, iteration: int, state, metrics: dict) -> None:
        """Saves in the background; the previous save is finished first. ``metrics`` is copied,
        so the caller may go on filling its arrays."""
        ocp = self._ocp
        self._manager.save(iteration, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            history=ocp.args.StandardSave({k: np.array(v) for k, v in metrics.items()}),
            progress=ocp.args.JsonSave({"iteration": int(iteration), "format": CHECKPOINT_FORMAT})))

    def wait(self) -> None:
        """Blocks until every save has reached the disk."""
        self._manager.wait_until_finished()

    def restore_latest(self, abstract_state, abstract_metrics: dict,
                       sharding=None) -> Restored | None:
        """The newest readable checkpoint restored into the structure of ``abstract_state`` and
        ``abstract_metrics`` (``jax.ShapeDtypeStruct`` trees), or ``None`` when there is none.
        Raises ``IncompatibleCheckpoint`` when a readable one does not fit that structure.
        ``sharding``: the state comes back as jax.Arrays laid out by it (a population over several
        processes: each process reads its own members' shards) instead of NumPy arrays."""
        ocp = self._ocp
        restore_target = lambda tree, sharding=None: jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
        unreadable = []
        for iteration in reversed(self.iterations()):
            try:
                progress = self._manager.restore(iteration, args=ocp.args.Composite(
                    progress=ocp.args.JsonRestore()))["progress"]
            except Exception as e:  # noqa: BLE001 - an unreadable checkpoint is reported, not fatal
                unreadable.append((iteration, _reason(e)))
                continue
            if progress.get("format") != CHECKPOINT_FORMAT:
                raise IncompatibleCheckpoint(
                    f"checkpoint at iteration {iteration} has format {progress.get('format')}, this "
                    f"dspjax reads format {CHECKPOINT_FORMAT}")
            try:
                saved = self._manager.item_metadata(iteration)
                mismatch = (_first_difference(saved["state"], abstract_state)
                            or _first_difference(saved["history"], abstract_metrics))
            except Exception as e:  # noqa: BLE001
                unreadable.append((iteration, _reason(e)))
                continue
            if mismatch:
                raise IncompatibleCheckpoint(f"checkpoint at iteration {iteration} does not fit this "
                                             f"run's training state ({mismatch})")
            try:
                items = self._manager.restore(iteration, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(restore_target(abstract_state, sharding)),
                    history=ocp.args.StandardRestore(restore_target(abstract_metrics))))
            except Exception as e:  # noqa: BLE001
                unreadable.append((iteration, _reason(e)))
                continue
            self._set_aside([i for i, _ in unreadable])
            to_np = lambda tree: jax.tree.map(np.asarray, tree)
            state = items["state"] if sharding is not None else to_np(items["state"])
            return Restored(iteration, state, to_np(items["history"]), unreadable)
        self._set_aside([i for i, _ in unreadable])
        return Restored(0, None, None, unreadable) if unreadable else None

    def _set_aside(self, iterations) -> None:
        """Moves unreadable checkpoints out of the manager's directory (kept for inspection), so
        the run can save those iteration counts again."""
        from dspjax.train.distributed import barrier, is_primary
        if not iterations:
            return
        barrier("dspjax-set-aside-start")
        if not is_primary():  # process 0 moves them; the others wait
            barrier("dspjax-set-aside")
            self._manager.reload()
            return
        aside = self.directory.parent / (self.directory.name + ".unreadable")
        aside.mkdir(exist_ok=True)
        for iteration in iterations:
            source = self.directory / str(iteration)
            if source.exists():
                target = aside / str(iteration)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(source, target)
        barrier("dspjax-set-aside")
        self._manager.reload()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


class IncompatibleCheckpoint(Exception):
    """A readable checkpoint that another version or configuration of dspjax wrote."""


def _leaves_by_path(tree) -> dict:
    """``path -> (shape, dtype)`` of every array leaf, paths as plain names
    ("params/actor/params/Dense_0/kernel") so that a dataclass field, a dict key and a list index
    saved by orbax compare equal."""
    tree = getattr(tree, "tree", tree)  # orbax's TreeMetadata wraps the tree
    def name(entry):
        for attr in ("name", "key", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))[0]
    return {"/".join(name(e) for e in path): (tuple(x.shape), np.dtype(x.dtype)) for path, x in leaves}


def _first_difference(saved, expected) -> str | None:
    """What first differs between a saved tree's metadata and the expected abstract tree."""
    saved, expected = _leaves_by_path(saved), _leaves_by_path(expected)
    for path in sorted(set(saved) | set(expected)):
        if path not in saved:
            return f"{path} is not in the checkpoint"
        if path not in expected:
            return f"the checkpoint has {path}, which this run does not"
        if saved[path] != expected[path]:
            (s_shape, s_dtype), (e_shape, e_dtype) = saved[path], expected[path]
            return f"{path}: saved {s_dtype}{list(s_shape)}, this run has {e_dtype}{list(e_shape)}"
    return None


def _reason(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"
