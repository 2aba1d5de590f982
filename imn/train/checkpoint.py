"""Checkpoints with Orbax's CheckpointManager. The only module that imports orbax.

A run folder holds two managers: ``checkpoints/last`` (written at the end of every epoch, the
resume point) and ``checkpoints/best`` (written when validation improves, used for the final
evaluation). Each checkpoint stores the training-state pytree and a small JSON of loop
bookkeeping (epoch, best score, early-stopping counter). Orbax writes into a temporary folder
and renames it when complete, so a run killed mid-save resumes from the previous checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class RunCheckpoints:
    """The 'last' and 'best' checkpoint managers of one run folder."""

    def __init__(self, workdir: str | Path):
        root = Path(workdir).absolute() / "checkpoints"
        options = ocp.CheckpointManagerOptions(
            max_to_keep=1,
            # Synchronous saves: an epoch is only reported done once its checkpoint is on disk.
            enable_async_checkpointing=False,
            create=True,
        )
        self.last = ocp.CheckpointManager(root / "last", options=options)
        self.best = ocp.CheckpointManager(root / "best", options=options)

    @staticmethod
    def _save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
        manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        manager.wait_until_finished()

    def save_last(self, step: int, state: Any, meta: dict) -> None:
        self._save(self.last, step, state, meta)

    def save_best(self, step: int, state: Any, meta: dict) -> None:
        self._save(self.best, step, state, meta)

    @staticmethod
    def _restore(manager: ocp.CheckpointManager, target: Any) -> tuple[Any, dict] | None:
        step = manager.latest_step()
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
        )
        return restored["state"], dict(restored["meta"])

    def restore_last(self, target: Any) -> tuple[Any, dict] | None:
        """(state, meta) of the newest 'last' checkpoint, or None for a fresh run.

        ``target`` is a state of the right structure, shapes and shardings (e.g. the initial
        state); the restored arrays are placed like it.
        """
        return self._restore(self.last, target)

    def restore_best(self, target: Any) -> tuple[Any, dict] | None:
        return self._restore(self.best, target)

    def close(self) -> None:
        self.last.close()
        self.best.close()
