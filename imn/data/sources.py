"""Every ECG source behind one option: ``--data KIND:DIR`` for ``imn train``, ``explain``,
``faithfulness``, ``reproduce`` and ``data info``.

==============  ====================================================  =======================
kind            folder                                                tasks (first: default)
==============  ====================================================  =======================
``ptbxl``       PTB-XL in PhysioNet's layout (:mod:`imn.data.ptbxl`)   PTB-XL's benchmark
                                                                      tasks and the binary
                                                                      ``norm_vs_X`` tasks
``cinc``        PhysioNet/CinC Challenge 2020/2021 records             ``scored``,
                (:mod:`imn.data.cinc`)                                 ``scored_other``
``cpsc2018``    CPSC 2018's original ``.mat`` files + REFERENCE.csv    ``cpsc2018``
                (:mod:`imn.data.cpsc2018`)
``mimic``       MIMIC-IV-ECG's layout (:mod:`imn.data.mimic`)          ``rhythm``, ...
``tfds``        a TFDS ``data_dir`` holding the PTB-XL builder's       as ``ptbxl`` (each
                ArrayRecord files (:mod:`imn.data.tfds_ptbxl`;         task and rate is a
                ``imn data tfds`` writes them)                         config, built first)
``synthetic``   none: generated in memory, or a folder written by      ``synthetic``
                ``imn data synth``
==============  ====================================================  =======================

A bare folder (no ``KIND:``) means PTB-XL, as before this option existed.
"""

from __future__ import annotations

import os
from pathlib import Path

from imn.data.dataset import EcgDataError, EcgDataset

KINDS: tuple[str, ...] = ("ptbxl", "cinc", "cpsc2018", "mimic", "tfds", "synthetic")
SYNTHETIC_TASK = "synthetic"


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """``"cinc:/data/cinc"`` -> ``("cinc", "/data/cinc")``; ``"synthetic"`` -> ``("synthetic",
    None)``; a bare folder -> ``("ptbxl", folder)``. An unknown kind is an error that lists
    the known ones."""
    spec = spec.strip()
    if spec == "synthetic":
        return "synthetic", None
    kind, sep, root = spec.partition(":")
    if not sep or ("/" in kind or "\\" in kind or kind in ("", ".", "..")):
        # A bare folder (possibly with a ':' later in its path).
        return ("synthetic" if is_synthetic_folder(spec) else "ptbxl"), spec
    if kind not in KINDS:
        raise EcgDataError(f"unknown data source {kind!r} in --data {spec!r}; expected "
                           f"KIND:DIR with KIND one of {', '.join(KINDS[:-1])}, or 'synthetic'")
    if kind == "synthetic":
        return "synthetic", root or None
    if not root:
        raise EcgDataError(f"--data {spec!r} names no folder; write {kind}:DIR")
    return kind, root


def is_synthetic_folder(root: str | os.PathLike) -> bool:
    """Whether ``root`` was written by ``imn data synth`` (PTB-XL layout plus evidence masks)."""
    return Path(root).is_dir() and any(Path(root).glob("evidence_*.npz"))


def source_tasks(kind: str) -> tuple[str, ...]:
    """The tasks a source offers, its default first."""
    if kind in ("ptbxl", "tfds"):
        from imn.data.ptbxl import TASKS

        return TASKS
    if kind == "cinc":
        from imn.data.cinc import TASKS

        return TASKS
    if kind == "cpsc2018":
        return ("cpsc2018",)
    if kind == "mimic":
        from imn.data.mimic import TASKS

        return TASKS
    if kind == "synthetic":
        return (SYNTHETIC_TASK,)
    raise EcgDataError(f"unknown data source {kind!r}; expected one of {KINDS}")


def default_task(kind: str) -> str:
    """The task used when none is given (PTB-XL: ``superdiagnostic``)."""
    return "superdiagnostic" if kind in ("ptbxl", "tfds") else source_tasks(kind)[0]


def check_task(kind: str, task: str) -> None:
    if task not in source_tasks(kind):
        raise EcgDataError(f"unknown task {task!r} for data source {kind!r}; valid tasks: "
                           f"{', '.join(source_tasks(kind))}")


def load_source(kind: str, root: str | os.PathLike | None, task: str, sampling_rate: int = 100,
                *, progress: bool = False, synthetic_n: int = 2000, seed: int = 0,
                synthetic_level: str = "default", strict: bool = False) -> EcgDataset:
    """The whole dataset (all folds, physical units) of one source and task. The synthetic
    benchmark has one task whatever ``task`` says (so any recipe's config trains on it);
    generated in memory, it has ``synthetic_n`` records at difficulty ``synthetic_level``.
    ``strict``: readers that fit records to the grid (CinC, CPSC 2018, MIMIC) refuse a record
    that needs adapting instead of counting it (:class:`imn.data.conform.Conform`)."""
    if kind == "synthetic":
        import dataclasses

        from imn.data.synthetic import load_synthetic, make_synthetic

        if root is not None:
            return load_synthetic(root, sampling_rate=sampling_rate)
        dataset = make_synthetic(synthetic_n, sampling_rate=sampling_rate, seed=seed,
                                 difficulty=synthetic_level)
        return dataclasses.replace(dataset, task=SYNTHETIC_TASK)
    check_task(kind, task)
    if root is None:
        raise EcgDataError(f"data source {kind!r} needs a folder ({kind}:DIR)")
    if kind == "ptbxl":
        from imn.data.ptbxl import load_ptbxl

        return load_ptbxl(root, task, sampling_rate=sampling_rate, progress=progress)
    if kind == "cinc":
        from imn.data.cinc import load_cinc

        return load_cinc(root, task, sampling_rate=sampling_rate, progress=progress, strict=strict)
    if kind == "cpsc2018":
        from imn.data.cpsc2018 import load_cpsc2018

        return load_cpsc2018(root, sampling_rate=sampling_rate, progress=progress, strict=strict)
    if kind == "mimic":
        from imn.data.mimic import load_mimic

        return load_mimic(root, task, sampling_rate=sampling_rate, progress=progress, strict=strict)
    if kind == "tfds":
        from imn.data.tfds_ptbxl import load_tfds_ptbxl

        return load_tfds_ptbxl(root, task, sampling_rate=sampling_rate)
    raise EcgDataError(f"unknown data source {kind!r}; expected one of {KINDS}")


def label_file(kind: str, root: str | os.PathLike | None, task: str, sampling_rate: int) -> Path | None:
    """The file whose checksum identifies a source's labels in a run's provenance."""
    if root is None:
        return None
    root = Path(root)
    if kind in ("ptbxl", "synthetic"):  # 'imn data synth' writes PTB-XL's layout
        return root / "ptbxl_database.csv"
    if kind == "cpsc2018":
        return root / "REFERENCE.csv"
    if kind == "mimic":
        return root / "machine_measurements.csv"
    if kind == "tfds":
        from imn.data.tfds_ptbxl import DATASET_NAME, DATASET_VERSION, config_name

        return root / DATASET_NAME / config_name(task, sampling_rate) / str(DATASET_VERSION) / "metadata.json"
    return None  # CinC: labels live in every header
