"""One entry point for every attribution method: ``attribute(method, model, x, target, ...)``.

``x`` is an ECG batch ``(B, L, 12)`` (channels last), ``target`` an int class index or an
int array of ``B`` indices; the result is an attribution ``(B, L, 12)`` float32, larger =
more evidence *for* the explained scalar of the target. That scalar (see
:mod:`imn.explain.model_fns`) is the target logit for sigmoid heads and the decision logit
``z_t - mean_{k != t} z_k`` (``z_1 - z_0`` / ``z_0 - z_1`` when K = 2) for softmax heads.

Methods (options with their defaults; ``chunk_size`` = ECGs or path points per model pass):

* ``imn`` -- the IMN's own linear model: ``W_t(x) * x``, an exact decomposition of the
  explained scalar: ``attribution.sum((1, 2)) + b_t(x) == s_t(x)``. For softmax heads the
  contrast of the per-class maps, ``(W_1 - W_0) * x`` for target 1 and ``(W_0 - W_1) * x``
  for target 0 when K = 2 (:func:`imn_decomposition` also returns the bias term).
  Needs ``model.generate``. Options: ``chunk_size=64``.
* ``gradcam`` / ``gradcam_x_input`` -- Grad-CAM on ``model.features(x)`` through
  ``model.head`` (:mod:`baselines.gradcam`): lead-agnostic for 1-D feature maps, lead-resolved
  for 2-D ones (cnn2d); ``gradcam_x_input`` multiplies the map by the input (signed).
  Options: ``normalize=False`` (True: each map scaled to max 1), ``chunk_size=64``.
* ``attention`` -- the attention map an attention branch network (xECGNet) computes for
  itself, ``model.attention_map(x) (B, T')`` in (0, 1), upsampled to ``L`` as Grad-CAM is
  and repeated over the leads. It is the same map for every class (the target is checked,
  not used): what the perception branch was made to look at, not evidence for one class.
  Options: ``chunk_size=64``.
* ``saliency`` -- ``d s_t / d x``. Options: ``absolute=False``, ``chunk_size=64``.
* ``input_x_gradient`` -- ``x * d s_t / d x``. Options: ``chunk_size=64``.
* ``integrated_gradients`` -- options ``baseline=None`` (zeros; or a number, ``"zero"``, an
  array ``(L, 12)`` or ``(B, L, 12)``), ``steps=50``, ``rule="midpoint"`` (or
  ``"trapezoid"``), ``chunk_size=64``.
* ``gradient_shap`` -- expected gradients as ``shap.GradientExplainer``; options
  ``background`` (required: ``(M, L, 12)`` reference ECGs, e.g. training records),
  ``n_samples=50``, ``local_smoothing=0.0``, ``seed=0``, ``chunk_size=64``.
* ``kernel_shap`` -- :func:`baselines.shap.kernel_shap` (lead x segment Kernel SHAP); its
  options are passed through (``segments``, ``n_samples``, ``baseline``, ``background``,
  ``output``, ``chunk_size``, ``seed``, ``groups``).
* ``random`` -- a control: i.i.d. standard normal values; options ``seed=0``.

``model`` is a Flax NNX module (run in evaluation mode whatever its mode; the caller's model
is not changed) or, for the model-agnostic methods (gradients, ``kernel_shap``, ``random``),
a plain function ``x (n, L, 12) -> logits (n, K)`` treated as a sigmoid model.

Compilation is cached: the jitted core takes the model's graph definition (hashable: its
structure and static attributes) and the non-array options as static arguments and the
parameters, inputs and array options as traced ones, so a second call with the same model
architecture, method, options and input shape does not retrace, even after the parameters
changed.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from baselines import gradcam as gradcam_lib
from baselines import gradients as gradients_lib
from imn.explain.model_fns import (
    apply_method,
    contrast_vectors,
    decision_logits,
    head_type_of,
    select_target,
    split_eval,
)

Array = jax.Array

METHODS = (
    "imn",
    "gradcam",
    "gradcam_x_input",
    "attention",
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "gradient_shap",
    "kernel_shap",
    "random",
)

_REQUIRED = object()  # marks an option without a default
_CHUNK = gradients_lib.DEFAULT_CHUNK_SIZE

# Defaults of every option; ``kernel_shap`` validates its own options.
_OPTIONS: dict[str, dict[str, Any]] = {
    "imn": {"chunk_size": _CHUNK},
    "gradcam": {"normalize": False, "chunk_size": _CHUNK},
    "gradcam_x_input": {"normalize": False, "chunk_size": _CHUNK},
    "attention": {"chunk_size": _CHUNK},
    "saliency": {"absolute": False, "chunk_size": _CHUNK},
    "input_x_gradient": {"chunk_size": _CHUNK},
    "integrated_gradients": {
        "baseline": None, "steps": 50, "rule": "midpoint", "chunk_size": _CHUNK,
    },
    "gradient_shap": {
        "background": _REQUIRED, "n_samples": 50, "local_smoothing": 0.0, "seed": 0,
        "chunk_size": _CHUNK,
    },
    "random": {"seed": 0},
}
# Options passed to the jitted core as traced arrays (changing them does not recompile).
_ARRAY_OPTIONS = ("baseline", "background", "seed")

_GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "gradient_shap")
_MODEL_AGNOSTIC = (*_GRADIENT_METHODS, "kernel_shap", "random")


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def _model_name(model: Any) -> str:
    return type(model).__name__ if isinstance(model, nnx.Module) else getattr(
        model, "__name__", type(model).__name__
    )


def _check_applicable(method: str, model: Any) -> None:
    """Raise a clear error when ``method`` cannot explain ``model``."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; valid methods: {METHODS}")
    name = _model_name(model)
    if not isinstance(model, nnx.Module):
        if not callable(model):
            raise TypeError(
                f"model must be a flax.nnx.Module or a logit function, got {type(model).__name__}"
            )
        if method not in _MODEL_AGNOSTIC:
            raise ValueError(
                f"method {method!r} needs a Flax NNX model; a plain logit function can be "
                f"explained with {_MODEL_AGNOSTIC}"
            )
        return
    if method == "imn" and not callable(getattr(model, "generate", None)):
        raise ValueError(
            f"{name} has no generate(); method='imn' reads the linear model an IMN writes for "
            f"each ECG and only explains IMN models. Explain {name} post hoc, e.g. with "
            f"'gradcam', 'integrated_gradients', 'gradient_shap' or 'kernel_shap'."
        )
    if method == "attention" and not callable(getattr(model, "attention_map", None)):
        raise ValueError(
            f"{name} has no attention_map(); method='attention' reads the attention map of an "
            f"attention branch network (xecgnet). Explain {name} with e.g. 'gradcam' or "
            f"'integrated_gradients'."
        )
    if method in ("gradcam", "gradcam_x_input"):
        has_features = callable(getattr(model, "features", None)) and callable(
            getattr(model, "head", None)
        )
        if not has_features:
            if callable(getattr(model, "generate", None)):
                raise ValueError(
                    f"IMN has no feature map; explain it with method='imn' ({name} has no "
                    f"features()/head() for Grad-CAM; its W(x) * x is the explanation)"
                )
            raise ValueError(
                f"{name} has no features()/head() split; Grad-CAM needs a feature map. Use a "
                f"model-agnostic method instead: {_MODEL_AGNOSTIC}"
            )


def _placement(method: str, model: Any, length: int) -> dict[str, Any]:
    """For the maps drawn at a feature map's resolution (Grad-CAM, attention): where the
    feature steps of a ``length``-sample input sit, from the strided layers the model lists
    (``model.time_ops``, :func:`baselines.gradcam.window_centres`), ``{"centres": (...)}``;
    nothing for a model that lists none (the uniform placement of
    :func:`baselines.gradcam.upsample_time`)."""
    ops = getattr(model, "time_ops", None)
    if method not in ("gradcam", "gradcam_x_input", "attention") or ops is None:
        return {}
    return {"centres": gradcam_lib.window_centres(length, ops)}


def _resolve_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    defaults = _OPTIONS[method]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for method {method!r}; valid options: "
            f"{sorted(defaults)}"
        )
    resolved = {**defaults, **options}
    missing = [name for name, value in resolved.items() if value is _REQUIRED]
    if missing == ["background"]:
        raise ValueError(
            f"method {method!r} needs background=(M, L, 12) reference ECGs (e.g. a sample of "
            f"training records); expected gradients average over draws from it"
        )
    return resolved


def _as_target(target: Any, batch: int, num_classes: int) -> np.ndarray:
    """int or ``(B,)`` ints in ``[0, K)`` -> ``(B,)`` int32, with clear errors."""
    array = np.asarray(target)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"target must be an int or an int array, got dtype {array.dtype}")
    if array.ndim == 0:
        array = np.full((batch,), int(array))
    if array.shape != (batch,):
        raise ValueError(f"target must be an int or have shape ({batch},), got {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"target indices must lie in [0, {num_classes}) for a {num_classes}-class model, "
            f"got {array.tolist()}"
        )
    return array.astype(np.int32)


def _as_batch(x: Any) -> Array:
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be an ECG batch (B, L, leads), got shape {x.shape}")
    return x


# ---------------------------------------------------------------------------------------
# Pure pieces of a model: either (graphdef, state) of an NNX module or a plain function
# ---------------------------------------------------------------------------------------


def _logits(model_def: Any, state: Any, x: Array) -> Array:
    if isinstance(model_def, nnx.GraphDef):
        return apply_method(model_def, state, "__call__", x).astype(jnp.float32)
    return jnp.asarray(model_def(x)).astype(jnp.float32)


# (model_def, x shape) -> K. Finding K traces the model once (abstractly); cache it.
_NUM_CLASSES: OrderedDict[tuple[Any, tuple[int, ...]], int] = OrderedDict()


def _num_classes(model_def: Any, state: Any, x: Array) -> int:
    key = (model_def, x.shape)
    if key not in _NUM_CLASSES:
        shape = jax.eval_shape(functools.partial(_logits, model_def), state, x).shape
        if len(shape) != 2 or shape[0] != x.shape[0]:
            raise ValueError(
                f"the model must map x {x.shape} to logits (B, K), got shape {shape}"
            )
        _NUM_CLASSES[key] = shape[1]
        while len(_NUM_CLASSES) > 64:
            _NUM_CLASSES.popitem(last=False)
    return _NUM_CLASSES[key]


def _split(model: Any) -> tuple[Any, Any, str]:
    """``(model_def, state, head_type)``; ``model_def`` is a GraphDef or the plain function."""
    if isinstance(model, nnx.Module):
        graphdef, state = split_eval(model)
        return graphdef, state, head_type_of(model)
    return model, None, "sigmoid"


# ---------------------------------------------------------------------------------------
# The jitted core
# ---------------------------------------------------------------------------------------


def _imn_parts(
    model_def: nnx.GraphDef, state: Any, x: Array, target: Array, head: str, chunk_size: int
) -> tuple[Array, Array]:
    """``(c_t . W(x)) * x`` ``(B, L, 12)`` and the bias term ``c_t . b(x)`` ``(B,)``."""

    def one_group(args: tuple[Array, Array]) -> tuple[Array, Array]:
        xs, ts = args
        weights, bias = apply_method(model_def, state, "generate", xs)  # (E, K, L, 12), (E, K)
        contrast = contrast_vectors(ts, weights.shape[1], head)
        weight_map = jnp.einsum("ek,ekld->eld", contrast, weights.astype(jnp.float32))
        return weight_map * xs, (contrast * bias.astype(jnp.float32)).sum(-1)

    return gradients_lib.map_batches(one_group, (x, target), chunk_size)


@functools.partial(
    jax.jit, static_argnames=("method", "model_def", "head", "static_options")
)
def _attribute_jit(
    state: Any,
    x: Array,
    target: Array,
    arrays: dict[str, Array],
    *,
    method: str,
    model_def: Any,
    head: str,
    static_options: tuple[tuple[str, Any], ...],
) -> Array:
    options = dict(static_options)
    if method == "random":
        return jax.random.normal(gradients_lib.as_key(arrays["seed"]), x.shape, jnp.float32)
    if method == "imn":
        attribution, _ = _imn_parts(model_def, state, x, target, head, options["chunk_size"])
        return attribution
    if method == "attention":
        length, leads = x.shape[1], x.shape[2]

        def one_group(xs: Array) -> Array:
            maps = apply_method(model_def, state, "attention_map", xs).astype(jnp.float32)
            maps = gradcam_lib.upsample_time(maps, length, options.get("centres"))  # (n, L)
            return jnp.broadcast_to(maps[:, :, None], (*maps.shape, leads))

        return gradients_lib.map_batches(one_group, x, options["chunk_size"])
    if method in ("gradcam", "gradcam_x_input"):

        def features_fn(inputs: Array) -> Array:
            return apply_method(model_def, state, "features", inputs)

        def head_target_fn(features: Array, t: Array) -> Array:
            logits = apply_method(model_def, state, "head", features).astype(jnp.float32)
            return select_target(decision_logits(logits, head), t)

        explainer = gradcam_lib.gradcam if method == "gradcam" else gradcam_lib.gradcam_x_input
        return explainer(features_fn, head_target_fn, x, target, **options)

    def target_logit(inputs: Array, t: Array) -> Array:
        return select_target(decision_logits(_logits(model_def, state, inputs), head), t)

    explainer = getattr(gradients_lib, method)
    return explainer(target_logit, x, target, **options, **arrays)


# ---------------------------------------------------------------------------------------
# kernel_shap: its own jitted implementation takes the logit function as a static argument
# ---------------------------------------------------------------------------------------

# (graphdef, head, output, ids of the parameter arrays) -> logit function. Reusing the same
# function object lets kernel_shap's jit cache hit on repeated calls with unchanged
# parameters; the function keeps its state (and so the ids) alive while cached.
_SHAP_FUNCTIONS: OrderedDict[tuple[Any, ...], Callable[[Array], Array]] = OrderedDict()


def _shap_logit_fn(model_def: Any, state: Any, head: str, output: str) -> Callable:
    """Logits as kernel_shap should see them, so its target column is our explained scalar.

    ``output="logit"``: the decision logits; ``"probability"`` on a softmax head: the
    log-odds ``z_k - logsumexp_{j != k} z_j`` (its sigmoid is the softmax probability);
    otherwise the raw logits.
    """
    leaves = jax.tree.leaves(state)
    key = (model_def, head, output, tuple(id(leaf) for leaf in leaves))
    if key in _SHAP_FUNCTIONS:
        _SHAP_FUNCTIONS.move_to_end(key)
        return _SHAP_FUNCTIONS[key]

    def shap_logits(x: Array) -> Array:
        logits = _logits(model_def, state, x)
        if output == "logit":
            return decision_logits(logits, head)
        if output == "probability" and head == "softmax":
            others = jnp.where(
                jnp.eye(logits.shape[-1], dtype=bool)[None], -jnp.inf, logits[:, None, :]
            )
            return logits - jax.nn.logsumexp(others, axis=-1)
        return logits

    _SHAP_FUNCTIONS[key] = shap_logits
    while len(_SHAP_FUNCTIONS) > 4:  # each entry keeps one set of parameters alive
        _SHAP_FUNCTIONS.popitem(last=False)
    return shap_logits


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def attribute(method: str, model: Any, x: Any, target: Any, **options: Any) -> Array:
    """Attribution of ``method`` for ``model`` on ``x (B, L, 12)``: ``(B, L, 12)`` float32.

    Args:
      method: one of :data:`METHODS` (module docstring lists their options).
      model: a Flax NNX model (explained in evaluation mode) or, for model-agnostic methods,
        a pure logit function ``x (n, L, 12) -> (n, K)``.
      x: ECG batch ``(B, L, 12)``.
      target: class index (int) or ``(B,)`` int array of per-ECG class indices.
      **options: method options; an unknown option is an error.
    """
    _check_applicable(method, model)
    x = _as_batch(x)
    model_def, state, head = _split(model)
    num_classes = _num_classes(model_def, state, x)
    target = _as_target(target, x.shape[0], num_classes)
    if head == "softmax" and num_classes < 2:
        raise ValueError("a softmax head needs at least 2 classes")

    if method == "kernel_shap":
        from baselines.shap import kernel_shap  # lazy: only this method needs it

        output = options.get("output", "logit")
        logit_function = _shap_logit_fn(model_def, state, head, output)
        return kernel_shap(logit_function, x, jnp.asarray(target), **options).astype(
            jnp.float32
        )

    resolved = _resolve_options(method, options)
    resolved.update(_placement(method, model, x.shape[1]))
    arrays: dict[str, Array] = {}
    for name in _ARRAY_OPTIONS:
        if name in resolved:
            arrays[name] = _array_option(name, resolved.pop(name), x)
    static_options = tuple(sorted(resolved.items()))
    try:
        hash(static_options)
    except TypeError as error:
        raise TypeError(
            f"options {sorted(resolved)} of {method!r} must be plain numbers, strings or "
            f"booleans: {error}"
        ) from None
    attribution = _attribute_jit(
        state, x, jnp.asarray(target), arrays,
        method=method, model_def=model_def, head=head, static_options=static_options,
    )
    return attribution.astype(jnp.float32)


def explanation_fn(method: str, model: Any, **options: Any) -> Callable[[Array, Array], Array]:
    """``method`` as a pure, traceable function ``(x (n, L, 12), target (n,)) -> (n, L, 12)``.

    For metrics that re-explain perturbed inputs inside their own ``jit`` (e.g.
    :func:`imn.faithfulness.max_sensitivity`). Options are validated once, here; the model's
    parameters are captured as they are now. ``kernel_shap`` has its own jitted solver and
    is not offered this way (call :func:`attribute` on each batch instead).
    """
    _check_applicable(method, model)
    if method == "kernel_shap":
        raise ValueError("kernel_shap is not available as a traceable function; use attribute()")
    model_def, state, head = _split(model)
    resolved = _resolve_options(method, options)
    array_values = {name: resolved.pop(name) for name in _ARRAY_OPTIONS if name in resolved}

    def explain(x: Array, target: Array) -> Array:
        x = jnp.asarray(x, jnp.float32)
        arrays = {name: _array_option(name, value, x) for name, value in array_values.items()}
        static_options = tuple(sorted({**resolved, **_placement(method, model, x.shape[1])}.items()))
        attribution = _attribute_jit(
            state, x, jnp.asarray(target, jnp.int32), arrays,
            method=method, model_def=model_def, head=head, static_options=static_options,
        )
        return attribution.astype(jnp.float32)

    return explain


def _array_option(name: str, value: Any, x: Array) -> Array:
    """Array options as traced arguments with one shape per input shape (no retracing)."""
    if name == "seed":
        if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            return value  # a typed PRNG key
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < 2**32:
                raise ValueError(f"seed must be an integer in [0, 2**32), got {value}")
            return jnp.asarray(value, jnp.uint32)
        raise TypeError(f"seed must be an int or a typed PRNG key (jax.random.key), got {value!r}")
    if name == "baseline":
        if value is None or (isinstance(value, str) and value == "zero"):
            value = 0.0
        elif isinstance(value, str):
            raise ValueError(f"baseline must be 'zero', a number or an array, got {value!r}")
        baseline = jnp.asarray(value, jnp.float32)
        try:
            return jnp.broadcast_to(baseline, x.shape)
        except ValueError:
            raise ValueError(
                f"baseline of shape {baseline.shape} does not broadcast to x {x.shape}; give "
                f"(L, leads) = {x.shape[1:]} or (B, L, leads)"
            ) from None
    if name == "background":
        background = jnp.asarray(value, jnp.float32)
        if background.ndim != 3 or background.shape[1:] != x.shape[1:] or not len(background):
            raise ValueError(
                f"background must be (M, {x.shape[1]}, {x.shape[2]}) reference ECGs with "
                f"M >= 1, got shape {background.shape}"
            )
        return background
    raise AssertionError(name)


def imn_decomposition(model: nnx.Module, x: Any, target: Any) -> tuple[Array, Array]:
    """The IMN's exact decomposition of the explained scalar ``s_t`` of each ECG.

    Returns:
      ``(attribution (B, L, 12), bias (B,))`` float32 with
      ``attribution.sum((1, 2)) + bias == s_t(x)`` (the target logit for sigmoid heads, the
      decision logit for softmax heads); ``attribution`` equals
      ``attribute("imn", model, x, target)``.
    """
    _check_applicable("imn", model)
    x = _as_batch(x)
    graphdef, state, head = _split(model)
    target = _as_target(target, x.shape[0], _num_classes(graphdef, state, x))
    return _imn_parts_jit(state, x, jnp.asarray(target), graphdef=graphdef, head=head)


@functools.partial(jax.jit, static_argnames=("graphdef", "head"))
def _imn_parts_jit(
    state: Any, x: Array, target: Array, *, graphdef: nnx.GraphDef, head: str
) -> tuple[Array, Array]:
    return _imn_parts(graphdef, state, x, target, head, _CHUNK)
