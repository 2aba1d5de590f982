"""Tests of imn.data.pipeline and imn.data.sharding on the 4 fake CPU devices of conftest."""

from __future__ import annotations

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from imn.data.dataset import EcgDataError
from imn.data.normalize import zscore_per_record
from imn.data.pipeline import (
    PREFETCH_THREAD_NAME,
    BatchLoader,
    aggregate_windows,
    prefetch,
    sliding_windows,
    window_starts,
)
from imn.data.sharding import (
    data_sharding,
    local_batch_rows,
    make_mesh,
    replicated_sharding,
    shard_batch,
)

N, L, K = 103, 40, 3


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    signals = rng.normal(size=(N, L, 12)).astype(np.float32) * 2.0 + 0.5
    labels = (rng.random((N, K)) < 0.3).astype(np.float32)
    return signals, labels


@pytest.fixture(scope="module")
def mesh4():
    assert len(jax.devices()) == 4, "conftest should provide 4 fake CPU devices"
    return make_mesh()


@pytest.fixture(scope="module")
def mesh1():
    return make_mesh(jax.devices()[:1])


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == PREFETCH_THREAD_NAME and t.is_alive()]


def _wait_no_prefetch_threads(timeout: float = 5.0) -> list[threading.Thread]:
    deadline = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _prefetch_threads()


# ---------------------------------------------------------------------------- mesh helpers
def test_make_mesh_shapes(mesh4, mesh1):
    assert mesh4.axis_names == ("data",) and mesh4.size == 4
    assert mesh1.size == 1 and list(mesh1.devices.flat) == jax.devices()[:1]
    assert data_sharding(mesh4).spec == PartitionSpec("data")
    assert replicated_sharding(mesh4).spec == PartitionSpec()
    np.testing.assert_array_equal(local_batch_rows(mesh4, 8), np.arange(8))


def test_local_batch_rows_multi_process_path(mesh4, monkeypatch):
    # The multi-process branch reads the rows off the sharding; in this single process all
    # 4 devices are addressable, so it must still find every row, in order.
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    np.testing.assert_array_equal(local_batch_rows(mesh4, 12), np.arange(12))


def test_shard_batch_places_rows_on_each_device(mesh4):
    batch = {"x": np.arange(8 * 5 * 12, dtype=np.float32).reshape(8, 5, 12), "m": np.arange(8.0)}
    placed = shard_batch(batch, mesh4)
    for name, array in placed.items():
        assert array.shape == batch[name].shape
        assert array.sharding.spec == PartitionSpec("data")
        shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start)
        assert len({s.device for s in shards}) == 4
        for d, shard in enumerate(shards):
            assert shard.data.shape == (2, *batch[name].shape[1:])
            np.testing.assert_array_equal(np.asarray(shard.data), batch[name][2 * d : 2 * d + 2])


def test_batch_not_divisible_by_devices_is_a_clear_error(arrays, mesh4, mesh1):
    signals, labels = arrays
    with pytest.raises(ValueError, match="not divisible by the 4 devices"):
        BatchLoader(signals, labels, batch_size=6, mesh=mesh4)
    with pytest.raises(ValueError, match="'x'.*not divisible by the 4 devices"):
        shard_batch({"x": np.zeros((6, 3), np.float32)}, mesh4)
    # One device takes any batch size.
    assert len(BatchLoader(signals, labels, batch_size=6, mesh=mesh1)) == N // 6


def test_bad_inputs_are_rejected(arrays, mesh1):
    signals, labels = arrays
    with pytest.raises(EcgDataError, match="labels must have shape"):
        BatchLoader(signals, labels[:-1], batch_size=8, mesh=mesh1)
    with pytest.raises(EcgDataError, match="no full batch"):
        BatchLoader(signals[:5], labels[:5], batch_size=8, mesh=mesh1)
    with pytest.raises(ValueError, match="crop_length"):
        BatchLoader(signals, labels, batch_size=8, mesh=mesh1, crop_length=L + 1)
    loader = BatchLoader(signals, labels, batch_size=8, mesh=mesh1)
    with pytest.raises(ValueError, match="epoch"):
        loader.epoch(-1)


# ---------------------------------------------------------------------------- epochs
def _epoch_indices(loader: BatchLoader, epoch: int) -> np.ndarray:
    return np.stack([b["index"] for b in loader.host_batches(epoch)])


def test_epoch_order_depends_only_on_seed_and_epoch(arrays, mesh1):
    signals, labels = arrays
    first = BatchLoader(signals, labels, batch_size=8, mesh=mesh1, seed=7)
    for epoch in range(3):  # run through some epochs first, as a real run would
        _epoch_indices(first, epoch)
    resumed = BatchLoader(signals, labels, batch_size=8, mesh=mesh1, seed=7)
    np.testing.assert_array_equal(_epoch_indices(first, 3), _epoch_indices(resumed, 3))
    assert not np.array_equal(_epoch_indices(first, 3), _epoch_indices(first, 4))
    other_seed = BatchLoader(signals, labels, batch_size=8, mesh=mesh1, seed=8)
    assert not np.array_equal(_epoch_indices(first, 3), _epoch_indices(other_seed, 3))


def test_training_epoch_sees_each_record_at_most_once(arrays, mesh1):
    signals, labels = arrays
    loader = BatchLoader(signals, labels, batch_size=8, mesh=mesh1, seed=0)
    batches = list(loader.host_batches(0))
    assert len(batches) == len(loader) == N // 8
    index = np.concatenate([b["index"] for b in batches])
    assert len(np.unique(index)) == len(index) == (N // 8) * 8
    assert index.min() >= 0 and index.max() < N
    assert not np.array_equal(index, np.arange(len(index)))  # shuffled
    for b in batches:
        assert b["x"].dtype == np.float32 and b["x"].shape == (8, L, 12)
        np.testing.assert_array_equal(b["x"], signals[b["index"]])
        np.testing.assert_array_equal(b["y"], labels[b["index"]])
        np.testing.assert_array_equal(b["mask"], np.ones(8, np.float32))


def test_evaluation_pass_sees_each_record_exactly_once(arrays, mesh4):
    signals, labels = arrays
    loader = BatchLoader(signals, labels, batch_size=8, mesh=mesh4, shuffle=False, drop_remainder=False)
    batches = [{k: np.asarray(v) for k, v in b.items()} for b in loader.epoch(0)]
    assert len(batches) == len(loader) == -(-N // 8)
    assert all(b["x"].shape == (8, L, 12) for b in batches)  # static shapes, padded
    index = np.concatenate([b["index"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    np.testing.assert_array_equal(np.sort(index[mask == 1]), np.arange(N))
    np.testing.assert_array_equal(mask == 1, index >= 0)
    assert (mask == 0).sum() == len(batches) * 8 - N
    last = batches[-1]
    real = last["mask"] == 1
    np.testing.assert_array_equal(last["x"][real], signals[last["index"][real]])
    assert not last["x"][~real].any() and not last["y"][~real].any()


# ---------------------------------------------------------------------------- crops
def test_random_crops_lie_in_record_and_are_deterministic(arrays, mesh1):
    signals, labels = arrays
    crop = 15
    make = lambda: BatchLoader(signals, labels, batch_size=8, mesh=mesh1, seed=3, crop_length=crop)
    loader = make()
    order, offsets = loader.epoch_plan(2)
    assert offsets.min() >= 0 and offsets.max() <= L - crop
    assert len(np.unique(offsets)) > 1
    for b in loader.host_batches(2):
        assert b["x"].shape == (8, crop, 12)
        for row, i in enumerate(b["index"]):
            np.testing.assert_array_equal(b["x"][row], signals[i, offsets[i] : offsets[i] + crop])
    again = [b["x"] for b in make().host_batches(2)]
    np.testing.assert_array_equal(np.stack(again), np.stack([b["x"] for b in loader.host_batches(2)]))
    assert not np.array_equal(loader.epoch_plan(2)[1], loader.epoch_plan(3)[1])


@pytest.mark.parametrize("crop_length", [None, 15])
def test_on_the_fly_zscore_equals_prenormalising(arrays, mesh1, crop_length):
    signals, labels = arrays
    kwargs = dict(batch_size=8, mesh=mesh1, seed=5, crop_length=crop_length)
    on_the_fly = BatchLoader(signals, labels, zscore=True, **kwargs)
    pre = BatchLoader(zscore_per_record(signals), labels, **kwargs)
    for a, b in zip(on_the_fly.host_batches(1), pre.host_batches(1), strict=True):
        np.testing.assert_allclose(a["x"], b["x"], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- devices
@pytest.mark.parametrize("devices", [1, 4])
def test_device_batches_are_sharded(arrays, devices):
    signals, labels = arrays
    mesh = make_mesh(jax.devices()[:devices])
    loader = BatchLoader(signals, labels, batch_size=8, mesh=mesh, seed=0)
    batch = next(iter(loader.epoch(0)))
    host = next(iter(loader.host_batches(0)))
    assert set(batch) == {"x", "y", "index", "mask"}
    for name, array in batch.items():
        assert isinstance(array, jax.Array)
        assert array.sharding.is_equivalent_to(data_sharding(mesh), array.ndim)
        assert len(array.addressable_shards) == devices
        for shard in array.addressable_shards:
            assert shard.data.shape == (8 // devices, *host[name].shape[1:])
        np.testing.assert_array_equal(np.asarray(array), host[name])
    assert batch["index"].dtype == jnp.int32 and batch["x"].dtype == jnp.float32
    assert _wait_no_prefetch_threads() == []


def test_jitted_masked_mean_is_the_same_on_1_and_4_devices(arrays, mesh1, mesh4):
    signals, labels = arrays

    @jax.jit
    def masked_sums(batch):
        per_record = jnp.mean(batch["x"], axis=(1, 2)) * batch["y"][:, 0]
        return jnp.sum(per_record * batch["mask"]), jnp.sum(batch["mask"])

    def mean_over_pass(mesh):
        loader = BatchLoader(signals, labels, batch_size=8, mesh=mesh, shuffle=False, drop_remainder=False)
        total, count = 0.0, 0.0
        for batch in loader.epoch(0):
            s, c = masked_sums(batch)
            total, count = total + float(s), count + float(c)
        return total / count

    expected = np.mean(signals.mean(axis=(1, 2)) * labels[:, 0])
    one, four = mean_over_pass(mesh1), mean_over_pass(mesh4)
    np.testing.assert_allclose(one, expected, rtol=1e-5)
    np.testing.assert_allclose(four, one, rtol=1e-6)


# ---------------------------------------------------------------------------- prefetching
class _ExplodingSignals:
    """Array stand-in whose read of record ``bad`` fails, as a corrupt memory map would."""

    def __init__(self, signals: np.ndarray, bad: int):
        self._signals, self._bad = signals, bad
        self.shape, self.ndim, self.dtype = signals.shape, signals.ndim, signals.dtype

    def __len__(self) -> int:
        return len(self._signals)

    def __getitem__(self, index):
        rows = np.asarray(index[0] if isinstance(index, tuple) else index)
        if np.any(rows == self._bad):
            raise EcgDataError(f"record {self._bad}: checksum mismatch")
        return self._signals[index]


def test_exception_in_prefetch_thread_reaches_the_consumer(arrays, mesh1):
    signals, labels = arrays
    loader = BatchLoader(
        _ExplodingSignals(signals, bad=50), labels, batch_size=8, mesh=mesh1,
        shuffle=False, drop_remainder=False,
    )
    seen = 0
    with pytest.raises(EcgDataError, match="record 50: checksum mismatch"):
        for _ in loader.epoch(0):
            seen += 1
    assert seen == 50 // 8  # every batch before the bad one arrived, in order
    assert _wait_no_prefetch_threads() == []


def test_prefetch_propagates_errors_and_stops_on_early_exit():
    def numbers(fail_at=None):
        for i in range(100):
            if i == fail_at:
                raise RuntimeError(f"failed at {i}")
            yield i

    assert list(prefetch(numbers(), depth=2)) == list(range(100))
    assert list(prefetch(numbers(), depth=0)) == list(range(100))
    with pytest.raises(RuntimeError, match="failed at 7"):
        list(prefetch(numbers(fail_at=7), depth=2))

    produced = []

    def counting():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetch(counting(), depth=2):
        time.sleep(0.2)  # give the producer time to run as far ahead as it is allowed to
        break
    # 1 consumed + 2 queued + 1 waiting to be queued; an unbounded producer would be far ahead.
    assert len(produced) <= 4
    assert _wait_no_prefetch_threads() == []


def test_loader_thread_does_not_leak_on_early_stop(arrays, mesh4):
    signals, labels = arrays
    loader = BatchLoader(signals, labels, batch_size=4, mesh=mesh4)
    for _ in range(3):
        for _batch in loader.epoch(0):
            break
    assert _wait_no_prefetch_threads() == []


# ---------------------------------------------------------------------------- windows
def _loop_windows(signals: np.ndarray, window: int, stride: int) -> np.ndarray:
    length = signals.shape[1]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return np.stack([signals[:, s : s + window] for s in starts], axis=1)


@pytest.mark.parametrize("length,window,stride", [(1000, 250, 125), (1000, 300, 125), (40, 40, 7), (41, 10, 10)])
def test_sliding_windows_match_a_loop(length, window, stride):
    signals = np.random.default_rng(0).normal(size=(3, length, 12)).astype(np.float32)
    windows = sliding_windows(signals, window, stride)
    expected = _loop_windows(signals, window, stride)
    assert windows.shape == expected.shape
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(windows[:, -1], signals[:, -window:])  # ends at the record's end
    if (length - window) % stride == 0:
        assert np.shares_memory(windows, signals)  # a view, no copy
    np.testing.assert_array_equal(np.asarray(sliding_windows(jnp.asarray(signals), window, stride)), expected)


def test_benchmark_windows_and_errors():
    np.testing.assert_array_equal(window_starts(1000, 250, 125), np.arange(0, 751, 125))
    with pytest.raises(ValueError, match="longer than the record"):
        window_starts(100, 250, 125)
    with pytest.raises(ValueError, match="positive"):
        window_starts(100, 50, 0)


def test_loader_over_windows(arrays, mesh4):
    signals, labels = arrays
    windows = sliding_windows(signals, 10, 5)
    loader = BatchLoader(windows, labels, batch_size=8, mesh=mesh4, shuffle=False, drop_remainder=False)
    batch = next(iter(loader.epoch(0)))
    assert batch["x"].shape == (8, windows.shape[1], 10, 12)
    np.testing.assert_array_equal(np.asarray(batch["x"]), windows[:8])


def test_aggregate_windows():
    outputs = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    maxed = aggregate_windows(outputs, "max")
    assert maxed.shape == (5, 3)
    for n in range(5):
        for k in range(3):
            assert maxed[n, k] == max(outputs[n, w, k] for w in range(7))
    np.testing.assert_allclose(aggregate_windows(outputs, "mean"), outputs.sum(axis=1) / 7, rtol=1e-6)
    jitted = jax.jit(lambda o: aggregate_windows(o, "max"))(jnp.asarray(outputs))
    assert isinstance(jitted, jax.Array)
    np.testing.assert_array_equal(np.asarray(jitted), maxed)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_windows(outputs, "median")
