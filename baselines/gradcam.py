"""Grad-CAM (Selvaraju et al. 2017) for ECG models with a ``features`` / ``head`` split.

For the scalar ``s`` explained for the target (see :mod:`imn.explain.model_fns`) and the
feature map ``A = features(x)``:

    alpha_c = mean over the map's spatial positions of  d s / d A[..., c]
    cam     = ReLU( sum_c alpha_c A[..., c] )

* 1-D feature maps ``A (B, T', C)`` (inception1d, resnet1d_wang, xresnet1d101) give a
  lead-agnostic map ``(B, T')``, broadcast over the leads (as ECG-XPLAIM does).
* 2-D feature maps ``A (B, T', leads, C)`` (cnn2d) give a lead-resolved map; the channel
  weights average over time *and* leads.

The map is upsampled from ``T'`` to ``L`` by linear interpolation between the input samples
the feature steps sit at; values beyond the first/last centre are held constant, so the map
spans the record even when ``T'`` does not divide ``L``. Where the model lists its strided
time layers (``model.time_ops``), the map is placed at the centres of the input windows they
read (:func:`window_centres`): xECGNet's five 'SAME' max-pools of 3 give its first step 149
samples of a 1000-sample record and its last 122, not 200 each, which misplaces a uniform
guess by up to 57 samples. Otherwise step ``t`` is taken to cover input
samples ``[t L / T', (t + 1) L / T')`` (``jax.image.resize``, like
``F.interpolate(align_corners=False)``), exact for cnn2d's unpadded pools.

Units: with ``normalize=False`` (the default) the map keeps its scale (logit units per
feature unit times feature), so maps of different ECGs stay comparable and
``gradcam_x_input`` carries the input's scale; ``normalize=True`` divides each ECG's map by
its maximum (a map that is zero everywhere stays zero), as visualisation tools do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

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


TimeOp = tuple[int, int, "int | str"]  # (kernel, stride, padding: symmetric int or "same")


def strided_windows(length: int, ops: Sequence[TimeOp]) -> np.ndarray:
    """The input samples ``[first, last]`` each output step of a chain of strided time
    operations reads, ``(T', 2)`` int, windows clipped to the record (padding holds no
    samples).

    ``ops``: ``(kernel, stride, padding)`` in order; ``padding`` an int pads both sides
    (PyTorch), ``"same"`` pads as XLA's 'SAME' (``ceil(n / stride)`` outputs, the extra
    padding on the right). Stride-1 layers with centred kernels widen a window but do not move
    its centre, so only the strided ones need listing.
    """
    windows = np.stack([np.arange(length), np.arange(length)], axis=1)
    for kernel, stride, padding in ops:
        n = len(windows)
        if padding == "same":
            out = -(-n // stride)
            left = max((out - 1) * stride + kernel - n, 0) // 2
        else:
            left = int(padding)
            out = (n + 2 * left - kernel) // stride + 1
        starts = np.arange(out) * stride - left
        first = np.clip(starts, 0, n - 1)
        last = np.clip(starts + kernel - 1, 0, n - 1)
        windows = np.stack([windows[first, 0], windows[last, 1]], axis=1)
    return windows


def window_centres(length: int, ops: Sequence[TimeOp]) -> tuple[float, ...]:
    """Centres (input samples) of :func:`strided_windows`, as a hashable tuple."""
    return tuple(float(c) for c in strided_windows(length, ops).mean(axis=1))


def upsample_time(cam: Array, length: int, centres: Sequence[float] | None = None) -> Array:
    """``(N, T', ...) -> (N, length, ...)``, linear between the steps' ``centres`` (input
    samples, ``T'`` of them) or, without them, half-sample-centred (module docstring)."""
    if centres is None:
        if cam.shape[1] == length:
            return cam
        return jax.image.resize(cam, (cam.shape[0], length, *cam.shape[2:]), method="linear")
    if len(centres) != cam.shape[1]:
        raise ValueError(f"{len(centres)} feature-step centres for a map of {cam.shape[1]} steps")
    grid = jnp.arange(length, dtype=jnp.float32)
    at = jnp.asarray(centres, jnp.float32)
    rows = jnp.moveaxis(cam, 1, -1).reshape(-1, cam.shape[1])  # (N * rest, T')
    values = jax.vmap(lambda row: jnp.interp(grid, at, row))(rows)
    return jnp.moveaxis(values.reshape(*cam.shape[:1], *cam.shape[2:], length), -1, 1)


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
    centres: Sequence[float] | None = None,
) -> Array:
    """Grad-CAM upsampled to the input: ``x (B, L, leads)``, ``target (B,)`` -> ``(B, L, leads)``.

    A 1-D map is repeated over the leads; a 2-D map is lead-resolved. Non-negative float32.
    ``chunk_size`` ECGs go through the model per pass. ``centres``: the input sample each
    feature step sits at (:func:`upsample_time`), from the model where it knows them.
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
        cam = upsample_time(cam, length, centres)
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
    centres: Sequence[float] | None = None,
) -> Array:
    """Grad-CAM times the input, ``(B, L, leads)``, signed (the sign of ``x``)."""
    cam = gradcam(
        features_fn, head_target_fn, x, target, normalize=normalize, chunk_size=chunk_size,
        centres=centres,
    )
    return cam * x.astype(jnp.float32)
