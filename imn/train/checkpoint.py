"""Checkpoints with Orbax's CheckpointManager. The only module that imports orbax.

A run folder holds two managers: ``checkpoints/last`` (written at the end of every epoch, the
resume point) and ``checkpoints/best`` (written when validation improves, used for the final
evaluation). Each checkpoint stores the training-state pytree and a small JSON of loop
bookkeeping (epoch, best score, early-stopping counter). Orbax writes into a temporary folder
and renames it when complete, so a run killed mid-save resumes from the previous checkpoint.

Each manager keeps the two newest checkpoints. A checkpoint that cannot be read (a disk error,
a truncated file) is named in a warning, moved aside to ``checkpoints/corrupt/`` (so that the
step can be written again) and the older one is used; when none is readable the error names
the run folder and every folder tried.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from imn.errors import UserError

logger = logging.getLogger("imn")

# Two, so that a corrupt newest checkpoint leaves an older one to fall back to.
KEEP_CHECKPOINTS = 2


class CheckpointError(UserError):
    """No checkpoint of a run could be read (the message names the run and each folder)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class RunCheckpoints:
    """The 'last' and 'best' checkpoint managers of one run folder."""

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir).absolute()
        root = self.workdir / "checkpoints"
        self.corrupt_dir = root / "corrupt"
        options = ocp.CheckpointManagerOptions(
            max_to_keep=KEEP_CHECKPOINTS,
            # Synchronous saves: an epoch is only reported done once its checkpoint is on disk.
            enable_async_checkpointing=False,
            create=True,
        )
        self.last = ocp.CheckpointManager(root / "last", options=options)
        self.best = ocp.CheckpointManager(root / "best", options=options)

    @staticmethod
    def _save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
        if step in manager.all_steps():
            # A resumed run re-trains the epoch after its restored checkpoint; the step may
            # already be saved here (a kill between the 'best' and 'last' saves, or a 'last'
            # checkpoint that was unreadable). The re-run recomputes it; replace it.
            manager.delete(step)
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

    def _restore(self, manager: ocp.CheckpointManager, target: Any, name: str) -> tuple[Any, dict] | None:
        """The newest readable checkpoint of ``manager``; unreadable ones are moved aside."""
        steps = sorted(manager.all_steps(), reverse=True)
        if not steps:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        failures = []
        for step in steps:
            folder = Path(manager.directory) / str(step)
            try:
                restored = manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                            meta=ocp.args.JsonRestore()),
                )
            except Exception as error:  # tensorstore DATA_LOSS, JSONDecodeError, missing files...
                failures.append((folder, _first_line(error)))
                logger.warning("%s: the %s checkpoint %s is unreadable (%s); trying an older one",
                               self.workdir, name, folder, _first_line(error))
                continue
            if failures:
                self._move_aside([folder for folder, _ in failures], name)
                manager.reload()
                logger.warning("%s: restored the %s checkpoint of step %d instead", self.workdir, name, step)
            return restored["state"], dict(restored["meta"])
        tried = "; ".join(f"{folder} ({reason})" for folder, reason in failures)
        raise CheckpointError(
            f"run {self.workdir}: no readable {name} checkpoint (tried {tried}); "
            f"delete {self.workdir / 'checkpoints'} to train this run again from the start"
        )

    def _move_aside(self, folders: list[Path], name: str) -> None:
        """Move unreadable step folders out of the manager, so the step can be saved again."""
        if jax.process_index() != 0:
            return
        self.corrupt_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for folder in folders:
            if folder.exists():
                destination = self.corrupt_dir / f"{name}-{folder.name}-{stamp}"
                shutil.move(str(folder), destination)
                logger.warning("moved the unreadable checkpoint %s to %s", folder, destination)

    def restore_last(self, target: Any) -> tuple[Any, dict] | None:
        """(state, meta) of the newest 'last' checkpoint, or None for a fresh run.

        ``target`` is a state of the right structure, shapes and shardings (e.g. the initial
        state); the restored arrays are placed like it.
        """
        return self._restore(self.last, target, "last")

    def restore_best(self, target: Any) -> tuple[Any, dict] | None:
        return self._restore(self.best, target, "best")

    def close(self) -> None:
        self.last.close()
        self.best.close()
