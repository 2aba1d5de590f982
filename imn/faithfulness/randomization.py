"""Model-parameter randomisation test (Adebayo et al., NeurIPS 2018), cascading version.

An explanation that does not change when the model's learned parameters are destroyed
cannot be explaining what the model learned. Starting from the trained model, the
parameterised layers are re-drawn one after the other from the top (output) layer down,
cumulatively, and after each stage the explanation of the same ECGs is compared with the
trained model's by Spearman rank correlation, per ECG. A faithful explainer's correlation
should fall towards 0 as the cascade proceeds.

"Layer" = a submodule that directly owns ``nnx.Param`` variables (a conv, a norm, a linear),
named by its attribute path (``"decoder/out"``, ``"encoder/blocks/0/conv"``). The order is
the order in which the layers were assigned in ``__init__`` (definition order, like
PyTorch's ``named_modules``), reversed, so that the output layers come first; NNX's own
state listing is alphabetical and cannot be used for this. Batch-norm running statistics
(``nnx.BatchStat``) are not parameters and stay as trained.

Re-drawing: with ``random_model`` (a freshly initialised model of the same architecture,
e.g. ``ECGIMN(1, rngs=nnx.Rngs(params=123))``) each layer takes that model's parameters,
i.e. the architecture's own initialiser distributions, as in Adebayo et al. Without it each
parameter array is re-drawn i.i.d. from ``N(0, s^2)`` with ``s`` the standard deviation of
the trained array (its mean absolute value if the array is constant, e.g. an untrained
batch-norm scale; an all-zero array stays zero). The draw of each array is fixed by
``seed`` and does not change along the cascade.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from imn.faithfulness.localization import midranks

ModelExplainFn = Callable[[nnx.Module, jax.Array, jax.Array], jax.Array]
Path = tuple


def _child(node, key):
    return node[key] if isinstance(key, int) else getattr(node, key)


def _definition_order(module: nnx.Module, prefix: Path = ()) -> list[Path]:
    """Paths of all submodules in assignment order (depth first, parent before children)."""
    paths = [prefix]
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        # nnx.List keeps its items as attributes "0", "1", ...; its state paths use ints.
        key = int(name) if isinstance(module, nnx.List) and name.isdigit() else name
        if isinstance(value, nnx.Module):
            paths.extend(_definition_order(value, prefix + (key,)))
    return paths


def parameter_paths(model: nnx.Module) -> list[Path]:
    """Paths of every ``nnx.Param`` in ``model`` (in NNX's alphabetical state order)."""
    return [path for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]


def parameterised_layers(model: nnx.Module) -> list[tuple[str, list[Path]]]:
    """``[(layer_name, [param paths])]`` for each module that owns parameters, in definition
    order (input side first). Owners the attribute walk cannot reach (exotic containers)
    are appended in alphabetical order."""
    owners: dict[Path, list[Path]] = {}
    for path in parameter_paths(model):
        owners.setdefault(path[:-1], []).append(path)
    ordered = [p for p in _definition_order(model) if p in owners]
    ordered += sorted((p for p in owners if p not in ordered), key=str)
    return [("/".join(map(str, owner)) or "<root>", owners[owner]) for owner in ordered]


def _variable(module: nnx.Module, path: Path) -> nnx.Variable:
    node = module
    for key in path:
        node = _child(node, key)
    return node


def _random_values(model, paths, seed, random_model) -> dict[Path, jax.Array]:
    if random_model is not None:
        values = {}
        for path in paths:
            try:
                fresh = _variable(random_model, path)[...]
            except (AttributeError, IndexError, KeyError, TypeError):
                raise ValueError(
                    f"random_model has no parameter {'/'.join(map(str, path))}: it must have "
                    "the trained model's architecture"
                ) from None
            trained = _variable(model, path)[...]
            if fresh.shape != trained.shape:
                raise ValueError(
                    f"random_model's {'/'.join(map(str, path))} has shape {fresh.shape}, "
                    f"the trained model's {trained.shape}"
                )
            values[path] = jnp.asarray(fresh, trained.dtype)
        return values
    key = jax.random.key(seed)
    values = {}
    for index, path in enumerate(paths):
        trained = jnp.asarray(_variable(model, path)[...])
        spread = jnp.std(trained)
        spread = jnp.where(spread > 0, spread, jnp.mean(jnp.abs(trained)))
        draw = jax.random.normal(jax.random.fold_in(key, index), trained.shape, jnp.float32)
        values[path] = (spread * draw).astype(trained.dtype)
    return values


def randomization_attributions(
    model: nnx.Module,
    explain_fn: ModelExplainFn,
    x,
    target,
    *,
    seed: int = 0,
    random_model: nnx.Module | None = None,
) -> dict[str, jax.Array]:
    """Explanations along the cascade: ``{"original": a, top_layer: a, ..., bottom_layer: a}``.

    Entry ``layer`` is the explanation after re-drawing that layer and every layer above it.
    ``model`` itself is not modified (the cascade runs on a copy).

    Args:
      explain_fn: ``(model, x (B, L, C), target (B,)) -> (B, L, C)``.
      x: ``(B, L, C)``; target: int or ``(B,)``.
    """
    x = jnp.asarray(x)
    target = _as_targets(target, x)
    layers = parameterised_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nnx.Param to randomise")
    paths = [path for _, owned in layers for path in owned]
    random_values = _random_values(model, paths, seed, random_model)

    cascade = nnx.clone(model)
    results = {"original": jnp.asarray(explain_fn(cascade, x, target))}
    for name, owned in reversed(layers):
        for path in owned:
            _variable(cascade, path)[...] = random_values[path]
        results[name] = jnp.asarray(explain_fn(cascade, x, target))
    return results


def randomized_copy(
    model: nnx.Module, *, seed: int = 0, random_model: nnx.Module | None = None
) -> nnx.Module:
    """A copy of ``model`` with every parameter re-drawn: the last step of the cascade, the
    fully randomised model that a faithful explanation should no longer resemble."""
    paths = [path for _, owned in parameterised_layers(model) for path in owned]
    if not paths:
        raise ValueError(f"{type(model).__name__} has no nnx.Param to randomise")
    values = _random_values(model, paths, seed, random_model)
    copy = nnx.clone(model)
    for path in paths:
        _variable(copy, path)[...] = values[path]
    return copy


def rank_correlation(a, b, *, absolute: bool = True) -> jax.Array:
    """Spearman rank correlation per record between two ``(B, ...)`` attribution batches
    (midranks for ties); with ``absolute=True`` of their magnitudes. ``(B,)``; NaN for a
    constant map."""
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    if a.shape != b.shape:
        raise ValueError(f"attributions must have equal shapes, got {a.shape} and {b.shape}")
    if absolute:
        a, b = jnp.abs(a), jnp.abs(b)
    ra = midranks(a.reshape(a.shape[0], -1))
    rb = midranks(b.reshape(b.shape[0], -1))
    # Midranks always average (n + 1) / 2, so centring is exact.
    centre = (ra.shape[1] + 1) / 2
    ra, rb = ra - centre, rb - centre
    return jnp.sum(ra * rb, axis=1) / jnp.sqrt(jnp.sum(ra * ra, axis=1) * jnp.sum(rb * rb, axis=1))


def parameter_randomization(
    model: nnx.Module,
    explain_fn: ModelExplainFn,
    x,
    target,
    *,
    seed: int = 0,
    random_model: nnx.Module | None = None,
    absolute: bool = True,
) -> dict[str, jax.Array]:
    """Cascading model-parameter randomisation test (Adebayo et al. 2018).

    Returns ``{"original": (B,), top_layer: (B,), ..., bottom_layer: (B,)}``: the Spearman
    correlation per ECG between the trained model's explanation and the explanation after
    re-drawing that layer and all layers above it (``"original"`` compares the trained
    model's explanation with a recomputation, 1 for a deterministic explainer).
    ``absolute=True`` correlates magnitudes (Adebayo's main setting), ``False`` the signed
    maps; to get both without recomputing, call :func:`randomization_attributions` once and
    :func:`rank_correlation` twice.
    """
    attributions = randomization_attributions(
        model, explain_fn, x, target, seed=seed, random_model=random_model
    )
    trained = jnp.asarray(explain_fn(model, jnp.asarray(x), _as_targets(target, x)))
    return {
        name: rank_correlation(trained, value, absolute=absolute)
        for name, value in attributions.items()
    }


def _as_targets(target, x) -> jax.Array:
    target = jnp.asarray(target)
    return jnp.full((jnp.shape(x)[0],), target, jnp.int32) if target.ndim == 0 else target
