"""Grad-CAM (Selvaraju et al. 2017) for ECG models with a ``features`` / ``head`` split.

For the scalar ``s`` explained for the target (see :mod:`imn.explain.model_fns`) and the
feature map ``A = features(x)``:

    alpha_c = mean over the map's spatial positions of  d s / d A[..., c]
    cam     = ReLU( sum_c alpha_c A[..., c] )

* 1-D feature maps ``A (B, T', C)`` (inception1d, resnet1d_wang, xresnet1d101) give a
  lead-agnostic map ``(B, T')``, broadcast over the leads (as ECG-XPLAIM does).
* 2-D feature maps ``A (B, T', leads, C)`` (cnn2d) give a lead-resolved map; the channel
  weights average over time *and* leads.

The map is upsampled from ``T'`` to ``L`` by linear interpolation with half-sample-centred
alignment (``jax.image.resize``, like ``F.interpolate(align_corners=False)``): feature step
``t`` is taken to cover input samples ``[t L / T', (t + 1) L / T')`` and sits at their centre;
values beyond the first/last centre are held constant. The whole map therefore spans the
record even when ``T'`` does not divide ``L`` (xresnet1d101: L = 1000 -> T' = 32).

Units: with ``normalize=False`` (the default) the map keeps its scale (logit units per
feature unit times feature), so maps of different ECGs stay comparable and
``gradcam_x_input`` carries the input's scale; ``normalize=True`` divides each ECG's map by
its maximum (a map that is zero everywhere stays zero), as visualisation tools do.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from baselines.gradients import check_batch, map_batches

Array = jax.Array
FeaturesFn = Callable[[Array], Array]
HeadTargetFn = Callable[[Array, Array], Array]

DEFAULT_CHUNK_SIZE = 64


def gradcam_low_resolution(
    features_fn: FeaturesFn, head_target_fn: HeadTargetFn, x: Array, target: Array
) -> Array:
    """Grad-CAM at the feature map's resolution.

    Args:
      features_fn: ``x (N, L, leads) -> A (N, T', C)`` or ``(N, T', leads, C)``.
      head_target_fn: ``(A, target (N,)) -> (N,)`` the explained scalar from the features.
    Returns:
      ``(N, T')`` or ``(N, T', leads)`` float32, non-negative.
    """
    features = features_fn(x)
    if features.ndim not in (3, 4):
        raise ValueError(
            f"features must be (batch, time, channels) or (batch, time, leads, channels), "
            f"got shape {features.shape}"
        )
    grads = jax.grad(lambda a: head_target_fn(a, target).sum())(features)
    spatial = tuple(range(1, features.ndim - 1))
    channel_weights = grads.astype(jnp.float32).mean(axis=spatial, keepdims=True)
    return jax.nn.relu((channel_weights * features.astype(jnp.float32)).sum(axis=-1))


def upsample_time(cam: Array, length: int) -> Array:
    """``(N, T', ...) -> (N, length, ...)`` linear, half-sample-centred (module docstring)."""
    if cam.shape[1] == length:
        return cam
    return jax.image.resize(cam, (cam.shape[0], length, *cam.shape[2:]), method="linear")


def _normalize_max(cam: Array) -> Array:
    peak = cam.max(axis=tuple(range(1, cam.ndim)), keepdims=True)
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0)


def gradcam(
    features_fn: FeaturesFn,
    head_target_fn: HeadTargetFn,
    x: Array,
    target: Array | int,
    *,
    normalize: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Grad-CAM upsampled to the input: ``x (B, L, leads)``, ``target (B,)`` -> ``(B, L, leads)``.

    A 1-D map is repeated over the leads; a 2-D map is lead-resolved. Non-negative float32.
    ``chunk_size`` ECGs go through the model per pass.
    """
    target = check_batch(x, target)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    length, leads = x.shape[1], x.shape[2]

    def one_group(args: tuple[Array, Array]) -> Array:
        xs, ts = args
        cam = gradcam_low_resolution(features_fn, head_target_fn, xs, ts)
        if cam.ndim == 3 and cam.shape[2] != leads:
            raise ValueError(
                f"a 2-D feature map must keep the {leads} leads on axis 2, got a map of "
                f"shape {cam.shape}"
            )
        cam = upsample_time(cam, length)
        if cam.ndim == 2:
            cam = jnp.broadcast_to(cam[:, :, None], (*cam.shape, leads))
        return _normalize_max(cam) if normalize else cam

    return map_batches(one_group, (x, target), int(chunk_size))


def gradcam_x_input(
    features_fn: FeaturesFn,
    head_target_fn: HeadTargetFn,
    x: Array,
    target: Array | int,
    *,
    normalize: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    """Grad-CAM times the input, ``(B, L, leads)``, signed (the sign of ``x``)."""
    cam = gradcam(
        features_fn, head_target_fn, x, target, normalize=normalize, chunk_size=chunk_size
    )
    return cam * x.astype(jnp.float32)
