"""Batches for training and evaluation: seeded epochs, random crops, device placement.

The trainer's loop is::

    loader = BatchLoader(train.signals, train.labels, batch_size=64, mesh=mesh, seed=0)
    for epoch in range(start_epoch, num_epochs):
        for batch in loader.epoch(epoch):
            state, metrics = train_step(state, batch)

Each batch is a dict of global ``jax.Array`` s split over the ``data`` axis of ``mesh``:

  ``x``     float32 ``(B, L', 12)``: signals (``L' = crop_length`` when cropping, else ``L``).
  ``y``     float32 ``(B, K)``: labels.
  ``index`` int32 ``(B,)``: positions of the rows in the loader's arrays; -1 for padding.
  ``mask``  float32 ``(B,)``: 1 for real rows, 0 for padding.

Determinism: everything random in epoch ``e`` (the order and the crop offsets) comes from
``np.random.default_rng([seed, e])`` and nothing else, so a run resumed at epoch ``e`` sees
exactly the batches of an uninterrupted run. (Resuming mid-epoch is not supported: the trainer
checkpoints at epoch ends.)

Normalisation: the loader expects signals that are already normalised (normalise whole arrays
once with :mod:`imn.data.normalize`: cheaper than redoing it every epoch). For arrays too
large to copy (a memory-mapped 500 Hz cache) ``zscore=True`` applies the per-record z-score
of :func:`imn.data.normalize.zscore_per_record` on the fly, to the whole record before
cropping, so the result equals pre-normalising.

Evaluation: ``shuffle=False, drop_remainder=False`` visits every record exactly once; the last
batch is padded to ``B`` rows (``mask`` 0, ``index`` -1, ``x`` and ``y`` zero) so that every
batch has the same shape and a jitted step compiles once. For the PTB-XL benchmark's windowed
test (2.5 s windows, 1.25 s stride, max over windows) pass ``sliding_windows(signals, 250, 125)``
as the signals: batches then carry ``x`` of shape ``(B, W, 250, 12)``, only the batch's windows
are ever copied, and the eval step folds ``W`` into the batch, runs the model and reduces the
outputs with :func:`aggregate_windows`.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from imn.data.dataset import EcgDataError, EcgDataset
from imn.data.normalize import zscore_per_record
from imn.data.sharding import local_batch_rows, make_mesh, shard_batch

PREFETCH_THREAD_NAME = "imn-prefetch"


# ---------------------------------------------------------------------------- prefetching
class _Raised:
    """Carries an exception from the producer thread to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def prefetch(iterable: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``iterable`` in a background thread, keeping up to ``depth`` items ready.

    The producer runs ahead of the consumer by at most ``depth`` items (a bounded queue), so
    host work and host->device copies overlap with the consumer's (asynchronously dispatched)
    compute without unbounded memory. An exception raised by ``iterable`` is re-raised in the
    consumer, with its original traceback, at the position where the failed item would have
    been. When the consumer stops early (``break``, an exception, or ``close()`` on the
    returned generator) the thread is told to stop and is joined before control returns.

    The thread starts at the first ``next()``: a generator that is never iterated starts none.
    ``depth=0`` iterates synchronously in the caller's thread.
    """
    if depth < 0:
        raise ValueError(f"prefetch depth must be >= 0, got {depth}")
    if depth == 0:
        yield from iterable
        return

    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        # A plain blocking put could wait forever once the consumer has gone; poll the stop flag.
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(iterable)
        try:
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 -- handed to the consumer, not swallowed
            put(_Raised(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=PREFETCH_THREAD_NAME, daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


# ---------------------------------------------------------------------------- the loader
class BatchLoader:
    """Fixed-size batches of ``(signals, labels)`` for one split, placed on a device mesh.

    Args:
      signals: ``(N, L, 12)`` (any float dtype; cast to float32 per batch). May be a
        memory-mapped array: only the rows of each batch are read. ``(N, W, window, 12)``
        windows from :func:`sliding_windows` work too (without cropping).
      labels: ``(N, K)`` multi-hot labels.
      batch_size: global rows per batch, ``B``; a multiple of the number of mesh devices.
      mesh: 1-D ``data`` mesh (:func:`imn.data.sharding.make_mesh`); default all devices.
      shuffle: a new random order every epoch (training) or the stored order (evaluation).
      drop_remainder: drop the last incomplete batch (training) or pad it to ``B`` rows
        with ``mask`` 0 (evaluation, every record seen exactly once).
      seed: non-negative integer; epoch ``e`` depends only on ``(seed, e)``.
      crop_length: if set, each record of each epoch is cut to a random window of this many
        samples (``250`` = 2.5 s at 100 Hz in the PTB-XL benchmark). The offset is drawn
        uniformly from ``0 .. L - crop_length`` by the epoch's generator, per record.
      zscore: apply the per-record, per-lead z-score on the fly (see the module docstring);
        leave False when the arrays are already normalised.
      prefetch_depth: batches prepared ahead in a background thread (0: no thread).
    """

    def __init__(
        self,
        signals: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        mesh: Mesh | None = None,
        shuffle: bool = True,
        drop_remainder: bool = True,
        seed: int = 0,
        crop_length: int | None = None,
        zscore: bool = False,
        prefetch_depth: int = 2,
    ):
        if signals.ndim < 3:
            raise EcgDataError(f"signals must have shape (N, L, leads); got {signals.shape}")
        if np.ndim(labels) != 2 or len(labels) != len(signals):
            raise EcgDataError(
                f"labels must have shape ({len(signals)}, K) to match signals {signals.shape}; "
                f"got {np.shape(labels)}"
            )
        if len(signals) == 0:
            raise EcgDataError("cannot batch an empty set of records")
        if not isinstance(batch_size, int | np.integer) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if crop_length is not None:
            if signals.ndim != 3:
                raise ValueError(f"crop_length needs (N, L, leads) signals; got {signals.shape}")
            if not 0 < crop_length <= signals.shape[1]:
                raise ValueError(
                    f"crop_length must be in 1..{signals.shape[1]} (the record length); "
                    f"got {crop_length}"
                )
        if drop_remainder and len(signals) < batch_size:
            raise EcgDataError(
                f"{len(signals)} records give no full batch of {batch_size}; use a smaller "
                "batch_size or drop_remainder=False"
            )
        self.signals = signals
        self.labels = labels
        self.batch_size = int(batch_size)
        self.mesh = make_mesh() if mesh is None else mesh
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.seed = int(seed)
        self.crop_length = crop_length
        self.zscore = zscore
        self.prefetch_depth = prefetch_depth
        # Rows of every global batch that this process assembles (all of them on one host);
        # raises a clear error when batch_size does not divide over the devices.
        self._local_rows = local_batch_rows(self.mesh, self.batch_size)

    @classmethod
    def from_dataset(cls, dataset: EcgDataset, **kwargs: Any) -> BatchLoader:
        """A loader over ``dataset.signals`` and ``dataset.labels`` (keyword args as above)."""
        return cls(dataset.signals, dataset.labels, **kwargs)

    # ------------------------------------------------------------------ sizes
    @property
    def num_records(self) -> int:
        return len(self.signals)

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        if self.drop_remainder:
            return self.num_records // self.batch_size
        return math.ceil(self.num_records / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    @property
    def example_shape(self) -> tuple[int, ...]:
        """Shape of one row of ``x``: ``(L', 12)`` (or ``(W, window, 12)`` for windows)."""
        shape = tuple(self.signals.shape[1:])
        if self.crop_length is not None:
            shape = (self.crop_length, *shape[1:])
        return shape

    # ------------------------------------------------------------------ epoch plan
    def epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The order and crop offsets of epoch ``epoch``, from ``(seed, epoch)`` alone.

        Returns:
          order: int64 ``(num_batches * B,)``, record positions batch after batch; -1 pads
            the last batch when ``drop_remainder`` is False.
          offsets: int64 ``(N,)`` crop start of each record (indexed by record), or None.
        """
        if not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        rng = np.random.default_rng([self.seed, int(epoch)])
        n = self.num_records
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        total = self.num_batches * self.batch_size
        if total <= n:
            order = order[:total]
        else:
            order = np.concatenate([order, np.full(total - n, -1, dtype=order.dtype)])
        offsets = None
        if self.crop_length is not None:
            offsets = rng.integers(0, self.signals.shape[1] - self.crop_length + 1, size=n)
        return order, offsets

    # ------------------------------------------------------------------ batches
    def _gather(self, rows: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        """float32 ``(len(rows),) + example_shape`` for valid record positions ``rows``."""
        if self.crop_length is None:
            x = np.asarray(self.signals[rows], dtype=np.float32)
            return zscore_per_record(x) if self.zscore else x
        time = offsets[rows][:, None] + np.arange(self.crop_length)  # (n, crop)
        if self.zscore:
            # Statistics of the whole record, so that cropping commutes with normalising.
            full = zscore_per_record(np.asarray(self.signals[rows], dtype=np.float32))
            return np.take_along_axis(full, time[:, :, None], axis=1)
        # Advanced indexing reads only the cropped samples (a memory map stays cheap).
        return np.asarray(self.signals[rows[:, None], time], dtype=np.float32)

    def host_batches(self, epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """Epoch ``epoch`` as NumPy batches (this process's rows), in the calling thread."""
        order, offsets = self.epoch_plan(epoch)
        n_local = len(self._local_rows)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size][self._local_rows]
            valid = rows >= 0
            if valid.all():
                x = self._gather(rows, offsets)
                y = np.asarray(self.labels[rows], dtype=np.float32)
            else:  # the padded last batch of an evaluation pass
                x = np.zeros((n_local, *self.example_shape), np.float32)
                y = np.zeros((n_local, self.labels.shape[1]), np.float32)
                if valid.any():
                    x[valid] = self._gather(rows[valid], offsets)
                    y[valid] = self.labels[rows[valid]]
            yield {
                "x": x,
                "y": y,
                "index": rows.astype(np.int32),
                "mask": valid.astype(np.float32),
            }

    def device_batches(self, epoch: int) -> Iterator[dict[str, jax.Array]]:
        """Epoch ``epoch`` placed on the mesh, in the calling thread (no prefetching)."""
        for batch in self.host_batches(epoch):
            yield shard_batch(batch, self.mesh)

    def epoch(self, epoch: int) -> Iterator[dict[str, jax.Array]]:
        """Epoch ``epoch`` as sharded device batches, assembled ahead in a background thread.

        Stopping early (``break``) stops and joins the thread; an error while assembling a
        batch (say a corrupt memory-mapped record) is raised here, in the consumer.
        """
        self.epoch_plan(epoch)  # validate ``epoch`` now, not in the thread
        return prefetch(self.device_batches(epoch), self.prefetch_depth)


# ---------------------------------------------------------------------------- test windows
def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start offsets of the sliding windows over a record of ``length`` samples.

    ``0, stride, 2 * stride, ...`` while the window fits, plus one last window aligned to the
    end of the record (start ``length - window``) when the stride does not land there, so the
    final samples are always covered. PTB-XL at 100 Hz: ``window_starts(1000, 250, 125)`` is
    ``0, 125, ..., 750`` (7 windows).
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive; got window={window}, stride={stride}")
    if window > length:
        raise ValueError(f"window of {window} samples is longer than the record ({length} samples)")
    starts = np.arange(0, length - window + 1, stride)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    return starts


def sliding_windows(signals: np.ndarray | jax.Array, window: int, stride: int) -> np.ndarray | jax.Array:
    """Cut every record into windows along the time axis.

    Args:
      signals: ``(..., L, C)``, e.g. ``(N, L, 12)``; NumPy or JAX.
      window, stride: in samples (PTB-XL benchmark at 100 Hz: 250 and 125).
    Returns:
      ``(..., W, window, C)``, windows starting at :func:`window_starts`. For a NumPy input
      whose ``L - window`` is a multiple of ``stride`` (the benchmark's case) this is a
      read-only strided *view* (no copy); otherwise, and for JAX inputs, it is a gather
      (a copy, ``W * window / L`` times the input).
    """
    length = signals.shape[-2]
    starts = window_starts(length, window, stride)
    if isinstance(signals, np.ndarray) and (length - window) % stride == 0:
        # (..., L - window + 1, C, window) -> every stride-th window, window axis before C.
        view = np.lib.stride_tricks.sliding_window_view(signals, window, axis=-2)
        return np.moveaxis(view[..., ::stride, :, :], -1, -2)
    index = starts[:, None] + np.arange(window)  # (W, window)
    xp = np if isinstance(signals, np.ndarray) else jnp
    return xp.take(signals, index, axis=-2)


def aggregate_windows(window_outputs: np.ndarray | jax.Array, how: str = "max") -> np.ndarray | jax.Array:
    """Reduce per-window outputs ``(..., W, K)`` to per-record outputs ``(..., K)``.

    ``how``: 'max' (the PTB-XL benchmark) or 'mean'. Max commutes with the sigmoid, so it may
    be applied to logits or probabilities alike; mean may not (average probabilities if that
    is what is meant). NumPy in, NumPy out; JAX in (also under ``jit``), JAX out.
    """
    if window_outputs.ndim < 2:
        raise ValueError(f"expected (..., W, K) window outputs, got shape {window_outputs.shape}")
    xp = np if isinstance(window_outputs, np.ndarray) else jnp
    if how == "max":
        return xp.max(window_outputs, axis=-2)
    if how == "mean":
        return xp.mean(window_outputs, axis=-2)
    raise ValueError(f"unknown aggregation {how!r}; expected 'max' or 'mean'")
