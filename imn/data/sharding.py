"""Device mesh helpers: a 1-D mesh with a ``data`` axis and batch placement onto it.

Data parallelism only: every batch array is split along its leading (batch) axis over the
``data`` axis and everything else (parameters, optimiser state) is replicated. The same code
runs on 1 CPU, several GPUs or a TPU slice; with several processes (multi-host, after
``jax.distributed.initialize()``) each process feeds only the rows its own devices hold.

Row layout in the multi-process case: a global batch of ``B`` rows is cut into
``mesh.size`` equal shards, device ``d`` of the mesh holding rows
``[d * B / mesh.size, (d + 1) * B / mesh.size)``. :func:`local_batch_rows` says which of
those global rows the current process holds (all of them with one process); the loader
assembles exactly those rows, in that order, and :func:`shard_batch` places them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device, ``jax.devices()``), axis ``data``.

    ``make_mesh(jax.devices()[:1])`` gives a one-device mesh. With several processes the
    default spans the devices of all processes, which is what data parallelism needs.

    The axis is of type ``Auto`` (the compiler propagates shardings, as with ``jax.jit``
    before explicit sharding existed): train and eval steps written for one device then run
    unchanged on the mesh, which ``jax.make_mesh``'s default ``Explicit`` axes do not promise.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_mesh needs at least one device")
    if len(set(devices)) != len(devices):
        raise ValueError(f"make_mesh got a device more than once: {devices}")
    return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def _check_mesh(mesh: Mesh) -> None:
    if mesh.axis_names != (DATA_AXIS,):
        raise ValueError(
            f"expected a 1-D mesh with axis {DATA_AXIS!r} (see make_mesh); got axes {mesh.axis_names}"
        )


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Split the leading axis over the ``data`` mesh axis; other axes whole on each device."""
    _check_mesh(mesh)
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh`` (parameters, optimiser state, scalars)."""
    _check_mesh(mesh)
    return NamedSharding(mesh, PartitionSpec())


def local_batch_rows(mesh: Mesh, global_batch_size: int) -> np.ndarray:
    """Positions, within a global batch of ``global_batch_size`` rows, held by this process.

    Sorted ascending; ``np.arange(global_batch_size)`` with a single process. This is the
    order in which ``jax.make_array_from_process_local_data`` expects the process-local rows.

    Raises:
      ValueError: ``global_batch_size`` is not a multiple of the number of mesh devices.
    """
    _check_divisible(global_batch_size, mesh.size, "the global batch size")
    if jax.process_count() == 1:
        return np.arange(global_batch_size)
    index_map = data_sharding(mesh).addressable_devices_indices_map((global_batch_size,))
    starts = sorted({index[0].start or 0 for index in index_map.values()})
    shard_rows = global_batch_size // mesh.size
    return np.concatenate([np.arange(s, s + shard_rows) for s in starts])


def _check_divisible(rows: int, devices: int, what: str) -> None:
    if rows % devices != 0:
        raise ValueError(
            f"{what} is {rows}, which is not divisible by the {devices} devices of the "
            f"{DATA_AXIS!r} mesh axis; choose a batch size that is a multiple of {devices}"
        )


def shard_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Place each array of ``batch`` on ``mesh``, split along its leading (batch) axis.

    Args:
      batch: name -> array with a leading batch axis, e.g. ``x (B, L, 12)``, ``y (B, K)``,
        ``mask (B,)``. With one process these are the whole batch; with several, this
        process's rows of the global batch (:func:`local_batch_rows`).
      mesh: a mesh from :func:`make_mesh`.
    Returns:
      name -> global ``jax.Array`` of shape ``(B, ...)`` with sharding ``data_sharding(mesh)``;
      each device holds ``B / mesh.size`` consecutive rows.
    Raises:
      ValueError: an array has no leading axis, or its leading size is not a multiple of the
        number of (process-local) devices.
    """
    sharding = data_sharding(mesh)
    multi_process = jax.process_count() > 1
    devices = len(mesh.local_devices) if multi_process else mesh.size
    for name, value in batch.items():
        shape = np.shape(value)
        if len(shape) == 0:
            raise ValueError(f"batch array {name!r} is a scalar; it needs a leading batch axis")
        what = f"the leading size of {name!r}" + (" on this process" if multi_process else "")
        _check_divisible(shape[0], devices, what)
    if multi_process:
        # Each process hands over its own rows; JAX stitches them into one global array.
        return {
            name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
            for name, value in batch.items()
        }
    return {name: jax.device_put(value, sharding) for name, value in batch.items()}
