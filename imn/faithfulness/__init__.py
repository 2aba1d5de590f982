"""Faithfulness and localisation metrics for ECG explanations.

Every metric is a plain, batched, jit-compiled function of a prediction (or explanation)
function, the ECGs ``x (B, L, 12)``, an attribution of the same shape and a target class;
each returns one score per ECG. Perturbation metrics re-run the whole model on every
perturbed ECG (an IMN's weights depend on its input, DESIGN.md section 2).

* :mod:`.perturbation`: :func:`deletion_curve`, :func:`insertion_curve`, :func:`curve_auc`,
  :func:`aopc`, :func:`resolve_baseline` / :func:`gaussian_blur`.
* :mod:`.correlation`: :func:`faithfulness_correlation`, :func:`infidelity`,
  :func:`max_sensitivity`.
* :mod:`.randomization`: :func:`parameter_randomization` (cascading, Adebayo et al.),
  :func:`randomization_attributions`, :func:`randomized_copy`, :func:`rank_correlation`.
* :mod:`.localization`: :func:`pointing_game`, :func:`relevance_mass_accuracy`,
  :func:`relevance_rank_accuracy`, :func:`mask_auroc` against ground-truth evidence masks,
  and the reference maps :func:`oracle_attribution` (the mask) and
  :func:`misplaced_attribution` (the mask moved off the evidence).
"""

from imn.faithfulness.correlation import (
    faithfulness_correlation,
    infidelity,
    max_sensitivity,
)
from imn.faithfulness.localization import (
    REFERENCE_ATTRIBUTIONS,
    mask_auroc,
    misplaced_attribution,
    oracle_attribution,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from imn.faithfulness.perturbation import (
    aopc,
    curve_auc,
    deletion_curve,
    gaussian_blur,
    insertion_curve,
    resolve_baseline,
)
from imn.faithfulness.randomization import (
    parameter_randomization,
    parameterised_layers,
    randomization_attributions,
    randomized_copy,
    rank_correlation,
)

__all__ = [
    "REFERENCE_ATTRIBUTIONS",
    "aopc",
    "curve_auc",
    "deletion_curve",
    "faithfulness_correlation",
    "gaussian_blur",
    "infidelity",
    "insertion_curve",
    "mask_auroc",
    "max_sensitivity",
    "misplaced_attribution",
    "oracle_attribution",
    "parameter_randomization",
    "parameterised_layers",
    "pointing_game",
    "randomization_attributions",
    "randomized_copy",
    "rank_correlation",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "resolve_baseline",
]
