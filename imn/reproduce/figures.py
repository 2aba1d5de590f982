"""The figures of a reproduction, drawn from its run folders (PDF and 300 dpi PNG each).

For the explained task, one test ECG is shown per model (the same choice rule for every
model): on synthetic data the first kept ECG whose ground-truth evidence is localised (its
mask is drawn), on PTB-XL the first kept ECG that truly has an abnormal explained class
(e.g. an MI-positive record for NORM vs MI). Titles give the model, the method, the ECG id,
its true labels and the model's probability for the explained class. Signals are drawn in
millivolts from the raw records, attributions are those computed on the normalised input
the model saw.

Figures written (``figures/``):

* per explained model: ``{model}_clinical_4x3``, ``_clinical_6x2``, ``_methods``,
  ``_segment_heatmap``, ``_top_segments``, ``_lead_focus``, ``_deletion_insertion``; on
  synthetic data ``_localisation`` (one ECG per finding, a strip per method); for IMN the
  four ``imn_xplaim_*`` views and (when its checkpoint is present) ``imn_weights``;
* per task: ``roc_pr_{task}`` (ROC + PR per class, bootstrap bands) and
  ``reliability_{task}`` (a panel per model with saved logits: test split raw,
  temperature-scaled and prior-corrected, with the ECE a calibrated model would show);
* across models: ``deletion_auc_per_ecg``, ``cost_vs_faithfulness``,
  ``training_curves_{task}``; ``sanity_randomisation`` (cascading randomisation) and
  ``beat_average_{model}`` come from :mod:`imn.reproduce.model_figures`, which re-opens
  the trained models.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from imn.reproduce.plan import Plan, run_dir
from imn.train.run_folder import read_history

logger = logging.getLogger("imn")

# The explanation each kind of model is drawn with in the single-method figures.
PRIMARY_METHOD = {"imn": "imn", "xecgnet": "attention", "xecgnet_ft": "attention"}
BASELINE_PRIMARY = "gradcam"
# Class names that mean "no finding": an example ECG of such a class shows nothing to find.
_NORMAL_NAMES = ("NORM", "normal", "not_")


def primary_method(model: str, methods: list[str] | None = None) -> str:
    """The method drawn on a model's ECG figures: its own (IMN) or Grad-CAM, or, when the
    plan did not explain with that one, the first explained method that is not the control."""
    preferred = PRIMARY_METHOD.get(model, BASELINE_PRIMARY)
    if methods is None or preferred in methods:
        return preferred
    return next((m for m in methods if m != "random"), methods[0])


def _load_npz(path: Path) -> dict | None:
    if not path.exists():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def _is_normal(name: str) -> bool:
    return any(name.startswith(prefix) for prefix in _NORMAL_NAMES)


def kept_labels(saved: dict, predictions: dict | None) -> list[dict]:
    """Per kept ECG: ``{'true': [class names], 'explained': name, 'p': probability of the
    explained class}`` from the run's test predictions (empty lists / None when absent).

    A binary task's kept attributions use the two-class view (classes ``(negative,
    positive)``, target 0 or 1) while its predictions hold one column, p(positive)."""
    classes = [str(c) for c in saved["classes"]]
    rows = []
    position = {}
    if predictions is not None:
        position = {int(i): k for k, i in enumerate(predictions["ecg_ids"])}
    for ecg_id, target in zip(saved["ecg_ids"], saved["targets"]):
        target = int(target)
        info = {"true": [], "explained": classes[min(target, len(classes) - 1)], "p": None}
        k = position.get(int(ecg_id))
        if k is not None:
            labels, scores = predictions["labels"][k], predictions["scores"][k]
            names = [str(c) for c in predictions["classes"]]
            if len(names) == 1 and len(classes) == 2:  # binary: the two-class view
                info["true"] = [classes[1] if labels[0] >= 0.5 else classes[0]]
                info["p"] = float(scores[0] if target == 1 else 1.0 - scores[0])
            else:
                info["true"] = [n for n, y in zip(names, labels) if y >= 0.5]
                info["p"] = float(scores[target])
        rows.append(info)
    return rows


def choose_ecg(saved: dict, labels: list[dict] | None = None) -> int:
    """Index of the kept ECG to draw: the first correctly predicted finding, so that the
    figure shows what the model got right (explained class true and abnormal, its p >= 0.5;
    with evidence masks also a local mask, covering less than half the record); failing
    that the first true abnormal one, the first true one, the first local one, else 0."""
    evidence = saved.get("evidence")
    count = len(evidence) if evidence is not None else len(labels or [])
    infos = list(labels or [])[:count]
    infos += [{"explained": None, "true": [], "p": None}] * (count - len(infos))

    def local(index: int) -> bool:
        return evidence is None or 0 < evidence[index].mean() < 0.5

    def true_finding(info: dict) -> bool:
        return info["explained"] in info["true"] and not _is_normal(info["explained"])

    preferences = (
        lambda i, info: local(i) and true_finding(info) and (info["p"] or 0.0) >= 0.5,
        lambda i, info: local(i) and true_finding(info),
        lambda i, info: local(i) and info["explained"] in info["true"],
        lambda i, info: evidence is not None and local(i),
    )
    for wanted in preferences:
        for index, info in enumerate(infos):
            if wanted(index, info):
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


def localisation_examples(saved: dict, signals: np.ndarray, labels: list[dict]) -> list:
    """One :class:`LocalisationExample` per explained finding among the kept ECGs (the first
    kept ECG of each class whose evidence is local), in class order."""
    from imn.plots.localisation import LocalisationExample

    methods = [str(m) for m in saved["methods"]]
    chosen: dict[int, int] = {}
    for index, (target, mask) in enumerate(zip(saved["targets"], saved["evidence"])):
        if 0 < mask.mean() < 0.5:
            chosen.setdefault(int(target), index)
    examples = []
    for target in sorted(chosen):
        index = chosen[target]
        info = labels[index]
        p = f", p = {info['p']:.2f}" if info["p"] is not None else ""
        examples.append(LocalisationExample(
            signals[index], saved["evidence"][index],
            {m: saved[f"attribution_{m}"][index] for m in methods},
            f"{info['explained']}: ECG {int(saved['ecg_ids'][index])}{p}"))
    return examples


def ecg_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """Per model: attribution on the clinical layouts, methods side by side, the lead x
    segment heatmap, top-k segments, a single-lead focus, localisation examples (synthetic);
    ECG-XPLAIM's four views for IMN."""
    from imn.plots import attribution as plots
    from imn.plots.localisation import plot_localisation_examples
    from imn.plots.style import method_label, model_label

    written: list[Path] = []
    rate = _sampling_rate(plan)
    dataset = None
    for model in plan.models_explained:
        workdir = run_dir(out, plan.explain_task, model)
        saved = _load_npz(workdir / "attributions_test.npz")
        if saved is None:
            logger.warning("no kept attributions for %s; its ECG figures are skipped", model)
            continue
        labels = kept_labels(saved, _load_npz(workdir / "predictions_test.npz"))
        index = choose_ecg(saved, labels)
        dataset = dataset if dataset is not None else raw_dataset(plan)
        signals = raw_signals(dataset, saved["ecg_ids"])
        signal = signals[index]
        methods = [str(m) for m in saved["methods"]]
        maps = {m: saved[f"attribution_{m}"][index] for m in methods}
        primary = primary_method(model, methods)
        attribution = maps[primary]
        evidence = saved["evidence"][index] if "evidence" in saved else None
        info = labels[index]
        ecg_id = int(saved["ecg_ids"][index])
        title = plots.ecg_title(model, primary, ecg_id, true_labels=info["true"],
                                explained=info["explained"], probability=info["p"])
        stem = figures / f"{model}"
        for layout, suffix in (("4x3+rhythm", "clinical_4x3"), ("6x2", "clinical_6x2")):
            written += plots.save_figure(plots.plot_attribution_ecg(
                signal, attribution, rate, layout=layout, title=title, evidence=evidence),
                Path(f"{stem}_{suffix}"))
        short = title.split(" | ", 1)[1]
        written += plots.save_figure(plots.plot_methods_side_by_side(
            signal, maps, rate, evidence=evidence,
            title=f"{model_label(model)}: every method | {short}"), Path(f"{stem}_methods"))
        written += plots.save_figure(plots.plot_segment_heatmap(attribution, rate, title=title),
                                     Path(f"{stem}_segment_heatmap"))
        written += plots.save_figure(plots.plot_top_segments(signal, attribution, rate,
                                                             title=title, evidence=evidence),
                                     Path(f"{stem}_top_segments"))
        written += plots.save_figure(plots.plot_lead_focus(signal, attribution, rate,
                                                           title=title),
                                     Path(f"{stem}_lead_focus"))
        if "evidence" in saved:
            examples = localisation_examples(saved, signals, labels)
            if examples:
                written += plots.save_figure(plot_localisation_examples(
                    examples, rate, title=f"{model_label(model)}: one test ECG per finding"),
                    Path(f"{stem}_localisation"))
        if model == "imn":
            written += plots.plot_xplaim_views(signal, attribution, rate,
                                               out_stem=figures / "imn_xplaim")
        logger.info("ECG figures of %s drawn with %s", model, method_label(primary))
    return written


def curve_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """Deletion and insertion curves per model; per-ECG deletion AUCs of every model."""
    from imn.plots import curves as plots
    from imn.plots.style import model_label, save_figure
    from imn.plots.summary import curve_aucs, plot_deletion_auc_distributions

    written: list[Path] = []
    aucs: dict[str, dict[str, np.ndarray]] = {}
    for model in plan.models_explained:
        saved = _load_npz(run_dir(out, plan.explain_task, model) / "faithfulness_curves_test.npz")
        if saved is None:
            continue
        deletion = {k[: -len("_deletion")]: saved[k] for k in saved if k.endswith("_deletion")}
        insertion = {k[: -len("_insertion")]: saved[k] for k in saved if k.endswith("_insertion")}
        n = len(saved["ecg_ids"]) if "ecg_ids" in saved else None
        title = f"{model_label(model)}: {plan.explain_task}, test split" + (f", n = {n}" if n else "")
        written += save_figure(plots.plot_deletion_insertion(deletion, insertion, title=title),
                               figures / f"{model}_deletion_insertion")
        aucs[model] = {method: curve_aucs(curve) for method, curve in deletion.items()}
    if aucs:
        written += save_figure(plot_deletion_auc_distributions(
            aucs, title=f"Deletion AUC per ECG ({plan.explain_task}, test split)"),
            figures / "deletion_auc_per_ecg")
    return written


def roc_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """One ROC + PR figure per task: every class, every model, bootstrap bands."""
    from imn.plots import curves as plots
    from imn.plots.style import save_figure

    written: list[Path] = []
    for task in plan.tasks:
        per_class: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for model in plan.models:
            saved = _load_npz(run_dir(out, task, model) / "predictions_test.npz")
            if saved is None:
                continue
            for column, name in enumerate(saved["classes"]):
                labels = saved["labels"][:, column]
                if labels.min() == labels.max():
                    logger.warning("%s/%s: class %s has one label value on the test split; "
                                   "no ROC", task, model, name)
                    continue
                per_class.setdefault(str(name), {})[model] = (labels, saved["scores"][:, column])
        if per_class:
            fig = plots.plot_roc_pr_panel(per_class, title=f"{task}: test split")
            written += save_figure(fig, figures / f"roc_pr_{task}")
    return written


def reliability_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    """One reliability figure per task: a panel per model with saved logits (test split; raw,
    temperature-scaled with the T fitted on validation, prior-corrected), each with the ECE a
    perfectly calibrated model would show on those records."""
    from imn.plots.calibration import panel_sizes, plot_reliability_grid
    from imn.plots.style import model_label, save_figure
    from imn.train.calibration import ece_floor
    from imn.train.run_folder import read_metrics
    from imn.train.trainer import reliability_series

    written: list[Path] = []
    cache: dict = {}  # training labels, for runs that predate the saved prior offset
    for task in plan.tasks:
        panels, floors = {}, {}
        for model in plan.models:
            workdir = run_dir(out, task, model)
            if (metrics := read_metrics(workdir)) is None:
                continue
            try:
                series = reliability_series(workdir, metrics, "test", cache)
            except (FileNotFoundError, ValueError):  # no predictions, or no logits (feature route)
                continue
            panels[model_label(model)] = series
            floors[model_label(model)] = float(np.mean(ece_floor(series["raw"][1])["mean"]))
        if panels:
            fig = plot_reliability_grid(panels, floors=floors,
                                        title=f"{task}: test split ({panel_sizes(panels)} per panel)")
            written += save_figure(fig, figures / f"reliability_{task}")
    return written


def summary_figures(plan: Plan, out: Path, figures: Path, device: str | None = None) -> list[Path]:
    """Cost against faithfulness (explained task) and training curves (every task)."""
    from imn.plots.style import save_figure
    from imn.plots.summary import plot_cost_vs_faithfulness, plot_training_curves

    written: list[Path] = []
    points = []
    for model in plan.models_explained:
        path = run_dir(out, plan.explain_task, model) / "faithfulness_test.json"
        if not path.exists():
            continue
        for row in json.loads(path.read_text())["rows"]:
            points.append({"model": model, "method": row["method"],
                           "ms_per_ecg": float(row["explain_ms_per_ecg"]),
                           **{key: float(row[key]) for key in
                              ("deletion_auc", "deletion_auc_ci_low", "deletion_auc_ci_high")}})
    finite = [p for p in points if np.isfinite(p["ms_per_ecg"]) and p["ms_per_ecg"] > 0
              and np.isfinite(p["deletion_auc"])]
    if finite:
        written += save_figure(plot_cost_vs_faithfulness(
            finite, title=f"Cost vs faithfulness ({plan.explain_task})", device=device),
            figures / "cost_vs_faithfulness")
    for task in plan.tasks:
        histories = {}
        for model in plan.models:
            if history := read_history(run_dir(out, task, model)):
                histories[model] = history
        if histories:
            written += save_figure(plot_training_curves(histories, title=f"Training: {task}"),
                                   figures / f"training_curves_{task}")
    return written


def _sampling_rate(plan: Plan) -> int:
    return plan.config(plan.models[0], plan.explain_task).data.sampling_rate


def figures_stage(plan: Plan, out: Path, device: str | None = None) -> list[Path]:
    from imn.reproduce.model_figures import model_figures

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = ecg_figures(plan, out, figures)
    written += curve_figures(plan, out, figures)
    written += roc_figures(plan, out, figures)
    written += reliability_figures(plan, out, figures)
    written += summary_figures(plan, out, figures, device)
    written += model_figures(plan, out, figures)
    logger.info("%d figure files in %s", len(written), figures)
    return written
