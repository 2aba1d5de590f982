"""One process of the multi-process training test (tests/train/test_distributed.py).

    JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=I \
        python distributed_worker.py OUT.json

With those variables set it joins a JAX multi-controller job through the trainer's own
``maybe_initialize_distributed`` (the README's launch recipe; CPU collectives over gloo,
JAX's default on CPU); without them it is one process. It builds the tiny IMN exactly as ``imn.train.trainer.setup_run`` does,
feeds only its own rows of each global batch (``BatchLoader`` through
``make_array_from_process_local_data``), and writes the losses of a few steps and the rows it
fed. Not a test file: pytest does not collect it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax

STEPS = 3


def main(out: str) -> None:
    from imn.train.trainer import build_model, loss_spec_for, maybe_initialize_distributed

    maybe_initialize_distributed()
    from imn.data.pipeline import BatchLoader
    from imn.data.sharding import local_batch_rows, make_mesh, replicated_sharding
    from imn.train.config import load_config
    from imn.train.data import prepare_task_data
    from imn.train.optim import make_optimizer
    from imn.train.steps import make_steps

    repo = Path(__file__).resolve().parents[2]
    config = load_config(f"{repo / 'configs/imn.py'}:tiny", ["data.source=synthetic", "batch_size=8"])
    data = prepare_task_data(config.data, seed=config.seed)
    mesh = make_mesh()  # every device of every process
    model = build_model(config, len(data.classes), data.sampling_rate, data.train.length)
    loader = BatchLoader(data.train.signals, data.train.labels, batch_size=config.batch_size,
                         mesh=mesh, shuffle=True, drop_remainder=True, seed=config.seed, prefetch_depth=0)
    tx = make_optimizer(config.optim, len(loader), config.epochs)
    steps = make_steps(model, tx, loss_spec_for(model, config, data.train.labels), seed=config.seed,
                       state_sharding=replicated_sharding(mesh))
    state = steps.init_state()
    losses = []
    for index, batch in enumerate(loader.epoch(0)):
        if index == STEPS:
            break
        state, metrics = steps.train_step(state, batch)
        # Replicated on every device; read this process's own copy.
        losses.append(float(metrics["loss"].addressable_shards[0].data))
    Path(out).write_text(json.dumps({
        "process_index": jax.process_index(), "process_count": jax.process_count(),
        "global_devices": jax.device_count(), "local_devices": jax.local_device_count(),
        "rows_fed": local_batch_rows(mesh, config.batch_size).tolist(), "losses": losses,
    }))
    if jax.process_count() > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
