"""The paper's own recipe under both selection protocols, beside the paper's numbers (issue 13).

    imn paper-recipe --data ptbxl:../shared/data/ptb-xl --preset paper --out results/paper-recipe-100hz

trains, on NORM vs MI with the paper's recipe (``imn_paper_recipe``: whole 10 s records,
per-record z-score, AdamW 1e-3 / 1e-4, batch 64, x0.1 every 10 epochs, up to 100 epochs,
early stopping with patience 10 on validation AUROC):

* ``imn_softmax``: the paper's categorical ECG-IMN (2 logits, class-weighted cross-entropy),
  the model behind its headline validation AUROC of 0.9555;
* ``cnn2d``: its Grad-CAM baseline on the same encoder (0.9699 in the paper);

under both protocols of :data:`imn.train.data.PROTOCOLS`:

* ``separate`` (this project's default): fold 9 selects the checkpoint, fold 10 reports;
* ``merged_9_10`` (the authors' code): folds 9 + 10 merged both select and report, which
  flatters the reported number; every row says which protocol it used.

The ``paper`` preset is 100 Hz (a CPU can run it on the PTB-XL slice); ``paper500`` is the
paper's 500 Hz, meant for a GPU. It writes into ``--out``:

* ``runs/PROTOCOL/MODEL/seedS/``: each run folder (resumable: a finished run is skipped);
* ``table_paper_recipe.{csv,md}``: per run, the selection AUROC, the reported AUROC with its
  bootstrap interval, how training ended, its wall time and device, and the paper's number;
* ``curves_PROTOCOL.{pdf,png}``: train loss and validation AUROC per epoch;
* ``paper_recipe.json``: the plan (every training config) and the wall times.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

from imn.errors import UserError
from imn.report import write_table
from imn.reproduce.tables import protocol_label, training_ended
from imn.reproduce.trainability import train_missing, write_record
from imn.train.config import TrainConfig, apply_overrides
from imn.train.data import PROTOCOLS
from imn.train.presets import check_preset, imn_paper_recipe
from imn.train.run_folder import read_history, read_metrics, read_provenance, read_run_config

MODELS = ("imn_softmax", "cnn2d")
TASK = "norm_vs_mi"
# The paper's best validation AUROC on NORM vs MI (500 Hz, folds 9 + 10 merged, the authors'
# checkpoint names): the categorical IMN and the 2-D CNN + Grad-CAM baseline.
PAPER_AUROC = {"imn_softmax": 0.9555, "cnn2d": 0.9699}
PAPER_SETTING = "500 Hz, folds 9+10 merged"


@dataclasses.dataclass(frozen=True)
class PaperRecipePlan:
    preset: str
    ptbxl_root: str
    seeds: tuple[int, ...] = (0,)
    models: tuple[str, ...] = MODELS
    protocols: tuple[str, ...] = PROTOCOLS
    overrides: tuple[str, ...] = ()  # ``key=value`` for every run

    def config(self, protocol: str, model: str, seed: int) -> TrainConfig:
        config = imn_paper_recipe(self.preset, model=model, task=TASK)
        sets = ["data.source=ptbxl", f"data.root={self.ptbxl_root}", f"data.protocol={protocol}",
                f"seed={seed}", *self.overrides]
        return apply_overrides(config, sets)

    def runs(self) -> list[tuple[str, str, int]]:
        """Every ``(protocol, model, seed)``, protocol-major: a plan stopped early has compared
        both models under the first protocol."""
        return [(p, m, s) for p in self.protocols for s in self.seeds for m in self.models]

    def run_dir(self, out: Path, protocol: str, model: str, seed: int) -> Path:
        return out / "runs" / protocol / model / f"seed{seed}"


def make_plan(preset: str, ptbxl_root: str, *, seeds: tuple[int, ...] = (0,),
              models: tuple[str, ...] | None = None, protocols: tuple[str, ...] | None = None,
              overrides: tuple[str, ...] = ()) -> PaperRecipePlan:
    check_preset(preset)
    models = tuple(models or MODELS)
    protocols = tuple(protocols or PROTOCOLS)
    for kind, chosen, known in (("model", models, MODELS), ("protocol", protocols, PROTOCOLS)):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise UserError(f"unknown {kind}(s) {unknown}; expected some of {known}")
    if not seeds:
        raise ValueError("the plan needs at least one seed")
    return PaperRecipePlan(preset, ptbxl_root, tuple(seeds), models, protocols, tuple(overrides))


def train_all(plan: PaperRecipePlan, out: Path) -> dict[str, float]:
    """Trains every run not finished yet; returns wall seconds per run trained now."""
    return train_missing([(f"{p}/{m}/seed{s}", plan.run_dir(out, p, m, s),
                           functools.partial(plan.config, p, m, s)) for p, m, s in plan.runs()])


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _device(provenance: dict | None) -> str:
    """``'cpu (AMD EPYC, 2 cores)'`` or the accelerator's kind (``'NVIDIA H200'``)."""
    if not provenance:
        return "unknown"
    device = provenance.get("device", {})
    if device.get("platform") == "cpu":
        model = device.get("cpu_model") or device.get("cpu", "")
        cores = device.get("cores")
        return f"cpu ({model}{f', {cores} cores' if cores else ''})"
    return str(device.get("device_kind", device.get("platform", "unknown")))


def table_rows(plan: PaperRecipePlan, out: Path) -> list[dict[str, Any]]:
    """One row per finished run: selection and reported AUROC, training, cost, device."""
    rows = []
    for protocol, model, seed in plan.runs():
        workdir = plan.run_dir(out, protocol, model, seed)
        metrics = read_metrics(workdir)
        if metrics is None:
            continue
        test = metrics["test"]
        # metrics.json writes an undefined AUROC or interval (one label only, no bootstrap) as null
        auroc, low, high = (_number(test.get(key)) for key in
                            ("macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high"))
        # Training time from the epochs' own clocks: it survives resumption after a kill.
        train_minutes = sum(h.get("epoch_seconds", 0.0) for h in read_history(workdir)) / 60
        rows.append({
            "model": model, "protocol": protocol, "protocol_label": protocol_label(protocol),
            "seed": seed, "sampling_rate": read_run_config(workdir).data.sampling_rate,
            "selection_auroc": _number(metrics.get("best_val_macro_auroc")),
            "reported_auroc": auroc, "reported_ci_low": low, "reported_ci_high": high,
            "reported_records": test["n_records"],
            "reported": f"{auroc:.3f} [{low:.3f}, {high:.3f}]",
            "training_ended": training_ended(metrics),
            "train_minutes": train_minutes, "train_time": f"{train_minutes:.1f}",
            "device": _device(read_provenance(workdir)),
            # as a string: the paper gives four decimals, the table's number format three
            "paper_auroc": f"{PAPER_AUROC[model]:.4f}",
        })
    return rows


TABLE_COLUMNS = [
    ("model", "model"), ("protocol_label", "selected / reported on"), ("seed", "seed"),
    ("sampling_rate", "Hz"), ("selection_auroc", "best validation AUROC"),
    ("reported", "reported AUROC [95% CI]"), ("reported_records", "reported records"),
    ("training_ended", "training ended by"), ("train_time", "training minutes"),
    ("device", "device"), ("paper_auroc", f"paper ({PAPER_SETTING})"),
]


def run_paper_recipe(plan: PaperRecipePlan, out: str | Path, *, figures: bool = True) -> dict[str, Any]:
    """Train what is missing, then write the table, the curves and ``paper_recipe.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds = train_all(plan, out)
    written = write_table(table_rows(plan, out), out / "table_paper_recipe", TABLE_COLUMNS)
    if figures:
        from imn.plots.trainability import plot_learning_curves

        for protocol in plan.protocols:
            histories = {model: [read_history(plan.run_dir(out, protocol, model, s)) for s in plan.seeds]
                         for model in plan.models}
            written += plot_learning_curves(histories, out / f"curves_{protocol}",
                                            title=f"{TASK}, {protocol_label(protocol)}")
    record = write_record(out / "paper_recipe.json", {
        "plan": dataclasses.asdict(plan),
        "configs": {f"{p}/{m}/seed{s}": plan.config(p, m, s).to_dict() for p, m, s in plan.runs()},
    }, seconds, time.perf_counter() - started)
    return {"written": [str(p) for p in written], **record}
