"""A population over many processes (hosts): JAX's multi-process runtime, one global mesh.

``initialize`` starts ``jax.distributed`` (before anything touches a backend); from then on
``jax.devices()`` lists every process's devices and every process runs the same program.
``member_layout`` lays the member axis over one global one-axis mesh (``"members"``), padding a
member count that does not divide the mesh with inert copies of member 0 whose results are
dropped (in one process with several devices too). Across processes the population runs through
``jax.shard_map``: each device vmaps its own members, so a host-bridged environment's callback
sees (and its worker pool steps) only the members of the process it runs in. ``to_host``
gathers results to every process (``process_allgather``); ``any_process`` and ``barrier`` make
decisions and steps that every process takes together.

Where the coordinator and this process's place come from, first given first:
the ``--coordinator``/``--num-processes``/``--process-id`` arguments, the environment variables
``JAX_COORDINATOR_ADDRESS`` (read by JAX itself), ``DSPJAX_NUM_PROCESSES`` and
``DSPJAX_PROCESS_ID``, and last JAX's own cluster detection (SLURM, Open MPI, Kubernetes, Cloud
TPU) for what is still unset. On CPU the processes' collectives use gloo (JAX's default,
``jax_cpu_collectives_implementation``).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from dspjax.hparams import ConfigError

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "DSPJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "DSPJAX_PROCESS_ID"
AXIS = "members"


def _env_int(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: must be a whole number") from None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """``jax.distributed.initialize`` with the arguments, else the environment variables, else
    JAX's cluster detection. Must run before anything touches a JAX backend."""
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"num_processes={num_processes}: must be an integer >= 1")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(f"process_id={process_id}: must be in 0..{num_processes - 1}")
    if coordinator is not None and ":" not in coordinator:
        raise ConfigError(f"coordinator={coordinator!r}: expected HOST:PORT")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    except (ValueError, TypeError) as e:  # nothing given and no cluster detected
        raise ConfigError(f"distributed: {e} (give --coordinator HOST:PORT --num-processes N "
                          f"--process-id I, or set {ENV_COORDINATOR}, {ENV_NUM_PROCESSES} and "
                          f"{ENV_PROCESS_ID})") from None


def is_primary() -> bool:
    """Whether this is process 0, the one that writes the run directory."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Every process waits here until all have come (nothing on one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any process (every process gets the same answer)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.asarray(bool(flag)))))


@dataclasses.dataclass(frozen=True)
class MemberLayout:
    """Where the members of a population live.

    ``padded`` members run (a multiple of the mesh size); the first ``num_members`` are the real
    ones. ``sharding`` splits the member axis (``None``: one device). ``manual``: the population
    spans several processes and runs through ``shard_map``."""
    num_members: int
    padded: int
    sharding: jax.sharding.NamedSharding | None
    manual: bool

    def pad(self, items: list) -> list:
        """``items`` (one per member) with copies of the first for the inert members."""
        return list(items) + [items[0]] * (self.padded - len(items))

    def place(self, x, mapped: bool = True):
        """A host array (member axis first if ``mapped``) on the layout's devices."""
        if self.sharding is None:
            return x
        if not self.manual:
            return jax.device_put(x, self.sharding) if mapped else x
        x = np.asarray(x)
        sharding = self.sharding if mapped else self.replicated
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    def abstract(self, tree):
        """``tree``'s ``ShapeDtypeStruct`` leaves (member axis first) with the layout's sharding,
        so that a program lowered from them takes the arrays the layout places."""
        if self.sharding is None:
            return tree
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.sharding),
                            tree)

    @property
    def replicated(self):
        return jax.sharding.NamedSharding(self.sharding.mesh, jax.sharding.PartitionSpec())

    def compile(self, fn, in_axes):
        """``jit(vmap(fn, in_axes))``; across processes ``jit(shard_map(vmap(fn)))`` so each
        device maps over its own members only. Outputs have the member axis first."""
        mapped = jax.vmap(fn, in_axes=in_axes)
        if not self.manual:  # outputs stay split like the inputs (the partitioner may not keep them)
            return jax.jit(mapped, out_shardings=self.sharding)
        P = jax.sharding.PartitionSpec
        specs = jax.tree.map(lambda axis: P() if axis is None else P(AXIS), in_axes,
                             is_leaf=lambda x: x is None)
        return jax.jit(jax.shard_map(mapped, mesh=self.sharding.mesh, in_specs=specs,
                                     out_specs=P(AXIS), check_vma=False))

    def to_host(self, tree):
        """NumPy copies of ``tree``'s arrays, gathered from every process, padding dropped."""
        if self.manual:
            from jax.experimental import multihost_utils
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(lambda x: np.asarray(x)[:self.num_members], tree)


def member_layout(num_members: int, one_device_per_process: bool = False) -> MemberLayout:
    """The layout of ``num_members`` members over ``jax.devices()``: one mesh of every device
    (``one_device_per_process``: across processes, the first of each, for host-bridged
    environments, whose worker pool serves one program per process), the member count padded to
    a multiple of it. In one process the member axis is split by ``jit``'s partitioner; across
    processes the population runs through ``shard_map``."""
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    manual = jax.process_count() > 1
    if manual and one_device_per_process:
        firsts = {}
        for d in devices:
            firsts.setdefault(d.process_index, d)
        devices = list(firsts.values())
    if len(devices) < 2:
        return MemberLayout(num_members, num_members, None, False)
    mesh = jax.sharding.Mesh(np.asarray(devices), (AXIS,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))
    padded = -(-num_members // len(devices)) * len(devices)
    return MemberLayout(num_members, padded, sharding, manual)
