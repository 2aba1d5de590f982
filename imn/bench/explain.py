"""Cost of explanation methods and faithfulness metrics, against the model's physical limit.

``imn bench explain --model imn,inception1d`` and ``imn bench faithfulness`` report, per
method (or metric), model and sampling rate:

* ms per ECG (median of ``repeats`` timed calls after a compile call and a warm-up call);
* model evaluations per ECG and their kind: ``"forward"`` (perturbation methods,
  ``kernel_shap``, the IMN's own explanation) or ``"gradient"`` (one forward + backward pass:
  the gradient methods and Grad-CAM), from the options the method really runs with
  (:func:`evaluations_per_ecg`, the one place these counts are computed);
* the *limit*: evaluations per ECG x the model's cost per evaluation at the best batch size
  (plain batched forward passes, or a ``jax.grad`` of the target logit for ``"gradient"``),
  the time any implementation that runs the model that often needs; and the *fraction of the
  limit* reached, limit / measured time (1.0 = no overhead beyond the model itself; Grad-CAM
  can exceed it, its backward pass stops at the feature map).

The limit is timed in alternation with the method (method, limit, method, limit, ...), so a
slow spell on a shared machine hits both, and each gets its own median. The ECGs are random
normal signals: the cost of every method here does not depend on the values.

The "cost table" (:func:`cost_table`) is the comparison that motivates the paper: an IMN
explains an ECG with one forward pass, the post-hoc methods need one gradient (Grad-CAM),
tens of gradients (GradientSHAP) or thousands of forward passes (Kernel SHAP).

Helpers shared with ``benchmarks/bench_kernel_shap.py``: :func:`best_batch_size`,
:func:`plain_evaluations_seconds`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from imn.bench.train import median_seconds

LEADS = 12
FORWARD, GRADIENT, NONE = "forward", "gradient", "none"
METRICS = (
    "deletion", "insertion", "aopc", "faithfulness_correlation", "infidelity", "max_sensitivity",
)
# The methods of the paper's cost table: the IMN's own explanation against post-hoc ones.
COST_TABLE_METHODS = ("imn", "gradcam", "gradient_shap", "kernel_shap")
# Background ECGs drawn for gradient_shap when none is given (its cost does not depend on M).
BACKGROUND_SIZE = 8
# Tiny models for a fast run (``--small``): per-model constructor overrides.
SMALL_OVERRIDES: dict[str, dict[str, Any]] = {
    "imn": {"widths": (4, 8, 8)},
    "imn_softmax": {"widths": (4, 8, 8)},
    "imn_direct": {"widths": (4, 8, 8)},
    "cnn2d": {"widths": (4, 8, 8)},
    "inception1d": {"filters": 8, "bottleneck_size": 8, "depth": 3, "head_hidden": (16,)},
    "resnet1d_wang": {"width": 8, "head_hidden": (16,)},
    "xresnet1d101": {"layers": (1, 1, 1, 1), "stem_widths": (8, 8, 8), "width": 8,
                     "head_hidden": (16,)},
}
# Candidate batch sizes for the limit, capped by time samples per batch (memory; on CPU
# larger batches only spill the caches, see imn.faithfulness.perturbation).
_CPU_BATCHES, _CPU_SAMPLES = (1, 4, 16, 64), 64_000
_ACCELERATOR_BATCHES, _ACCELERATOR_SAMPLES = (16, 64, 256, 1024), 1_024_000


# ---------------------------------------------------------------------------------------
# Evaluations per ECG: the one place they are counted
# ---------------------------------------------------------------------------------------


def _default(function: Callable, name: str) -> Any:
    """The default of keyword option ``name`` of ``function`` (the library's own value)."""
    return inspect.signature(function).parameters[name].default


def _kernel_shap_evaluations(options: Mapping[str, Any]) -> int:
    """``(min(n_samples, 2^G - 2) + 2) * M`` (see :func:`baselines.shap.kernel_shap_groups`)."""
    from baselines.shap import kernel_shap

    if options.get("design") is not None:
        coalitions = int(np.shape(options["design"].masks)[0])
    else:
        groups = options.get("groups")
        if groups is not None:
            num_groups = int(np.max(groups)) + 1
        else:
            num_groups = LEADS * int(options.get("segments", _default(kernel_shap, "segments")))
        n_samples = int(options.get("n_samples", _default(kernel_shap, "n_samples")))
        # 2^G - 2 overflows nothing in Python, but keep G small before exponentiating.
        coalitions = n_samples if num_groups > 62 else min(n_samples, 2**num_groups - 2)
    background = options.get("background")
    references = 1 if background is None else int(np.shape(background)[0])
    return (coalitions + 2) * references


def evaluations_per_ecg(name: str, options: Mapping[str, Any] | None = None) -> tuple[int, str]:
    """Model evaluations per ECG of a method or metric with ``options``, and their kind.

    Args:
      name: an attribution method (:data:`imn.explain.METHODS`) or a metric of
        :data:`METRICS`.
      options: the options it runs with; missing ones take the library's defaults. For
        ``max_sensitivity`` two more keys name the re-run explainer: ``explainer``
        (required) and ``explainer_options``.
    Returns:
      ``(count, kind)``, kind ``"forward"``, ``"gradient"`` (forward + backward) or
      ``"none"`` (``random``).
    """
    from imn import faithfulness
    from imn.explain.api import _OPTIONS as METHOD_DEFAULTS  # what attribute() resolves

    options = dict(options or {})

    def option(method: str, key: str) -> int:
        return int(options.get(key, METHOD_DEFAULTS[method][key]))

    if name in ("imn", "attention"):
        return 1, FORWARD
    if name in ("gradcam", "gradcam_x_input", "saliency", "input_x_gradient"):
        return 1, GRADIENT
    if name == "integrated_gradients":
        return option(name, "steps"), GRADIENT
    if name == "gradient_shap":
        return option(name, "n_samples"), GRADIENT
    if name == "kernel_shap":
        return _kernel_shap_evaluations(options), FORWARD
    if name == "random":
        return 0, NONE
    if name in ("deletion", "insertion", "aopc"):
        function = {"deletion": faithfulness.deletion_curve,
                    "insertion": faithfulness.insertion_curve, "aopc": faithfulness.aopc}[name]
        return int(options.get("steps", _default(function, "steps"))) + 1, FORWARD
    if name == "faithfulness_correlation":  # + 1: f(x) of the clean ECG
        runs = options.get("n_runs", _default(faithfulness.faithfulness_correlation, "n_runs"))
        return int(runs) + 1, FORWARD
    if name == "infidelity":
        draws = options.get("n_perturbations", _default(faithfulness.infidelity, "n_perturbations"))
        return int(draws) + 1, FORWARD
    if name == "max_sensitivity":  # n_samples re-explanations + the clean explanation
        if "explainer" not in options:
            raise ValueError("max_sensitivity's count needs options['explainer']")
        per_explanation, kind = evaluations_per_ecg(
            options["explainer"], options.get("explainer_options")
        )
        samples = options.get("n_samples", _default(faithfulness.max_sensitivity, "n_samples"))
        return (int(samples) + 1) * per_explanation, kind
    raise ValueError(f"unknown method or metric {name!r}")


# ---------------------------------------------------------------------------------------
# Plain model evaluations: the limit (shared with benchmarks/bench_kernel_shap.py)
# ---------------------------------------------------------------------------------------


def _plain_calls(evaluate: Callable, length: int, count: int, batch: int) -> tuple[Callable, int]:
    """A function running ``ceil(count / batch)`` calls of ``evaluate`` on ``(batch, length,
    12)`` inputs, and the evaluations it makes (``count`` rounded up to whole batches)."""
    x = jnp.ones((batch, length, LEADS), jnp.float32)
    calls = max(1, -(-count // batch))

    def run() -> None:
        jax.block_until_ready([evaluate(x) for _ in range(calls)])

    return run, calls * batch


def plain_evaluations_seconds(evaluate: Callable, length: int, count: int, batch: int) -> float:
    """Wall seconds of ``count`` evaluations in batches of ``batch`` (no perturbation)."""
    run, _ = _plain_calls(evaluate, length, count, batch)
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def best_batch_size(
    evaluate: Callable,
    length: int,
    candidates: Sequence[int] = (32, 64, 128, 256),
    *,
    evaluations: int = 0,
) -> tuple[int, float]:
    """The batch size with the lowest wall time per evaluation, and that time (s).

    ``evaluate`` maps ``(batch, length, 12)`` to anything; each candidate is compiled, then
    timed over ``max(2, ceil(evaluations / batch))`` calls.
    """
    best = (candidates[0], float("inf"))
    for batch in candidates:
        run, done = _plain_calls(evaluate, length, max(2 * batch, evaluations), batch)
        jax.block_until_ready(evaluate(jnp.ones((batch, length, LEADS), jnp.float32)))  # compile
        start = time.perf_counter()
        run()
        per_eval = (time.perf_counter() - start) / done
        if per_eval < best[1]:
            best = (batch, per_eval)
    return best


def default_batch_sizes(length: int) -> tuple[int, ...]:
    """Candidate batch sizes for the limit on this backend (at least the smallest)."""
    if jax.default_backend() == "cpu":
        sizes, budget = _CPU_BATCHES, _CPU_SAMPLES
    else:
        sizes, budget = _ACCELERATOR_BATCHES, _ACCELERATOR_SAMPLES
    return tuple(b for b in sizes if b * length <= budget) or sizes[:1]


# ---------------------------------------------------------------------------------------
# Setup and timing
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Setup:
    """A model in evaluation mode, its ECGs and its plain evaluators (one per kind)."""

    model_name: str
    model: Any
    sampling_rate: int
    x: jax.Array  # (n_ecgs, L, 12)
    evaluators: dict[str, Callable[[jax.Array], jax.Array]]
    batch_sizes: tuple[int, ...]
    best: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.x.shape[1])

    def best_batch(self, kind: str) -> int:
        """Best batch size of ``kind`` evaluations, probed once per kind."""
        if kind not in self.best:
            self.best[kind] = best_batch_size(
                self.evaluators[kind], self.length, self.batch_sizes,
                evaluations=max(self.batch_sizes),
            )
        return self.best[kind][0]


def input_length(seconds: float, sampling_rate: int) -> int:
    """Samples per ECG, a multiple of 4 (the IMN family pools time twice by 2)."""
    length = int(round(seconds * sampling_rate))
    return length - length % 4


def _setup(model_name: str, *, sampling_rate: int, n_ecgs: int, seconds: float, num_classes: int,
           model_overrides: Mapping[str, Any] | None, batch_sizes: Sequence[int] | None,
           seed: int) -> _Setup:
    from imn.explain.model_fns import predict_fn, target_logit_fn
    from imn.models import create_model

    length = input_length(seconds, sampling_rate)
    outputs = 2 if model_name == "imn_softmax" else num_classes
    model = create_model(model_name, num_classes=outputs, sampling_rate=sampling_rate,
                         input_length=length, seed=seed, **dict(model_overrides or {}))
    model.eval()
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((n_ecgs, length, LEADS)), jnp.float32)
    target_logit = target_logit_fn(model)

    def gradient(inputs: jax.Array) -> jax.Array:
        """What a gradient method pays per ECG: ``d s_0 / d x``, ``(B, L, 12)``."""
        target = jnp.zeros((inputs.shape[0],), jnp.int32)
        return jax.grad(lambda z: target_logit(z, target).sum())(inputs)

    evaluators = {FORWARD: jax.jit(predict_fn(model)), GRADIENT: jax.jit(gradient)}
    sizes = tuple(batch_sizes) if batch_sizes else default_batch_sizes(length)
    return _Setup(model_name, model, sampling_rate, x, evaluators, sizes)


def _interleaved_medians(run: Callable[[], Any], limit: Callable[[], Any] | None,
                         repeats: int) -> tuple[float, float, float | None]:
    """``(first-call s, median s)`` of ``run`` and the median s of ``limit``, called in turn.

    :func:`imn.bench.train.median_seconds` drives the protocol (a compile call, a warm-up call,
    ``repeats`` timed calls) of the pair; each half keeps its own times, so both medians
    exclude the compile and warm-up calls.
    """
    times: tuple[list[float], list[float]] = ([], [])

    def both() -> None:
        for fn, out in ((run, times[0]), (limit, times[1])):
            if fn is not None:
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)

    median_seconds(both, repeats)
    limit_median = statistics.median(times[1][2:]) if limit is not None else None
    return times[0][0], statistics.median(times[0][2:]), limit_median


def _measure(setup: _Setup, run: Callable[[], Any], count: int, kind: str,
             repeats: int) -> dict[str, Any]:
    """Timing fields of a row: ``run`` does ``count`` evaluations per ECG of ``kind``."""
    n_ecgs = int(setup.x.shape[0])
    limit = None
    if count > 0:
        batch = setup.best_batch(kind)
        limit, done = _plain_calls(setup.evaluators[kind], setup.length, count * n_ecgs, batch)
    first, median, limit_median = _interleaved_medians(run, limit, repeats)
    row: dict[str, Any] = {
        "ms_per_ecg": round(1e3 * median / n_ecgs, 3),
        "limit_ms_per_ecg": None, "fraction_of_limit": None, "best_batch": None,
        "ms_per_evaluation": None, "first_call_s": round(first, 2),
    }
    if limit_median is not None:
        per_evaluation = limit_median / done
        limit_seconds = per_evaluation * count * n_ecgs
        row.update(
            limit_ms_per_ecg=round(1e3 * limit_seconds / n_ecgs, 3),
            fraction_of_limit=round(limit_seconds / median, 4),
            best_batch=batch, ms_per_evaluation=round(1e3 * per_evaluation, 4),
        )
    return row


def _device() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{device.device_kind}"


def _scalar_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options worth recording in a row (arrays summarised by their shape)."""
    return {key: (list(np.shape(value)) if np.ndim(value) else value)
            for key, value in options.items() if not callable(value)}


def _base_row(setup: _Setup, name_key: str, name: str, n_ecgs: int) -> dict[str, Any]:
    return {
        name_key: name, "model": setup.model_name, "sampling_rate": setup.sampling_rate,
        "input_length": setup.length, "n_ecgs": n_ecgs, "device": _device(), "note": None,
    }


def _skipped(row: dict[str, Any], count: int, kind: str, reason: str) -> dict[str, Any]:
    row.update(ms_per_ecg=None, evaluations_per_ecg=count, evaluation_kind=kind,
               limit_ms_per_ecg=None, fraction_of_limit=None, best_batch=None,
               ms_per_evaluation=None, first_call_s=None, note=f"not applicable: {reason}")
    return row


# ---------------------------------------------------------------------------------------
# Explanation methods
# ---------------------------------------------------------------------------------------


def _method_options(method: str, setup: _Setup, options: Mapping[str, Any] | None,
                    seed: int) -> dict[str, Any]:
    """The method's options, with a random background for gradient_shap if none is given."""
    merged = dict(options or {})
    if method == "gradient_shap" and "background" not in merged:
        rng = np.random.default_rng(seed + 1)
        merged["background"] = rng.standard_normal((BACKGROUND_SIZE, setup.length, LEADS),
                                                   dtype=np.float32)
    return merged


def _not_applicable(method: str, model: Any) -> str | None:
    """Why ``method`` cannot explain ``model``, or None."""
    from imn.explain.api import _check_applicable

    try:
        _check_applicable(method, model)
    except (ValueError, TypeError) as error:
        return str(error)
    return None


def bench_explain(
    model_name: str,
    *,
    methods: Sequence[str] | None = None,
    sampling_rate: int = 100,
    n_ecgs: int = 4,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    model_overrides: Mapping[str, Any] | None = None,
    num_classes: int = 1,
    seconds: float = 10.0,
    batch_sizes: Sequence[int] | None = None,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Cost of every attribution method on ``n_ecgs`` random ECGs ``(n_ecgs, L, 12)``.

    Args:
      model_name: a registered model (:data:`imn.models.MODEL_NAMES`), random init, eval mode.
      methods: default all of :data:`imn.explain.METHODS`.
      options: per-method options, e.g. ``{"integrated_gradients": {"steps": 16}}``; the
        evaluation counts follow them.
      model_overrides: constructor overrides, e.g. ``{"widths": (4, 8, 8)}``
        (:data:`SMALL_OVERRIDES` has tiny ones per model).
      seconds: ECG duration, ``L = round(seconds * sampling_rate)`` (a multiple of 4).
      batch_sizes: candidate batch sizes of the limit; default :func:`default_batch_sizes`.
      repeats: timed calls per method (median), after a compile call and a warm-up call.
    Returns:
      One row per method: ``method, model, sampling_rate, input_length, n_ecgs, ms_per_ecg,
      evaluations_per_ecg, evaluation_kind, limit_ms_per_ecg, fraction_of_limit,
      best_batch, ms_per_evaluation, first_call_s, options, device, note``. A method that
      cannot explain the model has ``ms_per_ecg=None`` and the reason in ``note``; ``random``
      makes no evaluations and has no limit.
    """
    from imn.explain import METHODS, attribute

    setup = _setup(model_name, sampling_rate=sampling_rate, n_ecgs=n_ecgs, seconds=seconds,
                   num_classes=num_classes, model_overrides=model_overrides,
                   batch_sizes=batch_sizes, seed=seed)
    rows = []
    for method in methods or METHODS:
        method_options = _method_options(method, setup, (options or {}).get(method), seed)
        count, kind = evaluations_per_ecg(method, method_options)
        row = _base_row(setup, "method", method, n_ecgs)
        row["options"] = _scalar_options(method_options)
        reason = _not_applicable(method, setup.model)
        if reason is not None:
            rows.append(_skipped(row, count, kind, reason))
            continue

        def run(method: str = method, method_options: dict = method_options) -> None:
            jax.block_until_ready(attribute(method, setup.model, setup.x, 0, **method_options))

        row.update(evaluations_per_ecg=count, evaluation_kind=kind)
        row.update(_measure(setup, run, count, kind, repeats))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Faithfulness metrics
# ---------------------------------------------------------------------------------------


def _metric_call(metric: str, predict: Callable, setup: _Setup, attribution: jax.Array,
                 options: dict[str, Any]) -> Callable[[], Any]:
    """``run()`` computing ``metric`` on the setup's ECGs for target 0."""
    from imn import faithfulness

    x = setup.x
    if metric == "max_sensitivity":
        from imn.explain import explanation_fn

        library = {k: v for k, v in options.items() if k not in ("explainer", "explainer_options")}
        explain = explanation_fn(options["explainer"], setup.model, **options["explainer_options"])
        return lambda: jax.block_until_ready(
            faithfulness.max_sensitivity(explain, x, 0, **library))
    function = {
        "deletion": faithfulness.deletion_curve, "insertion": faithfulness.insertion_curve,
        "aopc": faithfulness.aopc, "faithfulness_correlation": faithfulness.faithfulness_correlation,
        "infidelity": faithfulness.infidelity,
    }[metric]
    return lambda: jax.block_until_ready(function(predict, x, attribution, 0, **options))


def _metric_options(metric: str, *, steps: int, unit: str, segments: int,
                    options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shared ``steps``/``unit``/``segments`` where the metric takes them, then ``options``."""
    merged: dict[str, Any] = {}
    if metric in ("deletion", "insertion", "aopc"):
        merged.update(steps=steps, unit=unit, segments=segments)
    elif metric == "faithfulness_correlation":
        merged.update(unit=unit, segments=segments)
    merged.update(options or {})
    return merged


def bench_faithfulness(
    model_name: str,
    *,
    metrics: Sequence[str] | None = None,
    sampling_rate: int = 100,
    n_ecgs: int = 4,
    steps: int = 50,
    unit: str = "sample",
    segments: int = 20,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    explainer: str | None = None,
    explainer_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    model_overrides: Mapping[str, Any] | None = None,
    num_classes: int = 1,
    seconds: float = 10.0,
    batch_sizes: Sequence[int] | None = None,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Cost of every faithfulness metric on ``n_ecgs`` random ECGs and a random attribution.

    ``steps``/``unit``/``segments`` go to the curves (deletion, insertion, AOPC) and
    ``unit``/``segments`` to faithfulness correlation; ``options`` are per-metric library
    options (e.g. ``{"infidelity": {"n_perturbations": 16}}``; ``chunk_size`` included, else
    the library's default). ``max_sensitivity`` re-explains with ``explainer`` (default
    ``"imn"`` for an IMN, ``"saliency"`` otherwise) and ``explainer_options``; its
    evaluations are the explainer's kind. Other arguments and the rows: as
    :func:`bench_explain`, with ``metric`` in place of ``method``.
    """
    from imn.explain.model_fns import predict_fn

    setup = _setup(model_name, sampling_rate=sampling_rate, n_ecgs=n_ecgs, seconds=seconds,
                   num_classes=num_classes, model_overrides=model_overrides,
                   batch_sizes=batch_sizes, seed=seed)
    if explainer is None:
        explainer = "imn" if _not_applicable("imn", setup.model) is None else "saliency"
    # Built once: the metrics' jitted kernels take predict as a static argument.
    predict = predict_fn(setup.model)
    rng = np.random.default_rng(seed + 2)
    attribution = jnp.asarray(rng.standard_normal(setup.x.shape), jnp.float32)
    rows = []
    for metric in metrics or METRICS:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid metrics: {METRICS}")
        metric_options = _metric_options(metric, steps=steps, unit=unit, segments=segments,
                                         options=(options or {}).get(metric))
        row = _base_row(setup, "metric", metric, n_ecgs)
        if metric == "max_sensitivity":
            metric_options.setdefault("explainer", explainer)
            metric_options["explainer_options"] = _method_options(
                metric_options["explainer"], setup,
                metric_options.get("explainer_options", explainer_options), seed)
        count, kind = evaluations_per_ecg(metric, metric_options)
        row["options"] = _scalar_options(
            {k: v for k, v in metric_options.items() if k != "explainer_options"})
        if metric == "max_sensitivity":
            reason = _not_applicable(metric_options["explainer"], setup.model)
            if metric_options["explainer"] == "kernel_shap":
                reason = "kernel_shap cannot be re-run inside max_sensitivity's jit"
            if reason is not None:
                rows.append(_skipped(row, count, kind, reason))
                continue
        run = _metric_call(metric, predict, setup, attribution, metric_options)
        row.update(evaluations_per_ecg=count, evaluation_kind=kind)
        row.update(_measure(setup, run, count, kind, repeats))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], name_key: str = "method") -> str:
    """An aligned text table of bench rows (one line per row, notes at the end)."""
    header = ["model", "Hz", name_key, "evals/ECG", "kind", "ms/ECG", "limit ms/ECG",
              "% of limit", "batch"]
    lines = [header]
    notes = []
    for row in rows:
        fraction = row.get("fraction_of_limit")
        lines.append([
            row["model"], str(row["sampling_rate"]), row[name_key],
            _cell(row.get("evaluations_per_ecg")), row.get("evaluation_kind") or "-",
            _cell(row.get("ms_per_ecg"), 2), _cell(row.get("limit_ms_per_ecg"), 2),
            "-" if fraction is None else f"{100 * fraction:.0f}", _cell(row.get("best_batch")),
        ])
        if row.get("note"):
            notes.append(f"{row['model']} {row['sampling_rate']} Hz {row[name_key]}: {row['note']}")
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(w) if i >= 3 else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
            for line in lines]
    return "\n".join(text + notes)


def cost_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The paper's cost comparison: IMN's explanation vs Grad-CAM, GradientSHAP and Kernel
    SHAP, one entry per measured (method, model, rate) among :data:`COST_TABLE_METHODS`."""
    picked = [row for row in rows
              if row.get("method") in COST_TABLE_METHODS and row.get("ms_per_ecg") is not None]
    picked.sort(key=lambda r: (r["sampling_rate"], COST_TABLE_METHODS.index(r["method"]),
                               r["model"]))
    return [{key: row[key] for key in ("method", "model", "sampling_rate", "ms_per_ecg",
                                       "evaluations_per_ecg", "evaluation_kind")}
            for row in picked]


def format_cost_table(rows: Sequence[Mapping[str, Any]]) -> str:
    entries = cost_table(rows)
    if not entries:
        return ""
    lines = [["Hz", "explanation", "model", "ms/ECG", "evaluations/ECG"]]
    for e in entries:
        lines.append([str(e["sampling_rate"]), e["method"], e["model"], f"{e['ms_per_ecg']:.2f}",
                      f"{e['evaluations_per_ecg']} {e['evaluation_kind']}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i >= 3 else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
                     for line in lines)


# ---------------------------------------------------------------------------------------
# CLI glue (wired into imn/cli.py as ``imn bench explain`` / ``imn bench faithfulness``)
# ---------------------------------------------------------------------------------------


def _comma_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_sets(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["integrated_gradients.steps=16", ...]`` -> ``{"integrated_gradients": {"steps": 16}}``;
    values are read as JSON when they parse (numbers, true/false), else kept as strings."""
    parsed: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        name, dot, option = key.partition(".")
        if not (sep and dot and name and option):
            raise SystemExit(f"imn: error: --set expects NAME.OPTION=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        parsed.setdefault(name, {})[option] = value
    return parsed


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="imn", help="registered model name(s), comma-separated")
    parser.add_argument("--sampling-rates", default="100,500", help="comma-separated, e.g. 100,500")
    parser.add_argument("--n", type=int, default=4, help="ECGs explained per call")
    parser.add_argument("--seconds", type=float, default=10.0, help="ECG duration in seconds")
    parser.add_argument("--num-classes", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="tiny widths for a fast run")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    parser.add_argument("--batch-sizes", help="candidate batch sizes of the limit, comma-separated")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.OPTION=VALUE",
                        help="an option of a method or metric, e.g. kernel_shap.n_samples=512 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")


def add_bench_parsers(bench_subparsers: Any) -> None:
    """Register ``explain`` and ``faithfulness`` under ``imn bench``."""
    explain = bench_subparsers.add_parser(
        "explain", help="ms, model evaluations and fraction of the limit per explanation method")
    _add_common_arguments(explain)
    explain.add_argument("--methods", help="comma-separated method names (default: all)")
    explain.set_defaults(func=cmd_bench_explain)

    faith = bench_subparsers.add_parser(
        "faithfulness", help="ms, model evaluations and fraction of the limit per faithfulness metric")
    _add_common_arguments(faith)
    faith.add_argument("--metrics", help=f"comma-separated (default: all of {', '.join(METRICS)})")
    faith.add_argument("--steps", type=int, default=50, help="perturbation steps of the curves")
    faith.add_argument("--unit", default="sample", choices=("sample", "patch"))
    faith.add_argument("--segments", type=int, default=20, help="time segments per lead (patch unit)")
    faith.add_argument("--explainer", help="method max_sensitivity re-runs (default imn or saliency)")
    faith.set_defaults(func=cmd_bench_faithfulness)


def _runs(args: argparse.Namespace) -> list[tuple[str, int, dict[str, Any]]]:
    """(model, rate, common keyword arguments) for every requested model and rate."""
    batch_sizes = [int(b) for b in _comma_list(args.batch_sizes)] if args.batch_sizes else None
    runs = []
    for model in _comma_list(args.model):
        common = dict(n_ecgs=args.n, seed=args.seed, num_classes=args.num_classes,
                      seconds=args.seconds, batch_sizes=batch_sizes, repeats=args.repeats,
                      model_overrides=SMALL_OVERRIDES.get(model) if args.small else None,
                      options=_parse_sets(args.set))
        runs.extend((model, int(rate), common) for rate in _comma_list(args.sampling_rates))
    return runs


def _print_rows(rows: list[dict[str, Any]], args: argparse.Namespace, name_key: str) -> None:
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    device = rows[0]["device"] if rows else _device()
    print(f"{device}, {args.n} ECGs of {args.seconds:g} s per call"
          f"{', small models' if args.small else ''}; limit = evaluations/ECG x model cost per "
          f"evaluation at the best batch size")
    print(format_table(rows, name_key))


def cmd_bench_explain(args: argparse.Namespace) -> int:
    rows = []
    for model, rate, common in _runs(args):
        rows += bench_explain(model, methods=_comma_list(args.methods), sampling_rate=rate, **common)
    _print_rows(rows, args, "method")
    if not args.json and cost_table(rows):
        print("\ncost per ECG: the IMN's explanation against post-hoc methods")
        print(format_cost_table(rows))
    return 0


def cmd_bench_faithfulness(args: argparse.Namespace) -> int:
    rows = []
    for model, rate, common in _runs(args):
        rows += bench_faithfulness(model, metrics=_comma_list(args.metrics), sampling_rate=rate,
                                   steps=args.steps, unit=args.unit, segments=args.segments,
                                   explainer=args.explainer, **common)
    _print_rows(rows, args, "metric")
    return 0
