"""Explaining ECG models: one entry point, :func:`attribute`, for every attribution method.

    from imn.explain import attribute, METHODS
    attribution = attribute("imn", model, x, target=1)            # (B, L, 12) float32
    attribution = attribute("integrated_gradients", model, x, 0, steps=64)

See :mod:`imn.explain.api` for the methods and their options and
:mod:`imn.explain.model_fns` for the pure model functions (``logit_fn``, ``predict_fn``,
``target_logit_fn``) and the convention on what is explained for softmax heads.
"""

from imn.explain.api import METHODS, attribute, explanation_fn, imn_decomposition
from imn.explain.model_fns import (
    decision_logit_fn,
    logit_fn,
    predict_fn,
    split_eval,
    target_logit_fn,
)

__all__ = [
    "METHODS",
    "attribute",
    "decision_logit_fn",
    "explanation_fn",
    "imn_decomposition",
    "logit_fn",
    "predict_fn",
    "split_eval",
    "target_logit_fn",
]
