"""What the viewer shows, read from run folders: the explained ECGs of each run, every
method's attribution of each, IMN's weights, planted masks and the faithfulness curves.

A run folder (from ``imn train`` + ``imn explain`` / ``imn faithfulness`` / ``imn
reproduce``) holds, for a split:

* ``attributions_{split}.npz``: every method's maps of the first kept ECGs (``imn
  reproduce``), with ``x``, ``targets``, ``ecg_ids``, ``classes`` and, on synthetic data,
  ``evidence``;
* ``attributions_{method}_{split}.npz``: one method's maps (``imn explain``);
* ``faithfulness_curves_{split}.npz``: deletion/insertion curves per method and ECG;
* ``predictions_{split}.npz``: the model's scores and true labels of every record.

An ECG is identified by ``(ecg_id, target)``: the same record explained for two classes is
two entries. Signals are shown in mV, read again from the run's data (``config.json``)
and checked against the normalised input the model saw; where that data is not at hand (or
no longer matches) the normalised input is shown and the page says so.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np

from imn.data.dataset import EcgDataError

logger = logging.getLogger("imn")

# Pearson correlation per lead between the mV record and the saved normalised input above
# which the record is taken to be the one explained (any per-lead affine normalisation keeps 1).
_MATCH_CORRELATION = 0.999


@dataclasses.dataclass
class ExplainedEcg:
    """One explained ECG of a run.

    ``signal``: ``(L, 12)`` in ``ModelView.units``; ``x``: ``(L, 12)`` the normalised input
    the model saw; ``maps``: method -> ``(L, 12)`` attribution of ``x``; ``evidence``:
    ``(L, 12)`` bool planted mask of the explained class or None; ``curves``: method ->
    (deletion ``(S + 1,)``, insertion ``(S + 1,)``).
    """

    ecg_id: int
    target: int
    signal: np.ndarray
    x: np.ndarray
    maps: dict[str, np.ndarray]
    evidence: np.ndarray | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    true_label: str = "?"
    predicted: str = "?"
    p_predicted: float = float("nan")
    p_explained: float = float("nan")


@dataclasses.dataclass
class RunView:
    """The explained ECGs of one run folder (one model on one task)."""

    name: str
    path: Path
    model: str
    task: str
    sampling_rate: int
    classes: tuple[str, ...]  # the explained classes (a binary task: (class 0, class 1))
    units: str  # "mV" or "normalised"
    units_note: str
    ecgs: list[ExplainedEcg]
    curve_unit: str = ""
    curve_steps: int = 0
    provenance: dict = dataclasses.field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Every method explained for some ECG, in the order first met."""
        return list(dict.fromkeys(m for ecg in self.ecgs for m in ecg.maps))


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as saved:
            return {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as error:
        raise EcgDataError(f"{path}: cannot read it as a numpy archive ({error})") from error


def _require(saved: dict, keys: tuple[str, ...], path: Path) -> None:
    missing = [key for key in keys if key not in saved]
    if missing:
        raise EcgDataError(f"{path}: missing field(s) {', '.join(missing)}")


def attribution_files(workdir: Path, split: str) -> list[Path]:
    """The attribution archives of ``split`` in ``workdir`` (kept maps first)."""
    files = [workdir / f"attributions_{split}.npz"] if (workdir / f"attributions_{split}.npz").exists() else []
    pattern = re.compile(rf"attributions_(.+)_{re.escape(split)}\.npz")
    return files + sorted(p for p in workdir.glob(f"attributions_*_{split}.npz") if pattern.fullmatch(p.name))


def _method_maps(path: Path, split: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The archive's common fields and method -> ``(n, L, 12)`` maps."""
    saved = _load(path)
    _require(saved, ("x", "targets", "ecg_ids", "classes"), path)
    if "methods" in saved:
        maps = {str(m): saved.get(f"attribution_{m}") for m in saved["methods"]}
        absent = [m for m, a in maps.items() if a is None]
        if absent:
            raise EcgDataError(f"{path}: lists method(s) {', '.join(absent)} without their attribution_* arrays")
    else:
        _require(saved, ("attribution",), path)
        maps = {path.name[len("attributions_"): -len(f"_{split}.npz")]: saved["attribution"]}
    for method, array in maps.items():
        if array.shape != saved["x"].shape or array.ndim != 3:
            raise EcgDataError(f"{path}: {method}'s attribution has shape {array.shape}, "
                               f"the inputs {saved['x'].shape}")
    return saved, maps


def _label_names(classes: tuple[str, ...], labels: np.ndarray, explained: tuple[str, ...]) -> str:
    """The true label of a record as text: its positive classes (a binary task: its side)."""
    if len(classes) == 1:
        return explained[1] if labels[0] > 0 else explained[0]
    names = [name for name, flag in zip(classes, labels) if flag > 0]
    return ", ".join(names) if names else "none"


def _attach_predictions(ecgs: list[ExplainedEcg], path: Path, explained: tuple[str, ...]) -> None:
    """Fill true label, predicted class and probabilities from ``predictions_{split}.npz``."""
    if not path.exists():
        logger.warning("%s is absent: the viewer shows no labels or probabilities", path)
        return
    saved = _load(path)
    _require(saved, ("scores", "labels", "ecg_ids", "classes"), path)
    classes = tuple(str(c) for c in saved["classes"])
    row_of = {int(e): i for i, e in enumerate(saved["ecg_ids"])}
    for ecg in ecgs:
        row = row_of.get(ecg.ecg_id)
        if row is None:
            continue
        scores = np.asarray(saved["scores"][row], np.float64)
        ecg.true_label = _label_names(classes, saved["labels"][row], explained)
        if len(classes) == 1:  # one sigmoid output: the two sides of a binary task
            p = float(scores[0])
            ecg.predicted, ecg.p_predicted = (explained[1], p) if p >= 0.5 else (explained[0], 1 - p)
            ecg.p_explained = p if ecg.target == 1 else 1 - p
        else:
            top = int(scores.argmax())
            ecg.predicted, ecg.p_predicted = classes[top], float(scores[top])
            ecg.p_explained = float(scores[ecg.target]) if ecg.target < len(scores) else float("nan")


def _attach_curves(ecgs: list[ExplainedEcg], path: Path) -> tuple[str, int]:
    """Deletion/insertion curves per method of each ECG; returns (unit, steps)."""
    if not path.exists():
        return "", 0
    saved = _load(path)
    _require(saved, ("ecg_ids", "targets"), path)
    row_of = {(int(e), int(t)): i for i, (e, t) in enumerate(zip(saved["ecg_ids"], saved["targets"]))}
    methods = [key[: -len("_deletion")] for key in saved if key.endswith("_deletion")]
    for ecg in ecgs:
        row = row_of.get((ecg.ecg_id, ecg.target))
        if row is None:
            continue
        for method in methods:
            if f"{method}_insertion" in saved:
                ecg.curves[method] = (np.asarray(saved[f"{method}_deletion"][row], np.float64),
                                      np.asarray(saved[f"{method}_insertion"][row], np.float64))
    return str(saved.get("unit", "")), int(saved.get("steps", 0))


def read_ecgs(workdir: Path, split: str = "test") -> tuple[list[ExplainedEcg], tuple[str, ...]]:
    """Every explained ECG of ``workdir`` (signals still the normalised inputs) and the
    explained class names. Raises :class:`EcgDataError` when nothing was explained."""
    files = attribution_files(workdir, split)
    if not files:
        raise EcgDataError(
            f"{workdir}: no explained ECGs of the {split} split (expected attributions_{split}.npz "
            f"from imn reproduce, or attributions_METHOD_{split}.npz from imn explain)")
    by_key: dict[tuple[int, int], ExplainedEcg] = {}
    classes: tuple[str, ...] | None = None
    for path in files:
        saved, maps = _method_maps(path, split)
        file_classes = tuple(str(c) for c in saved["classes"])
        if classes is not None and file_classes != classes:
            raise EcgDataError(f"{path}: explains classes {file_classes}, another file of the run {classes}")
        classes = file_classes
        evidence = saved.get("evidence")
        for i, (ecg_id, target) in enumerate(zip(saved["ecg_ids"], saved["targets"])):
            key = (int(ecg_id), int(target))
            ecg = by_key.get(key)
            if ecg is None:
                x = np.asarray(saved["x"][i], np.float32)
                ecg = by_key[key] = ExplainedEcg(key[0], key[1], signal=x, x=x, maps={})
            for method, array in maps.items():
                ecg.maps.setdefault(method, np.asarray(array[i], np.float32))
            if evidence is not None and ecg.evidence is None:
                ecg.evidence = np.asarray(evidence[i], bool)
    return list(by_key.values()), classes or ()


def _raw_records(config, data: str | None, workdir: Path):
    """The run's dataset before normalisation (mV), or the reason it cannot be read."""
    from imn.train.data import load_dataset

    if data is not None:
        from imn.train.run_folder import config_with_data

        config = config_with_data(config, data, workdir)
    try:
        dataset, _ = load_dataset(config.data, seed=config.seed)
    except (OSError, ValueError) as error:
        return None, f"the run's data could not be read ({error})"
    return dataset, ""


def _use_raw_signals(ecgs: list[ExplainedEcg], dataset, num_explained: int) -> str:
    """Replace each ECG's signal by its mV record where the record matches the explained
    input; returns '' or the reason the normalised inputs stay."""
    position = {int(e): i for i, e in enumerate(dataset.ecg_ids)}
    missing = [ecg.ecg_id for ecg in ecgs if ecg.ecg_id not in position]
    if missing:
        return f"ECG(s) {missing[:5]} are not in the run's data any more"
    raw = [np.asarray(dataset.signals[position[ecg.ecg_id]], np.float32) for ecg in ecgs]
    for ecg, record in zip(ecgs, raw):
        if record.shape != ecg.x.shape or not _same_record(record, ecg.x):
            return f"the run's data no longer holds the explained input of ECG {ecg.ecg_id}"
    evidence = getattr(dataset, "evidence", None)
    for ecg, record in zip(ecgs, raw):
        ecg.signal = record
        if ecg.evidence is None and evidence is not None and dataset.num_classes == num_explained:
            ecg.evidence = np.asarray(evidence[position[ecg.ecg_id], ecg.target], bool)
    return ""


def _same_record(record: np.ndarray, x: np.ndarray) -> bool:
    """Whether every lead of ``x`` is an affine image of the mV ``record`` (normalisation)."""
    for lead in range(x.shape[1]):
        a, b = record[:, lead].astype(np.float64), x[:, lead].astype(np.float64)
        if a.std() < 1e-9 or b.std() < 1e-9:
            if not (a.std() < 1e-9 and b.std() < 1e-9):
                return False
            continue
        if np.corrcoef(a, b)[0, 1] < _MATCH_CORRELATION:
            return False
    return True


def read_run(workdir: str | Path, split: str = "test", data: str | None = None,
             name: str | None = None, dataset_cache: dict | None = None) -> RunView:
    """The explained ECGs of one run folder with labels, probabilities, curves and, where
    the run's data can be read, signals in mV. ``dataset_cache`` shares loaded datasets
    between the runs of one reproduction (same data for every model)."""
    from imn.train.config import TrainConfig

    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.exists():
        raise EcgDataError(f"{workdir}: no config.json; not a run folder of imn train")
    config = TrainConfig.from_json(config_path.read_text())
    ecgs, classes = read_ecgs(workdir, split)
    _attach_predictions(ecgs, workdir / f"predictions_{split}.npz", classes)
    unit, steps = _attach_curves(ecgs, workdir / f"faithfulness_curves_{split}.npz")

    cache = dataset_cache if dataset_cache is not None else {}
    key = json.dumps([dataclasses.asdict(config.data), config.seed, data], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = _raw_records(config, data, workdir)
    dataset, reason = cache[key]
    task = config.data.task
    if dataset is not None:
        task = dataset.task  # the task of the data read (synthetic data has its own)
        reason = _use_raw_signals(ecgs, dataset, len(classes))
    units, note = ("mV", "") if not reason else (
        "normalised", f"Signals are the model's normalised inputs, not mV: {reason}.")
    if note:
        logger.warning("%s: %s", workdir, note)
    provenance_path = workdir / "provenance.json"
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    return RunView(name=name or config.model.name, path=workdir, model=config.model.name,
                   task=task, sampling_rate=int(config.data.sampling_rate),
                   classes=classes, units=units, units_note=note, ecgs=ecgs,
                   curve_unit=unit, curve_steps=steps, provenance=provenance)


def find_runs(folder: str | Path, split: str = "test") -> list[Path]:
    """Run folders with explained ECGs: ``folder`` itself, or those under a reproduction
    (``runs/TASK/MODEL``) or any folder of runs, in sorted order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EcgDataError(f"{folder}: no such folder")
    if (folder / "config.json").exists():
        return [folder]
    runs = sorted({p.parent for p in folder.rglob("config.json") if attribution_files(p.parent, split)})
    if not runs:
        raise EcgDataError(
            f"{folder}: no run folder with explained ECGs of the {split} split under it "
            f"(a run needs config.json and attributions_{split}.npz or attributions_METHOD_{split}.npz; "
            "PTB-XL reproductions do not commit theirs, re-run imn reproduce to write them)")
    return runs


def read_runs(folder: str | Path, split: str = "test", data: str | None = None) -> list[RunView]:
    """Every explained run under ``folder`` (see :func:`find_runs`), named ``model`` or
    ``task/model`` when the folder holds several tasks."""
    cache: dict = {}
    views = [read_run(path, split, data, dataset_cache=cache) for path in find_runs(folder, split)]
    # IMN first: the page opens on the model whose explanation is its own.
    views.sort(key=lambda view: view.model != "imn")
    tasks = {view.task for view in views}
    for view in views:
        view.name = view.model if len(tasks) == 1 else f"{view.task}/{view.model}"
    return views
