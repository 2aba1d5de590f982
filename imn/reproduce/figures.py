"""The figures of a reproduction, drawn from its run folders (PDF and 300 dpi PNG each).

For the explained task, one test ECG is shown per model (the same ECG for every model; on
synthetic data the first kept ECG whose ground-truth evidence is localised, so the
localisation can be judged by eye). Signals are drawn in millivolts from the raw records,
attributions are those computed on the normalised input the model saw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imn.reproduce.plan import Plan
from imn.reproduce.runner import run_dir

logger = logging.getLogger("imn")

# The explanation each kind of model is drawn with in the single-method figures.
PRIMARY_METHOD = {"imn": "imn", "xecgnet": "attention", "xecgnet_ft": "attention"}
BASELINE_PRIMARY = "gradcam"


def primary_method(model: str, methods: list[str] | None = None) -> str:
    """The method drawn on a model's ECG figures: its own (IMN) or Grad-CAM, or, when the
    plan did not explain with that one, the first explained method that is not the control."""
    preferred = PRIMARY_METHOD.get(model, BASELINE_PRIMARY)
    if methods is None or preferred in methods:
        return preferred
    return next((m for m in methods if m != "random"), methods[0])


def _load_attributions(workdir: Path) -> dict | None:
    path = workdir / "attributions_test.npz"
    if not path.exists():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def choose_ecg(saved: dict) -> int:
    """Index of the kept ECG to draw: the first with localised evidence if masks exist."""
    evidence = saved.get("evidence")
    if evidence is None:
        return 0
    for index, mask in enumerate(evidence):
        if 0 < mask.mean() < 0.5:
            return index
    return 0


def raw_dataset(plan: Plan):
    """The explained task's records as loaded before normalisation (signals in mV). Every
    model of a plan reads the same data for a task, so this is loaded once per stage."""
    from imn.train.data import load_dataset

    config = plan.config(plan.models[0], plan.explain_task)
    dataset, _ = load_dataset(config.data, seed=config.seed)
    return dataset


def raw_signals(dataset, ecg_ids: np.ndarray) -> np.ndarray:
    """The records ``ecg_ids`` of ``dataset`` in mV, ``(n, L, 12)``."""
    position = {int(ecg_id): index for index, ecg_id in enumerate(dataset.ecg_ids)}
    missing = [int(i) for i in ecg_ids if int(i) not in position]
    if missing:
        raise ValueError(f"ECGs {missing} of the explained run are not in the dataset any more")
    return np.asarray(dataset.signals[[position[int(i)] for i in ecg_ids]], np.float32)


def ecg_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """Per model: attribution on the clinical layouts, methods side by side, the lead x
    segment heatmap, top-k segments, a single-lead focus; ECG-XPLAIM's four views for IMN."""
    from imn.plots import attribution as plots

    written: list[Path] = []
    rate = _sampling_rate(plan)
    dataset = None
    for model in plan.models_explained:
        saved = _load_attributions(run_dir(out, plan.explain_task, model))
        if saved is None:
            logger.warning("no kept attributions for %s; its ECG figures are skipped", model)
            continue
        index = choose_ecg(saved)
        dataset = dataset if dataset is not None else raw_dataset(plan)
        signal = raw_signals(dataset, saved["ecg_ids"][index : index + 1])[0]
        methods = [str(m) for m in saved["methods"]]
        maps = {m: saved[f"attribution_{m}"][index] for m in methods}
        primary = primary_method(model, methods)
        attribution = maps[primary]
        ecg_id = int(saved["ecg_ids"][index])
        classes = saved["classes"]
        label = str(classes[min(int(saved["targets"][index]), len(classes) - 1)])
        title = f"{model}, {primary}: ECG {ecg_id}, explained class {label}"
        stem = figures / f"{model}"
        for layout, suffix in (("4x3+rhythm", "clinical_4x3"), ("6x2", "clinical_6x2")):
            written += plots.save_figure(plots.plot_attribution_ecg(
                signal, attribution, rate, layout=layout, title=title), Path(f"{stem}_{suffix}"))
        written += plots.save_figure(plots.plot_methods_side_by_side(
            signal, maps, rate), Path(f"{stem}_methods"))
        written += plots.save_figure(plots.plot_segment_heatmap(attribution, rate),
                                     Path(f"{stem}_segment_heatmap"))
        written += plots.save_figure(plots.plot_top_segments(signal, attribution, rate),
                                     Path(f"{stem}_top_segments"))
        written += plots.save_figure(plots.plot_lead_focus(signal, attribution, rate),
                                     Path(f"{stem}_lead_focus"))
        if model == "imn":
            written += plots.plot_xplaim_views(signal, attribution, rate,
                                               out_stem=figures / "imn_xplaim")
    return written


def curve_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """Deletion and insertion curves (mean and band) per method, one figure per model."""
    from imn.plots import curves as plots
    from imn.plots.attribution import save_figure

    written: list[Path] = []
    for model in plan.models_explained:
        path = run_dir(out, plan.explain_task, model) / "faithfulness_curves_test.npz"
        if not path.exists():
            continue
        with np.load(path) as saved:
            deletion = {k[: -len("_deletion")]: saved[k] for k in saved.files if k.endswith("_deletion")}
            insertion = {k[: -len("_insertion")]: saved[k] for k in saved.files if k.endswith("_insertion")}
        written += save_figure(plots.plot_deletion_insertion(deletion, insertion, title=model),
                                     figures / f"{model}_deletion_insertion")
    return written


def roc_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """ROC curves of every model, one figure per task and class."""
    from imn.plots import curves as plots
    from imn.plots.attribution import save_figure

    written: list[Path] = []
    for task in plan.tasks:
        per_class: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for model in plan.models:
            path = run_dir(out, task, model) / "predictions_test.npz"
            if not path.exists():
                continue
            with np.load(path) as saved:
                for column, name in enumerate(saved["classes"]):
                    per_class.setdefault(str(name), {})[model] = (
                        saved["labels"][:, column], saved["scores"][:, column])
        for name, curves in per_class.items():
            fig = plots.plot_roc_curves(curves, title=f"{task}: {name} (test split)")
            written += save_figure(fig, figures / f"roc_{task}_{name}")
    return written


def _sampling_rate(plan: Plan) -> int:
    return plan.config(plan.models[0], plan.explain_task).data.sampling_rate


def figures_stage(plan: Plan, out: Path) -> list[Path]:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = ecg_figures(plan, out, figures)
    written += curve_figures(plan, out, figures)
    written += roc_figures(plan, out, figures)
    logger.info("%d figure files in %s", len(written), figures)
    return written
