"""Figures that need the trained models, not only their saved outputs: the cascading
randomisation sanity check, IMN's generated weights next to W * x, and the beat-aligned
average attribution per class. Each explained model is restored once from its checkpoint
(skipped with a warning when the checkpoint is gone, e.g. in a committed results folder)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imn.reproduce.plan import Plan, run_dir

logger = logging.getLogger("imn")

# Kernel SHAP costs hundreds of model evaluations per map and the random control has no
# model to randomise: both are left out of the sanity check (every other method is in it).
_SANITY_SKIP = ("kernel_shap", "random")


def sanity_cascade(explained, methods: list[str], options: dict):
    """``(cascades, correlations)`` for the first ECG of ``explained``: method -> stage ->
    map ``(L, 12)``, and method -> stage -> ``|rho|`` with the trained model's map.

    Every method's cascade re-draws the same values: those of the run's
    ``randomized_model`` (seed 1, the copy the faithfulness table's randomisation column
    used), drawn once rather than once per method."""
    import jax.numpy as jnp

    from imn.explain.api import attribute
    from imn.explain.run import method_options
    from imn.faithfulness import rank_correlation
    from imn.faithfulness.randomization import randomization_attributions

    x, target = explained.x[:1], explained.targets[:1]
    cascades, correlations = {}, {}
    for method in methods:
        kwargs = method_options(method, explained, options.get(method))

        def explain_fn(model, batch, targets, method=method, kwargs=kwargs):
            return attribute(method, model, batch, targets, **kwargs)

        stages = randomization_attributions(explained.model, explain_fn, x, target,
                                            random_model=explained.randomized_model)
        trained = jnp.asarray(stages["original"])
        cascades[method] = {name: np.asarray(a)[0] for name, a in stages.items()}
        correlations[method] = {name: float(np.asarray(rank_correlation(trained, jnp.asarray(a),
                                                                         absolute=True))[0])
                                for name, a in stages.items()}
    return cascades, correlations


def model_figures(plan: Plan, out: Path, figures: Path) -> list[Path]:
    from imn.explain.run import explain, open_run
    from imn.plots.internals import (
        beat_average,
        plot_beat_average,
        plot_imn_weights,
        plot_sanity_cascade,
    )
    from imn.plots.style import method_label, model_label, save_figure
    from imn.reproduce.figures import primary_method, raw_dataset, raw_signals

    written: list[Path] = []
    rate = plan.config(plan.models[0], plan.explain_task).data.sampling_rate
    options = plan.faithfulness.method_options
    dataset = None
    for model in plan.models_explained:
        workdir = run_dir(out, plan.explain_task, model)
        if not (workdir / "checkpoints").exists():
            logger.warning("%s has no checkpoint; its sanity-check, weight and beat-average "
                           "figures are skipped", workdir)
            continue
        explained = open_run(workdir, "test", plan.n_explain, targets=plan.faithfulness.targets)
        methods = [m for m in plan.methods_for(model) if m not in _SANITY_SKIP]
        name = model_label(model)
        if methods:
            cascades, correlations = sanity_cascade(explained, methods, options)
            written += save_figure(plot_sanity_cascade(
                cascades, correlations, rate,
                title=f"{name}: cascading parameter randomisation, ECG "
                      f"{int(explained.ecg_ids[0])} ({plan.explain_task})"),
                figures / f"sanity_randomisation_{model}")
        primary = primary_method(model, list(plan.methods_for(model)))
        attribution, _ = explain(explained, primary, options.get(primary))
        per_class = {}
        for target in np.unique(explained.targets):
            rows = explained.targets == target
            beat, mean_map, beats = beat_average(explained.x[rows], attribution[rows], rate)
            if beats:
                per_class[str(explained.classes[int(target)])] = (beat, mean_map, beats,
                                                                  int(rows.sum()))
        if per_class:
            written += save_figure(plot_beat_average(
                per_class, rate, title=f"{name}, {method_label(primary)}: beat-aligned average "
                f"per explained class ({plan.explain_task}, test split)"),
                figures / f"beat_average_{model}")
        if model == "imn" and callable(getattr(explained.model, "generate", None)):
            dataset = dataset if dataset is not None else raw_dataset(plan)
            weights, _ = explained.model.generate(explained.x[:1])
            target = int(explained.targets[0])
            w = np.asarray(weights)[0, min(target, np.asarray(weights).shape[1] - 1)]
            signal = raw_signals(dataset, explained.ecg_ids[:1])[0]
            written += save_figure(plot_imn_weights(
                signal, explained.x[0], w, rate,
                title=f"ECG-IMN: W and W\u00b7x for {explained.classes[target]}, ECG "
                      f"{int(explained.ecg_ids[0])}"),
                figures / "imn_weights")
    return written
