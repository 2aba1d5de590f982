"""Deletion / insertion curves, AOPC and baselines against plain NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from flax import nnx

from imn.faithfulness import aopc, curve_auc, deletion_curve, insertion_curve
from imn.faithfulness.perturbation import (descending_ranks, gaussian_blur, resolve_baseline,
                                          tie_break_order)

LENGTH, LEADS, BATCH, CLASSES = 203, 12, 3, 3  # 203: segments of unequal length


def _nonlinear_predict():
    """A 3-class scorer whose effective weights depend on the input, like an IMN.

    It works on the input quantised to 1/16 and on integer weights, so every sum is an exact
    integer in float32: batched and one-at-a-time evaluations agree bit for bit whatever
    order XLA reduces in (with real-valued weights the order differs with the batch shape
    and results differ in the last bit). Any wrong mask still changes the output.
    """
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.integers(-3, 4, size=(CLASSES, LENGTH, LEADS)).astype(np.float32))
    v = jnp.asarray(rng.integers(-2, 3, size=(LENGTH, LEADS)).astype(np.float32))

    def predict(x):
        q = jnp.round(x * 16.0)
        gate = jnp.mod(jnp.sum(q * v, axis=(1, 2)), 3.0)[:, None]  # 0, 1 or 2
        return jnp.sum(q[:, None] * w[None], axis=(2, 3)) * (1.0 + gate)

    return predict


PREDICT = _nonlinear_predict()
PREDICT_JIT = jax.jit(PREDICT)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, LENGTH, LEADS)).astype(np.float32)
    # Multiples of 1/8: many exact ties (including 0 and -0) exercise tie-breaking, and patch
    # sums are exact in any precision, so near-ties cannot flip with rounding.
    attribution = (np.round(rng.normal(size=(BATCH, LENGTH, LEADS)) * 8) / 8).astype(np.float32)
    attribution[1, :50] = 0.0
    target = np.array([0, 2, 1])
    return x, attribution, target


def _ranking(scores: np.ndarray, row: int) -> np.ndarray:
    """Features in descending order of score, ties in the ECG's fixed random order."""
    shuffle = np.asarray(tie_break_order(row + 1, scores.size))[row]
    return shuffle[np.argsort(-scores[shuffle], kind="stable")]


def reference_curve(x, attribution, target, fill, *, steps, unit, segments, absolute, order,
                    insertion):
    """Plain loops: one ranking per ECG, one predict call per ECG per step."""
    batch, length, leads = x.shape
    curves = np.zeros((batch, steps + 1), np.float32)
    for b in range(batch):
        if unit == "sample":
            scores = attribution[b].reshape(-1)
            owner = np.arange(length * leads).reshape(length, leads)
        else:
            scores = np.zeros(segments * leads, np.float32)
            owner = np.zeros((length, leads), int)
            for t in range(length):
                seg = t * segments // length
                for c in range(leads):
                    owner[t, c] = seg * leads + c
            for f in range(segments * leads):
                inside = attribution[b][owner == f]
                scores[f] = np.float32(inside.astype(np.float64).sum()) / np.float32(inside.size)
        if absolute:
            scores = np.abs(scores)
        if order == "lerf":
            scores = -scores
        ranking = _ranking(scores, b)
        count = scores.size
        for s in range(steps + 1):
            k = int(np.floor(s / steps * count + 0.5))
            chosen = np.zeros(count, bool)
            chosen[ranking[:k]] = True
            touched = chosen[owner]
            if insertion:
                perturbed = np.where(touched, x[b], fill[b])
            else:
                perturbed = np.where(touched, fill[b], x[b])
            curves[b, s] = np.asarray(PREDICT_JIT(jnp.asarray(perturbed[None])))[0, target[b]]
    return curves


@pytest.mark.parametrize("insertion", [False, True], ids=["deletion", "insertion"])
@pytest.mark.parametrize("unit", ["sample", "patch"])
@pytest.mark.parametrize("baseline", ["zero", "mean", "blur", "array"])
def test_curves_equal_numpy_loop(data, insertion, unit, baseline):
    x, attribution, target = data
    if baseline == "array":
        baseline = np.random.default_rng(5).normal(size=(LENGTH, LEADS)).astype(np.float32)
    fill = np.asarray(resolve_baseline(jnp.asarray(x), baseline, 4.0))
    options = dict(steps=9, unit=unit, segments=7, absolute=False, order="morf")
    curve_fn = insertion_curve if insertion else deletion_curve
    got = curve_fn(PREDICT, x, attribution, target, baseline=baseline, blur_sigma=4.0,
                   chunk_size=5, **options)
    want = reference_curve(x, attribution, target, fill, insertion=insertion, **options)
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("unit", ["sample", "patch"])
@pytest.mark.parametrize("absolute,order", [(True, "morf"), (False, "lerf"), (True, "lerf")])
def test_absolute_and_lerf_equal_numpy_loop(data, unit, absolute, order):
    x, attribution, target = data
    fill = np.zeros_like(x)
    options = dict(steps=6, unit=unit, segments=5, absolute=absolute, order=order)
    got = deletion_curve(PREDICT, x, attribution, target, **options)
    want = reference_curve(x, attribution, target, fill, insertion=False, **options)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_chunk_size_does_not_change_curves(data):
    x, attribution, target = data
    curves = [
        np.asarray(deletion_curve(PREDICT, x, attribution, target, steps=8, chunk_size=c))
        for c in (1, 4, 27, 1000)
    ]
    for other in curves[1:]:
        np.testing.assert_array_equal(other, curves[0])


@pytest.mark.parametrize("unit", ["sample", "patch"])
@pytest.mark.parametrize("baseline", ["zero", "mean", "blur"])
def test_curve_endpoints(data, unit, baseline):
    x, attribution, target = data
    fill = resolve_baseline(jnp.asarray(x), baseline)
    clean = np.asarray(PREDICT(jnp.asarray(x)))[np.arange(BATCH), target]
    removed = np.asarray(PREDICT(fill))[np.arange(BATCH), target]
    deletion = np.asarray(deletion_curve(PREDICT, x, attribution, target, steps=5, unit=unit,
                                         baseline=baseline))
    insertion = np.asarray(insertion_curve(PREDICT, x, attribution, target, steps=5, unit=unit,
                                           baseline=baseline))
    assert deletion.shape == insertion.shape == (BATCH, 6)
    np.testing.assert_allclose(deletion[:, 0], clean, rtol=1e-6)
    np.testing.assert_allclose(deletion[:, -1], removed, rtol=1e-6)
    np.testing.assert_allclose(insertion[:, 0], removed, rtol=1e-6)
    np.testing.assert_allclose(insertion[:, -1], clean, rtol=1e-6)


def test_baselines_match_numpy_and_scipy():
    x = np.random.default_rng(3).normal(size=(2, 150, 12)).astype(np.float32)
    xj = jnp.asarray(x)
    np.testing.assert_array_equal(np.asarray(resolve_baseline(xj, "zero")), np.zeros_like(x))
    np.testing.assert_allclose(
        np.asarray(resolve_baseline(xj, "mean")),
        np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape), atol=1e-6,
    )
    for sigma in (2.0, 10.0, 50.0):  # 50: the kernel radius (200) exceeds L
        want = scipy.ndimage.gaussian_filter1d(x.astype(np.float64), sigma, axis=1,
                                               mode="reflect", truncate=4.0)
        np.testing.assert_allclose(np.asarray(gaussian_blur(xj, sigma)), want, atol=1e-5)
    # A constant lead blurs to itself (mirror padding, normalised kernel).
    np.testing.assert_allclose(np.asarray(gaussian_blur(jnp.full((1, 40, 12), 3.0), 8.0)), 3.0,
                               rtol=1e-6)
    shared = np.arange(150 * 12, dtype=np.float32).reshape(150, 12)
    np.testing.assert_array_equal(
        np.asarray(resolve_baseline(xj, shared)), np.broadcast_to(shared, x.shape)
    )


# --------------------------------------------------------------------------------------
# A linear model: the ideal ordering is known
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(7)
    batch, length = 6, 200
    w = rng.normal(size=(length, LEADS)).astype(np.float32) / 10
    x = rng.normal(size=(batch, length, LEADS)).astype(np.float32)
    bias = np.float32(0.3)
    wj = jnp.asarray(w)

    def logit(x):
        return (jnp.sum(x * wj, axis=(1, 2)) + bias)[:, None]

    def prob(x):
        return jax.nn.sigmoid(logit(x))

    return dict(w=w, x=x, bias=bias, logit=logit, prob=prob,
                random=rng.normal(size=x.shape).astype(np.float32))


@pytest.mark.parametrize("unit", ["sample", "patch"])
def test_linear_model_ideal_ordering_is_best(linear, unit):
    x, w, prob = linear["x"], linear["w"], linear["prob"]
    ideal = x * w
    kw = dict(steps=20, unit=unit, segments=10, baseline="zero")
    curves = {name: np.asarray(deletion_curve(prob, x, a, 0, **kw))
              for name, a in [("ideal", ideal), ("reversed", -ideal),
                              ("random", linear["random"])]}
    auc = {name: np.asarray(curve_auc(c)) for name, c in curves.items()}
    # Averaged over the batch: ideal < random < reversed.
    assert auc["ideal"].mean() < auc["random"].mean() - 0.05
    assert auc["random"].mean() < auc["reversed"].mean() - 0.05
    if unit == "sample":
        # Removing the k largest contributions gives the smallest logit of any k-subset, so
        # the ideal curve lies below every other one, and the reversed curve above, pointwise.
        tol = 1e-6
        assert np.all(curves["ideal"] <= curves["random"] + tol)
        assert np.all(curves["random"] <= curves["reversed"] + tol)
        # Insertion from zero is the mirror image: ideal is pointwise highest.
        ins = {name: np.asarray(insertion_curve(prob, x, a, 0, baseline="zero", steps=20))
               for name, a in [("ideal", ideal), ("random", linear["random"])]}
        assert np.all(ins["ideal"] >= ins["random"] - tol)
        assert np.all(curve_auc(ins["ideal"]) > curve_auc(ins["random"]))


def test_curve_auc_is_trapezoid():
    curves = np.random.default_rng(2).uniform(size=(4, 11)).astype(np.float32)
    want = np.trapezoid(curves, x=np.linspace(0.0, 1.0, 11), axis=1)
    np.testing.assert_allclose(np.asarray(curve_auc(curves)), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(curve_auc(np.ones((2, 3)))), 1.0)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_aopc_closed_form_on_linear_model(linear, order):
    """Identity output, zero baseline: f(x) - f(x^(s)) is the sum of the k_s removed
    contributions, i.e. a prefix sum of the sorted contributions."""
    x, w, steps = linear["x"], linear["w"], 16
    contributions = (x * w).reshape(x.shape[0], -1).astype(np.float64)
    count = contributions.shape[1]
    ks = [int(np.floor(s / steps * count + 0.5)) for s in range(steps + 1)]
    ordered = -np.sort(-contributions, axis=1) if order == "morf" else np.sort(contributions, 1)
    prefix = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(ordered, axis=1)], axis=1)
    want = prefix[:, ks].mean(axis=1)
    got = np.asarray(aopc(linear["logit"], x, x * w, 0, steps=steps, order=order))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    if order == "morf":
        assert np.all(got > 0)
    else:
        assert np.all(got < 0)


def test_rejects_bad_input(data):
    x, attribution, target = data
    with pytest.raises(ValueError, match="attribution must have the shape"):
        deletion_curve(PREDICT, x, attribution[:, :10], target)
    with pytest.raises(ValueError, match="unit must be one of"):
        deletion_curve(PREDICT, x, attribution, target, unit="beat")
    with pytest.raises(ValueError, match="baseline must be one of"):
        insertion_curve(PREDICT, x, attribution, target, baseline="noise")
    with pytest.raises(ValueError, match="broadcast"):
        deletion_curve(PREDICT, x, attribution, target, baseline=np.zeros((5, 12)))
    with pytest.raises(ValueError, match="target must be"):
        deletion_curve(PREDICT, x, attribution, np.array([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        deletion_curve(PREDICT, x, attribution, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        deletion_curve(lambda x: x.sum(axis=(1, 2)), x, attribution, 0)
    with pytest.raises(ValueError, match="steps"):
        deletion_curve(PREDICT, x, attribution, target, steps=0)
    with pytest.raises(ValueError, match="segments"):
        deletion_curve(PREDICT, x, attribution, target, unit="patch", segments=0)


def test_tiny_imn_is_rerun_on_every_perturbed_input():
    """On a real (tiny) IMN the curve equals the loop, and differs from what a frozen W(x)
    would give: the model's weights are recomputed for each perturbed ECG."""
    from imn.models.imn import ECGIMN

    model = ECGIMN(1, widths=(2, 4, 8), rngs=nnx.Rngs(params=0, dropout=1))
    model.eval()
    graphdef, state = nnx.split(model)

    def predict(x):
        return jax.nn.sigmoid(nnx.merge(graphdef, state)(x))

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 200, LEADS)).astype(np.float32)
    weights, bias = model.generate(jnp.asarray(x))
    attribution = np.asarray(weights[:, 0]) * x
    got = np.asarray(deletion_curve(predict, x, attribution, 0, steps=4, unit="patch",
                                    segments=10))
    jit_predict = jax.jit(predict)
    scores = np.zeros((2, 120))
    for b in range(2):
        for s in range(10):
            for c in range(LEADS):
                scores[b, s * LEADS + c] = attribution[b, s * 20:(s + 1) * 20, c].mean()
    want = np.zeros((2, 5), np.float32)
    frozen = np.zeros((2, 5), np.float32)
    for b in range(2):
        ranking = _ranking(scores[b], b)
        for s in range(5):
            removed = np.zeros(120, bool)
            removed[ranking[: round(s / 4 * 120)]] = True
            keep = ~np.repeat(removed.reshape(10, LEADS), 20, axis=0)
            perturbed = np.where(keep, x[b], 0.0).astype(np.float32)
            want[b, s] = np.asarray(jit_predict(jnp.asarray(perturbed[None])))[0, 0]
            frozen_logit = np.sum(np.asarray(weights[b, 0]) * perturbed) + float(bias[b, 0])
            frozen[b, s] = 1 / (1 + np.exp(-frozen_logit))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.abs(got[:, 1:] - frozen[:, 1:]).max() > 1e-3


def test_tied_features_are_not_taken_from_the_start_of_the_record():
    """A sparse map (Grad-CAM's zeros): after its positive features, the tied rest is taken
    in a random order per ECG, fixed from call to call, not by position."""
    scores = np.zeros((64, 240), np.float32)
    scores[:, 200] = 1.0  # one positive feature, late in the record
    ranks = np.asarray(descending_ranks(jnp.asarray(scores)))
    assert (ranks[:, 200] == 0).all()
    first_tied = np.argsort(ranks, axis=1)[:, 1:25]  # the next 24 features taken
    assert abs(first_tied.mean() / 239 - 0.5) < 0.05, "ties taken from all over the record"
    assert len({tuple(row) for row in first_tied}) == 64, "a different order per ECG"
    np.testing.assert_array_equal(ranks, np.asarray(descending_ranks(jnp.asarray(scores))))
    np.testing.assert_array_equal(np.asarray(tie_break_order(3, 240)),
                                  np.asarray(tie_break_order(64, 240))[:3])
