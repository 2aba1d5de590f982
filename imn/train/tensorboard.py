"""TensorBoard event files for a run, written without TensorFlow (``tensorboardX``).

``metrics.jsonl`` stays the record the code reads back; the event files under
``workdir/tensorboard/`` are for watching a run (``tensorboard --logdir runs/``). Each
epoch's line of ``metrics.jsonl`` becomes scalars at step = epoch number (1-based), and the
training loss the loop already fetches every ``log_every_steps`` becomes ``train/step_loss``
at step = optimiser step. A resumed run appends a new event file; TensorBoard shows a
re-run epoch's newer value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("imn")

EVENTS_DIR = "tensorboard"
# metrics.jsonl key -> TensorBoard tag
EPOCH_TAGS = {
    "train_loss": "train/loss",
    "val_macro_auroc": "validation/macro_auroc",
    "best_val_macro_auroc": "validation/best_macro_auroc",
    "train_samples_per_s": "speed/train_samples_per_s",
    "epoch_seconds": "speed/epoch_seconds",
}


class EventLog:
    """Scalars for TensorBoard in ``workdir/tensorboard``; a no-op (with one warning) when
    ``tensorboardX`` is not installed, so a viewer never stops a training run."""

    def __init__(self, workdir: str | Path):
        self.directory = Path(workdir) / EVENTS_DIR
        try:
            from tensorboardX import SummaryWriter
        except ImportError:  # pragma: no cover - it is a core dependency
            logger.warning("tensorboardX is not installed; no TensorBoard event files for %s", workdir)
            self._writer = None
            return
        self._writer = SummaryWriter(logdir=str(self.directory), flush_secs=30)

    def epoch(self, record: dict[str, Any]) -> None:
        """One ``metrics.jsonl`` line (with its 0-based ``epoch``)."""
        if self._writer is None:
            return
        step = int(record["epoch"]) + 1
        for key, tag in EPOCH_TAGS.items():
            if record.get(key) is not None:
                self._writer.add_scalar(tag, float(record[key]), step)
        self._writer.flush()

    def step_loss(self, step: int, loss: float) -> None:
        if self._writer is not None:
            self._writer.add_scalar("train/step_loss", float(loss), int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
