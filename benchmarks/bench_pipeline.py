"""Throughput of the batch loader, beside the cost of a small jitted training step.

    python benchmarks/bench_pipeline.py [--records 2000] [--batch-size 64] [--epochs 2]

Synthetic 100 Hz records (L = 1000, 12 leads, 5 labels). For 1 and 4 (fake CPU) devices,
with and without 2.5 s random crops, it times full epochs of ``BatchLoader.epoch`` with a
consumer that only waits for each batch to be on its devices: that is the rate at which the
loader can feed a trainer. It then times a jitted forward + backward pass of a small 1-D CNN
on the same batches (a stand-in for a training step; IMN's real step is heavier), alone and
fed by the loader, to show whether batch preparation hides behind the step.
"""

from __future__ import annotations

import os

# Fake devices must be requested before JAX starts its CPU backend.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from imn.data.pipeline import BatchLoader  # noqa: E402
from imn.data.sharding import make_mesh  # noqa: E402

SAMPLING_RATE = 100
NUM_CLASSES = 5


def time_epochs(loader: BatchLoader, epochs: int, step=None) -> tuple[float, int]:
    """Seconds for ``epochs`` epochs (after one warm-up epoch) and the batches they held."""
    def run(epoch: int) -> int:
        count = 0
        for batch in loader.epoch(epoch):
            out = step(batch) if step is not None else batch
            jax.block_until_ready(out)
            count += 1
        return count

    run(0)  # warm-up: compilation, first allocations
    start = time.perf_counter()
    batches = sum(run(e) for e in range(1, epochs + 1))
    return time.perf_counter() - start, batches


def make_cnn_step():
    """Jitted loss + gradient of a 3-layer 1-D CNN (12 -> 32 -> 64 -> 64 channels, kernel 15).

    Only a stand-in with a known cost; IMN's own step time is for the trainer's benchmark.
    """
    key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, 4)
    params = {
        "c1": jax.random.normal(keys[0], (15, 12, 32)) * 0.05,
        "c2": jax.random.normal(keys[1], (15, 32, 64)) * 0.05,
        "c3": jax.random.normal(keys[2], (15, 64, 64)) * 0.05,
        "out": jax.random.normal(keys[3], (64, NUM_CLASSES)) * 0.05,
    }

    def conv(x, w):  # x (B, T, C), w (k, C_in, C_out)
        return jax.lax.conv_general_dilated(x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))

    def loss_fn(p, batch):
        h = jax.nn.gelu(conv(batch["x"], p["c1"]))
        h = jax.nn.gelu(conv(h, p["c2"]))
        h = h.reshape(h.shape[0], h.shape[1] // 2, 2, h.shape[2]).max(axis=2)
        h = jax.nn.gelu(conv(h, p["c3"]))
        logits = h.mean(axis=1) @ p["out"]
        per_record = jnp.mean(jax.nn.softplus(logits) - batch["y"] * logits, axis=1)
        return jnp.sum(per_record * batch["mask"]) / jnp.sum(batch["mask"])

    grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    return lambda batch: grad_fn(params, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--step-batches", type=int, default=8,
                        help="batches per epoch when timing the stand-in training step")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    length = 10 * SAMPLING_RATE
    signals = rng.normal(size=(args.records, length, 12)).astype(np.float32)
    labels = (rng.random((args.records, NUM_CLASSES)) < 0.2).astype(np.float32)
    print(f"jax {jax.__version__}, {len(jax.devices())} {jax.devices()[0].platform} devices, "
          f"{os.cpu_count()} CPU cores; N={args.records}, B={args.batch_size}, L={length}")

    print(f"\n{'devices':>7} {'crop':>5} {'batches/s':>10} {'samples/s':>10} {'ms/batch':>9}")
    for devices in (1, 4):
        mesh = make_mesh(jax.devices()[:devices])
        for crop in (None, SAMPLING_RATE * 5 // 2):
            loader = BatchLoader(signals, labels, batch_size=args.batch_size, mesh=mesh,
                                 seed=0, crop_length=crop)
            seconds, batches = time_epochs(loader, args.epochs)
            rate = batches / seconds
            print(f"{devices:>7} {crop or '-':>5} {rate:>10.1f} {rate * args.batch_size:>10.0f} "
                  f"{1000 / rate:>9.2f}")

    # A stand-in training step on one device, alone (batches made once, kept on device) and
    # fed by the prefetching loader: if the loader keeps up, the two agree.
    mesh = make_mesh(jax.devices()[:1])
    step = make_cnn_step()
    print(f"\n1-D CNN forward+backward, 1 device ({'ms/batch':>8}):")
    for crop in (None, SAMPLING_RATE * 5 // 2):
        # Fewer records here: the step, not the loader, dominates and the CPU is small.
        rows = args.step_batches * args.batch_size
        loader = BatchLoader(signals[:rows], labels[:rows], batch_size=args.batch_size,
                             mesh=mesh, seed=0, crop_length=crop)
        cached = list(loader.device_batches(0))
        jax.block_until_ready(step(cached[0]))
        start = time.perf_counter()
        for batch in cached:
            jax.block_until_ready(step(batch))
        step_ms = 1000 * (time.perf_counter() - start) / len(cached)
        seconds, batches = time_epochs(loader, 1, step=step)
        fed_ms = 1000 * seconds / batches
        print(f"  crop {crop or '-':>4}: step alone {step_ms:7.2f}   step fed by loader {fed_ms:7.2f}")


if __name__ == "__main__":
    main()
