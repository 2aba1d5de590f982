"""Explaining and scoring a trained run: what ``imn explain`` and ``imn faithfulness`` call.

A run folder (from ``imn train``) is reopened from its ``config.json``; the best checkpoint is
restored into an eval-mode model; the first ``n`` records of a split are explained for their
target (:func:`open_run`: the class the model predicts, and for a binary task the side it
predicts, so every explained prediction is a call the model really makes; or, on synthetic
data, a planted class with local evidence); every faithfulness metric re-runs the model on
the perturbed inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from imn import atomic
from imn.errors import UserError
from imn.explain.api import METHODS, attribute
from imn.explain.binary import two_class_view
from imn.explain.model_fns import predict_fn as make_predict_fn
from imn.report import CI_SUFFIXES, DEFINED_SUFFIX, write_table
from imn.train.metrics import bootstrap_indices, percentile_interval
from imn.train.steps import merge_eval_model
from imn.train.run_folder import config_with_data, read_run_config
from imn.train.trainer import predict, restore_for_evaluation, setup_run

logger = logging.getLogger("imn")

# Methods that need an extra input drawn here: expected gradients needs training ECGs.
_BACKGROUND_SIZE = 32


@dataclasses.dataclass
class ExplainedRun:
    """A restored run, ready to explain: eval-mode model, split data and targets."""

    model: Any
    x: np.ndarray  # (n, L, 12), normalised as in training
    targets: np.ndarray  # (n,) int
    evidence: np.ndarray | None  # (n, L, 12) bool masks of the target class (synthetic data)
    ecg_ids: np.ndarray
    background: np.ndarray  # (M, L, 12) training ECGs
    classes: tuple[str, ...]
    sampling_rate: int  # Hz of x: the insertion baseline's blur is 0.1 s wide

    @functools.cached_property
    def predict(self):
        """The probability function, built once: the metrics take it as a static argument
        of their jitted programs, so one object per run means one compilation per metric."""
        return make_predict_fn(self.model)

    @functools.cached_property
    def randomized_model(self):
        """The model with every parameter re-drawn (seed 1), built once for all methods."""
        from imn.faithfulness import randomized_copy

        return randomized_copy(self.model, seed=1)


TARGET_POLICIES = ("predicted", "evidence")


def _local_evidence(part) -> np.ndarray:
    """``(N, K)`` bool: the record carries the class and its evidence mask is local (covers
    some but not all of the record; AFIB's and NORM's cover everything, so no map can point
    at them)."""
    fraction = np.asarray(part.evidence).mean(axis=(2, 3))
    return (part.labels > 0) & (fraction > 0) & (fraction < 1)


def _binary_negative_name(task: str, positive: str) -> str:
    """The name of class 0 of a binary task (PTB-XL's ``norm_vs_X`` contrasts X with NORM)."""
    return "NORM" if task.startswith("norm_vs_") else f"not {positive}"


def open_run(workdir: str | Path, split: str = "test", n: int | None = None,
             targets: str = "predicted", data: str | None = None,
             allow_data_move: bool = False) -> ExplainedRun:
    """Restore a run and choose what to explain.

    ``targets="predicted"``: the first ``n`` records of the split, each for the class the
    model scores highest. A binary task (one output) is explained for the side the model
    predicts, class 1 when ``p >= 0.5`` and class 0 otherwise, through the two-class view of
    :mod:`imn.explain.binary` (so ``classes`` becomes ``(class 0, class 1)``).
    ``targets="evidence"`` (data with evidence masks: the synthetic benchmark): the first
    ``n`` records carrying a class with a local evidence mask, each for the highest-scored
    such class, so that every explanation can be scored for localisation.
    ``data``: where the run's data lives now (KIND:DIR), if not where ``config.json`` says;
    ``allow_data_move``: accept it in a folder other than the one the run was trained on.
    """
    if targets not in TARGET_POLICIES:
        raise ValueError(f"unknown target policy {targets!r}; expected one of {TARGET_POLICIES}")
    workdir = Path(workdir)
    config = read_run_config(workdir)
    if data is not None:
        config = config_with_data(config, data, workdir)
    if config.data.crop_seconds is not None:
        raise ValueError(
            f"{workdir} was trained on {config.data.crop_seconds} s crops; explaining whole records "
            "of a crop-trained model is not supported yet"
        )
    run = setup_run(config, workdir, write_files=False, allow_data_move=allow_data_move)
    try:
        state, _ = restore_for_evaluation(run)
        part = run.data.split(split)
        rows = np.arange(len(part))
        if targets == "evidence":
            if part.evidence is None:
                raise ValueError(f"{workdir}: targets='evidence' needs data with evidence masks "
                                 "(the synthetic benchmark); this run's data has none")
            local = _local_evidence(part)
            rows = np.flatnonzero(local.any(axis=1))
        rows = rows if n is None else rows[:n]
        x = np.asarray(part.signals[rows], np.float32)
        scores = predict(run, state, x)
        model = merge_eval_model(run.steps, state)
    finally:
        run.checkpoints.close()
    classes = run.data.classes
    evidence = None
    if targets == "evidence":
        label_targets = np.where(local[rows], scores, -np.inf).argmax(axis=1).astype(np.int32)
    else:
        label_targets = scores.argmax(axis=1).astype(np.int32)  # a column of the labels
    if part.evidence is not None:
        evidence = np.asarray(part.evidence[rows, label_targets])
    if len(classes) == 1 and targets == "predicted":
        target_ids = (scores[:, 0] >= 0.5).astype(np.int32)
        # A softmax head's logits already are (class 0, class 1) (imn.train.losses).
        if getattr(model, "head_type", "sigmoid") == "sigmoid":
            model = two_class_view(model)
        classes = (_binary_negative_name(config.data.task, classes[0]), classes[0])
    else:
        target_ids = label_targets
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(run.data.train), size=min(_BACKGROUND_SIZE, len(run.data.train)), replace=False)
    return ExplainedRun(model, x, target_ids, evidence, part.ecg_ids[rows],
                        np.asarray(run.data.train.signals[np.sort(pick)], np.float32), classes,
                        run.data.sampling_rate)


def method_options(method: str, explained: ExplainedRun, options: dict | None = None) -> dict:
    """Default options per method (a background from the training split where needed)."""
    merged = dict(options or {})
    if method == "gradient_shap":
        merged.setdefault("background", explained.background)
    return merged


# JAX's own timings of tracing, lowering and XLA compilation (jax._src.dispatch event names).
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


@contextmanager
def compile_seconds():
    """Yield a one-item list that ends up holding the seconds JAX spent tracing, lowering and
    compiling inside the block. Wall time minus this matched a second, cached call to within
    a few percent for saliency, integrated gradients and Kernel SHAP on IMN."""
    import jax.monitoring

    total = [0.0]

    def listener(event: str, seconds: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:
            total[0] += seconds

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield total
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def explain(explained: ExplainedRun, method: str, options: dict | None = None) -> tuple[np.ndarray, float]:
    """Attributions ``(n, L, 12)`` for the run's targets, and the seconds they took without
    JAX's compilation (one call, so an expensive method is not paid twice)."""
    check_methods([method])
    options = method_options(method, explained, options)
    with compile_seconds() as compiling:
        start = time.perf_counter()
        attribution = np.asarray(attribute(method, explained.model, explained.x, explained.targets, **options))
        seconds = time.perf_counter() - start
    return attribution, max(seconds - compiling[0], 0.0)


def explain_run(workdir: str | Path, method: str, split: str = "test", n: int | None = None,
                options: dict | None = None, targets: str = "predicted", data: str | None = None,
                allow_data_move: bool = False) -> Path:
    """Write ``attributions_{method}_{split}.npz`` into the run folder and return its path
    (``targets``, ``data``, ``allow_data_move``: as for :func:`open_run`)."""
    check_methods([method])
    explained = open_run(workdir, split, n, targets=targets, data=data, allow_data_move=allow_data_move)
    attribution, seconds = explain(explained, method, options)
    out = Path(workdir) / f"attributions_{method}_{split}.npz"
    atomic.savez_compressed(out, attribution=attribution, x=explained.x, targets=explained.targets,
                            ecg_ids=explained.ecg_ids, classes=np.asarray(explained.classes),
                            seconds=seconds)
    logger.info("%s: %d ECGs in %.1f s -> %s", method, len(explained.x), seconds, out)
    return out


def _mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over ECGs and its percentile-bootstrap 95% interval (NaN entries ignored)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[bootstrap_indices(len(values), n_boot, seed)].mean(axis=1)
    low, high = percentile_interval(means)
    return float(values.mean()), float(low), float(high)


@dataclasses.dataclass(frozen=True)
class FaithfulnessSettings:
    """What :func:`score_method` computes and at which budget.

    ``steps``/``unit``/``segments``: the deletion and insertion curves (and AOPC from them).
    ``correlation_runs``: random feature subsets per ECG for faithfulness correlation.
    ``infidelity_perturbations``: Gaussian draws per ECG for infidelity (multiplicative noise,
    std ``infidelity_noise``, with Yeh et al.'s optimal scaling, so logit-unit attributions
    are not penalised for their scale against probability drops).
    ``sensitivity_samples``/``sensitivity_radius``: re-explanations per ECG for
    max-sensitivity; 0 skips it. ``sensitivity_skip``: methods never re-run for it (NaN in
    the table): by default Kernel SHAP, whose re-runs would cost ``sensitivity_samples``
    Kernel SHAPs per ECG; small budgets also skip the path methods (integrated gradients,
    expected gradients), whose re-runs cost ``sensitivity_samples`` times their many
    gradient evaluations.
    ``randomization``: correlate each explanation with the same method on a copy of the
    model whose parameters are all re-drawn (the end of Adebayo et al.'s cascade).
    ``method_options``: per-method options, e.g. ``{"kernel_shap": {"n_samples": 512}}``.
    ``targets``: which records and classes are explained (:func:`open_run`): ``"predicted"``
    or ``"evidence"`` (synthetic data: planted classes with local evidence, for localisation).
    """

    steps: int = 50
    unit: str = "patch"
    segments: int = 20
    correlation_runs: int = 100
    infidelity_perturbations: int = 32
    infidelity_noise: float = 0.1
    sensitivity_samples: int = 8
    sensitivity_radius: float = 0.05
    sensitivity_skip: tuple[str, ...] = ("kernel_shap",)
    randomization: bool = True
    method_options: dict = dataclasses.field(default_factory=dict)
    targets: str = "predicted"


def sensitivity_applies(method: str, settings: FaithfulnessSettings) -> bool:
    """Whether max-sensitivity is computed for ``method`` under ``settings``."""
    return bool(settings.sensitivity_samples) and method not in settings.sensitivity_skip


class _MetricTimer:
    """Wall seconds per metric of one method, logged together (where the scoring time goes)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start

    def summary(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())


def localisation_scores(attribution: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-ECG localisation scores ``{metric: (n,)}`` of ``attribution (n, L, 12)`` against
    the evidence ``mask (n, L, 12)`` (NaN where the mask is empty or covers everything, or
    the map is not finite)."""
    from imn import faithfulness

    return {
        "pointing_game": np.asarray(faithfulness.pointing_game(attribution, mask), np.float64),
        "relevance_mass_accuracy": np.asarray(faithfulness.relevance_mass_accuracy(attribution, mask)),
        "relevance_rank_accuracy": np.asarray(faithfulness.relevance_rank_accuracy(attribution, mask)),
        "mask_auroc": np.asarray(faithfulness.mask_auroc(attribution, mask)),
    }


def _localisation_row(method: str, scores: dict[str, np.ndarray], keep: np.ndarray,
                      **extra: Any) -> dict[str, Any]:
    """One table row: mean and bootstrap CI of each localisation metric over the ECGs in
    ``keep`` (bool (n,)), with their count as ``n`` and, per metric, ``{metric}_n_defined``:
    on how many of them it is defined (finite)."""
    row: dict[str, Any] = {"method": method, **extra, "n": int(keep.sum())}
    for name, values in scores.items():
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = _mean_ci(values[keep])
        row[name + DEFINED_SUFFIX] = int(np.isfinite(values[keep]).sum())
    return row


def method_row(method: str, n: int, seconds: float, scores: dict[str, np.ndarray],
               local_mask: np.ndarray | None = None) -> dict[str, Any]:
    """One row of a faithfulness table: the method, its ``n`` ECGs, explanation ms per ECG
    (``seconds`` for all of them) and the mean and bootstrap CI of every per-ECG score over
    the ECGs where it is defined (finite), with their count as ``{score}_n_defined`` (a
    correlation with a constant map is undefined); with ``local_mask`` (bool ``(n,)``: the
    explained class's evidence mask is neither empty nor the whole record) also
    ``n_with_evidence``, their count (localisation is undefined, NaN, elsewhere)."""
    row: dict[str, Any] = {"method": method, "n": n, "explain_ms_per_ecg": 1e3 * seconds / n}
    for name, values in scores.items():
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = _mean_ci(values)
        row[name + DEFINED_SUFFIX] = int(np.isfinite(np.asarray(values, np.float64)).sum())
    if local_mask is not None:
        row["n_with_evidence"] = int(np.sum(local_mask))
    return row


def local_masks(mask: np.ndarray) -> np.ndarray:
    """bool ``(n,)``: which evidence masks ``(n, L, 12)`` are local, neither empty nor the
    whole record (where localisation is defined)."""
    coverage = np.asarray(mask).mean(axis=(1, 2))
    return (coverage > 0) & (coverage < 1)


def localisation_tables(explained: ExplainedRun, method_scores: dict[str, dict[str, np.ndarray]]
                        ) -> tuple[list[dict], list[dict]]:
    """The reference rows and the per-finding rows of a localisation table.

    ``method_scores``: per method, its per-ECG localisation scores. Returns
    ``(reference_rows, by_finding_rows)``: the first scores the maps of
    :data:`imn.faithfulness.REFERENCE_ATTRIBUTIONS` (``oracle``: the mask itself;
    ``misplaced_mask``: the mask moved off the evidence) on the same ECGs, so a reader sees
    what the best and a confidently wrong map score on each metric; the second has one row per
    method (references included) and explained finding (``finding``: a class name, or
    ``"all"``), each over the ECGs explained for that finding. Every row counts only ECGs
    whose explained class has a local mask (neither empty nor covering the whole record, as
    AFIB's and NORM's do, where any map "hits").
    """
    from imn.faithfulness import REFERENCE_ATTRIBUTIONS

    mask = explained.evidence
    local = local_masks(mask)
    every = dict(method_scores)
    references = []
    for name, make_map in REFERENCE_ATTRIBUTIONS.items():
        every[name] = localisation_scores(make_map(mask), mask)
        references.append(_localisation_row(name, every[name], local, reference=True))
    findings = np.asarray(explained.classes)[explained.targets]
    by_finding = []
    for method, scores in every.items():
        by_finding.append(_localisation_row(method, scores, local, finding="all"))
        for finding in sorted(set(findings[local])):
            by_finding.append(_localisation_row(method, scores, local & (findings == finding),
                                                finding=finding))
    return references, by_finding


def perturbation_scores(predict, x: np.ndarray, attribution: np.ndarray, target: np.ndarray,
                        settings: FaithfulnessSettings, timer: "_MetricTimer | None" = None,
                        *, sampling_rate: int) -> dict[str, np.ndarray]:
    """The metrics that only need the model's outputs on perturbed ECGs: deletion and
    insertion curves and their AUCs, AOPC (MoRF from the deletion curve, LeRF), faithfulness
    correlation and infidelity, per ECG ``{metric: (n,)}`` plus the raw curves. The insertion
    curve starts from the ECG blurred over 0.1 s at ``sampling_rate`` Hz.

    ``predict``: ``x (N, L, 12) -> (N, K)`` probabilities, jittable (a host model enters
    through ``jax.pure_callback``, as the feature route's does).
    """
    from imn import faithfulness
    from imn.faithfulness.perturbation import blur_sigma_samples

    timer = timer or _MetricTimer()
    common = dict(steps=settings.steps, unit=settings.unit, segments=settings.segments)
    with timer("deletion/insertion"):
        deletion = np.asarray(faithfulness.deletion_curve(predict, x, attribution, target, **common))
        insertion = np.asarray(faithfulness.insertion_curve(
            predict, x, attribution, target,
            blur_sigma=blur_sigma_samples(sampling_rate), **common))
    scores = {
        "deletion_auc": np.asarray(faithfulness.curve_auc(deletion)),
        "insertion_auc": np.asarray(faithfulness.curve_auc(insertion)),
        # AOPC from the deletion curve: mean drop from f(x) over the steps (Samek et al.).
        "aopc_morf": (deletion[:, :1] - deletion).mean(axis=1),
        "deletion_curve": deletion,
        "insertion_curve": insertion,
    }
    with timer("aopc_lerf"):
        scores["aopc_lerf"] = np.asarray(faithfulness.aopc(predict, x, attribution, target,
                                                           order="lerf", **common))
    with timer("faithfulness_correlation"):
        scores["faithfulness_correlation"] = np.asarray(faithfulness.faithfulness_correlation(
            predict, x, attribution, target, n_runs=settings.correlation_runs,
            unit=settings.unit, segments=settings.segments))
    with timer("infidelity"):
        scores["infidelity"] = np.asarray(faithfulness.infidelity(
            predict, x, attribution, target, n_perturbations=settings.infidelity_perturbations,
            noise_std=settings.infidelity_noise, perturbation="multiplicative",
            optimal_scaling=True))
    return scores


def score_method(explained: ExplainedRun, method: str, attribution: np.ndarray,
                 settings: FaithfulnessSettings = FaithfulnessSettings()) -> dict[str, np.ndarray]:
    """Per-ECG faithfulness (and, with evidence masks, localisation) scores of one method.

    Returns ``{metric: (n,)}`` plus the raw ``deletion_curve``/``insertion_curve``
    ``(n, steps + 1)``.
    """
    from imn import faithfulness
    from imn.explain.api import explanation_fn

    x, target = explained.x, explained.targets
    timer = _MetricTimer()
    scores = perturbation_scores(explained.predict, x, attribution, target, settings, timer,
                                 sampling_rate=explained.sampling_rate)
    options = method_options(method, explained, settings.method_options.get(method))
    if sensitivity_applies(method, settings):
        with timer("max_sensitivity"):
            scores["max_sensitivity"] = np.asarray(faithfulness.max_sensitivity(
                explanation_fn(method, explained.model, **options), x, target,
                radius=settings.sensitivity_radius, n_samples=settings.sensitivity_samples,
                reference=attribution))
    else:
        scores["max_sensitivity"] = np.full(len(x), np.nan)
    if settings.randomization:
        with timer("randomization"):
            again = attribute(method, explained.randomized_model, x, target, **options)
            scores["randomization_similarity"] = np.asarray(
                faithfulness.rank_correlation(attribution, again, absolute=True))
    if explained.evidence is not None:
        scores.update(localisation_scores(attribution, explained.evidence))
    logger.info("%s: scored in %s", method, timer.summary())
    return scores


def check_methods(methods: list[str] | tuple[str, ...]) -> None:
    """Refuse unknown method names before anything is restored or computed."""
    unknown = [method for method in methods if method not in METHODS]
    if unknown or not methods:
        raise UserError(f"unknown explanation method {', '.join(map(repr, unknown))}; expected some of "
                        f"{', '.join(METHODS)}" if unknown else "no explanation method given")


def _write_faithfulness(workdir: Path, split: str, settings: FaithfulnessSettings, rows: list[dict],
                        curves: dict, kept: dict, explained: ExplainedRun, keep_attributions: int,
                        localisation: dict, pending: list[str]) -> None:
    """The table, curves, kept attributions and localisation tables of the methods finished
    so far (each file replaced atomically), so a later method's failure or a kill loses none
    of them."""
    if kept:
        extra = {} if explained.evidence is None else {"evidence": explained.evidence[:keep_attributions]}
        atomic.savez_compressed(workdir / f"attributions_{split}.npz", methods=np.asarray(list(kept)),
                                x=explained.x[:keep_attributions], targets=explained.targets[:keep_attributions],
                                ecg_ids=explained.ecg_ids[:keep_attributions], classes=np.asarray(explained.classes),
                                **{f"attribution_{m}": a for m, a in kept.items()}, **extra)
    atomic.savez_compressed(workdir / f"faithfulness_curves_{split}.npz", steps=settings.steps,
                            unit=settings.unit, targets=explained.targets, ecg_ids=explained.ecg_ids,
                            **curves)
    metrics = [key for key in rows[0] if key not in ("method", "n", "explain_ms_per_ecg")
               and not key.endswith((*CI_SUFFIXES, DEFINED_SUFFIX))] if rows else []
    write_table(rows, workdir / f"faithfulness_{split}",
                [("method", "method"), ("n", "n"), ("explain_ms_per_ecg", "ms/ECG"),
                 *[(key, key) for key in metrics]])
    summary = {"split": split, **dataclasses.asdict(settings), "rows": rows,
               "finished": not pending, "methods_pending": pending}
    if localisation:
        summary["reference_rows"], summary["localisation_by_finding"] = localisation_tables(
            explained, localisation)
        columns = [("method", "method"), ("finding", "finding"), ("n", "ECGs with evidence"),
                   *[(key, key) for key in localisation[next(iter(localisation))]]]
        write_table(summary["localisation_by_finding"], workdir / f"localisation_{split}", columns)
    atomic.write_json(workdir / f"faithfulness_{split}.json", summary, default=str)


def faithfulness_run(workdir: str | Path, methods: list[str], split: str = "test", n: int | None = None,
                     *, settings: FaithfulnessSettings | None = None, keep_attributions: int = 0,
                     data: str | None = None, allow_data_move: bool = False,
                     **setting_overrides) -> list[dict]:
    """Score every method on the same ECGs; write the table (CSV, Markdown) and curves (.npz).

    ``settings`` (or keyword overrides of its fields, e.g. ``steps=20``) set the budget.
    Writes ``faithfulness_{split}.{csv,md,json}`` and ``faithfulness_curves_{split}.npz``
    after every method (the JSON's ``finished`` is false and ``methods_pending`` lists the
    rest until the last one is done; with evidence masks also ``localisation_{split}.{csv,md}``:
    every method and the reference maps, overall and per explained finding,
    :func:`localisation_tables`); with ``keep_attributions=k`` also
    ``attributions_{split}.npz``: every method's attribution of the first ``k`` ECGs (for
    figures), with their signals and targets.
    ``data``, ``allow_data_move``: where the run's data lives now, as for :func:`open_run`.
    """
    check_methods(methods)
    workdir = Path(workdir)
    settings = dataclasses.replace(settings or FaithfulnessSettings(), **setting_overrides)
    explained = open_run(workdir, split, n, targets=settings.targets, data=data,
                         allow_data_move=allow_data_move)
    rows, curves, kept, localisation = [], {}, {}, {}
    for done, method in enumerate(methods, 1):
        attribution, seconds = explain(explained, method, settings.method_options.get(method))
        if keep_attributions:
            kept[method] = attribution[:keep_attributions]
        scores = score_method(explained, method, attribution, settings)
        curves[f"{method}_deletion"] = scores.pop("deletion_curve")
        curves[f"{method}_insertion"] = scores.pop("insertion_curve")
        row = method_row(method, len(explained.x), seconds, scores,
                         local_masks(explained.evidence) if "mask_auroc" in scores else None)
        if "mask_auroc" in scores:
            localisation[method] = {name: scores[name] for name in
                                    ("pointing_game", "relevance_mass_accuracy",
                                     "relevance_rank_accuracy", "mask_auroc")}
        rows.append(row)
        logger.info("%s: deletion AUC %.3f, insertion AUC %.3f", method, row["deletion_auc"], row["insertion_auc"])
        _write_faithfulness(workdir, split, settings, rows, curves, kept, explained, keep_attributions,
                            localisation, pending=list(methods[done:]))
    return rows
