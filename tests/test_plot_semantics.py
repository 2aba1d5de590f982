"""What a reader of a figure is meant to see, checked on the drawn figure: the planted mask is
outlined where the mask is, a known-sign attribution lands on the right side of the colour
map, a time-only map is one strip, legends use the fixed method styles, every row has a
1 mV calibration pulse."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.data.synthetic import make_synthetic  # noqa: E402
from imn.plots import attribution as pa  # noqa: E402
from imn.plots import curves as pc  # noqa: E402
from imn.plots import style  # noqa: E402
from imn.plots.ecg import _spans  # noqa: E402

FS = 100
V2, II = LEADS.index("V2"), LEADS.index("II")


@pytest.fixture(scope="module")
def planted():
    """A synthetic ECG with its QRSW-style evidence mask, and an attribution that is +1 on
    V2 over 3.0-3.5 s, -1 on II over 6.0-6.5 s, and 0 elsewhere."""
    data = make_synthetic(8, FS, seed=1)
    # The first finding whose evidence is local (NORM's mask is the whole record).
    i, k = next((i, k) for i in range(8) for k in range(len(data.classes))
                if data.labels[i, k] and 0 < data.evidence[i, k].mean() < 0.5)
    signal = data.signals[i].astype(np.float64)
    evidence = data.evidence[i, k]
    attribution = np.zeros_like(signal)
    attribution[300:350, V2] = 1.0
    attribution[600:650, II] = -1.0
    return signal, evidence, attribution


def _pixel(fig, ax, x, y, half_mm=1.5):
    """Median RGB (0-1) of the figure rendered at 300 dpi over a square of +-``half_mm``
    paper mm around data point (x, y) of ``ax`` (the median ignores the thin grid lines)."""
    fig.set_dpi(300)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    (x0, y0), (x1, y1) = ax.transData.transform([(x - half_mm, y - half_mm),
                                                 (x + half_mm, y + half_mm)])
    rows = slice(int(image.shape[0] - y1), int(image.shape[0] - y0))
    return np.median(image[rows, int(x0):int(x1)].reshape(-1, 3), axis=0)


def test_evidence_outlines_cover_exactly_the_masked_samples(planted):
    signal, evidence, attribution = planted
    assert evidence.any() and not evidence.all()
    fig = pa.plot_attribution_ecg(signal, attribution, FS, layout="12x1", evidence=evidence)
    ax = fig.axes[0]
    mm_per_sample = pa.PAPER_SPEED_MM_PER_S / FS
    rows = {}
    for patch in ax.patches:
        if patch.get_gid() != "evidence":
            continue
        lead = NUM_LEADS - 1 - int(patch.get_y() // pa.ROW_HEIGHT_MM)
        start = int(round(patch.get_x() / mm_per_sample + 0.5))
        stop = start + int(round(patch.get_width() / mm_per_sample))
        rows.setdefault(lead, np.zeros(signal.shape[0], bool))[start:stop] = True
    for lead in range(NUM_LEADS):
        drawn = rows.get(lead, np.zeros(signal.shape[0], bool))
        np.testing.assert_array_equal(drawn, evidence[:, lead], err_msg=LEADS[lead])
    plt.close(fig)


def test_a_positive_attribution_is_red_and_a_negative_one_blue(planted):
    """Sampled on the rendered image, above the trace, in the middle of each planted block."""
    signal, _, attribution = planted
    fig = pa.plot_attribution_ecg(signal, attribution, FS, layout="12x1", smooth_s=0.0)
    ax = fig.axes[0]
    row = lambda lead: (NUM_LEADS - lead - 0.5) * pa.ROW_HEIGHT_MM + 11.0  # above the trace
    red = _pixel(fig, ax, 3.25 * pa.PAPER_SPEED_MM_PER_S, row(V2))
    blue = _pixel(fig, ax, 6.25 * pa.PAPER_SPEED_MM_PER_S, row(II))
    blank = _pixel(fig, ax, 8.3 * pa.PAPER_SPEED_MM_PER_S + 0.5, row(V2))
    assert red[0] > red[2] + 0.2 and blue[2] > blue[0] + 0.2
    np.testing.assert_allclose(red, style.signed_cmap()(1.0)[:3], atol=0.1)
    np.testing.assert_allclose(blue, style.signed_cmap()(0.0)[:3], atol=0.1)
    assert abs(blank[0] - blank[2]) < 0.1  # zero attribution stays neutral
    assert fig.axes[1].get_xlim() == (-1.0, 1.0)  # the signed colour bar is centred at 0
    plt.close(fig)


def test_a_non_negative_map_uses_the_sequential_colour_map(planted):
    signal, _, attribution = planted
    fig = pa.plot_attribution_ecg(signal, np.abs(attribution), FS, layout="12x1", smooth_s=0.0)
    bar = fig.axes[1]
    assert bar.get_xlim() == (0.0, 1.0)
    ax = fig.axes[0]
    row = (NUM_LEADS - V2 - 0.5) * pa.ROW_HEIGHT_MM + 11.0
    hot = _pixel(fig, ax, 3.25 * pa.PAPER_SPEED_MM_PER_S, row)
    np.testing.assert_allclose(hot, style.magnitude_cmap()(1.0)[:3], atol=0.1)
    plt.close(fig)


@pytest.mark.parametrize("layout, strips", [("6x2", 2), ("4x3+rhythm", 1), ("12x1", 1)])
def test_a_time_only_map_is_one_strip_not_twelve_lead_bands(planted, layout, strips):
    """A 1-D Grad-CAM (the same map on every lead) is drawn once per column, covering the
    column's time, and never as per-lead bands."""
    signal, _, _ = planted
    cam = np.repeat(np.abs(np.sin(np.linspace(0, 9, signal.shape[0])))[:, None], NUM_LEADS, 1)
    fig = pa.plot_attribution_ecg(signal, cam, FS, layout=layout)
    images = fig.axes[0].images
    assert [im.get_gid() for im in images] == ["strip"] * strips
    covered = sum(im.get_extent()[1] - im.get_extent()[0] for im in images)
    assert covered == pytest.approx(10.0 * pa.PAPER_SPEED_MM_PER_S)
    plt.close(fig)


def test_every_row_starts_with_a_1_mv_calibration_pulse(planted):
    signal, _, attribution = planted
    for layout, rows in (("4x3+rhythm", 4), ("6x2", 6), ("12x1", 12)):
        fig = pa.plot_attribution_ecg(signal, attribution, FS, layout=layout)
        pulses = [line for line in fig.axes[0].lines if line.get_gid() == "calibration"]
        assert len(pulses) == rows
        for line in pulses:
            assert np.ptp(line.get_ydata()) == pytest.approx(pa.GAIN_MM_PER_MV)  # 1 mV
            assert np.max(line.get_xdata()) < 0  # left of time 0, in the margin
        plt.close(fig)


def test_6x2_shows_two_columns_of_5_s():
    panels, width, height = pa.layout_panels("6x2", 1000, FS)
    assert (width, height) == (250.0, 6 * pa.ROW_HEIGHT_MM)
    assert {(p.start, p.stop) for p in panels if p.lead < 6} == {(0, 500)}
    assert {(p.start, p.stop) for p in panels if p.lead >= 6} == {(500, 1000)}


def test_legends_use_the_fixed_method_styles_in_every_figure():
    """The same method keeps its colour and line style whichever other methods are drawn."""
    rng = np.random.default_rng(0)
    curve = lambda: rng.uniform(0, 1, (5, 11))
    first = pc.plot_deletion_insertion({"imn": curve(), "random": curve()},
                                       {"imn": curve(), "random": curve()})
    second = pc.plot_perturbation_curves({"saliency": curve(), "random": curve(),
                                          "gradcam": curve()})
    for fig in (first, second):
        for ax in fig.axes:
            legend = ax.get_legend()
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                name = next(n for n in ("imn", "random", "saliency", "gradcam")
                            if text.get_text().startswith(style.method_label(n)))
                expected = style.method_style(name)
                assert mcolors.to_hex(handle.get_color()) == mcolors.to_hex(expected["color"])
                assert handle.get_linestyle() == matplotlib.lines.Line2D(
                    [], [], linestyle=expected["linestyle"]).get_linestyle()
        plt.close(fig)
    assert style.method_label("gradcam_x_input") == "Grad-CAM \u00d7 input"
    assert style.method_style("random")["linestyle"] == ":"


def test_methods_panels_carry_readable_names_and_the_mask(planted):
    signal, evidence, attribution = planted
    fig = pa.plot_methods_side_by_side(signal, {"integrated_gradients": attribution,
                                                "gradcam": np.abs(attribution)[:, :1].repeat(12, 1)},
                                       FS, evidence=evidence)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Integrated gradients", "Grad-CAM"]
    grad_cam_axes = [ax for ax in fig.axes if ax.get_title() == "Grad-CAM"][0]
    assert [im.get_gid() for im in grad_cam_axes.images] == ["strip"]
    assert any(p.get_gid() == "evidence" for p in grad_cam_axes.patches)
    plt.close(fig)


def test_ecg_title_names_model_method_truth_and_probability():
    text = pa.ecg_title("resnet1d_wang", "gradcam_x_input", 19, true_labels=["QRSW"],
                        explained="QRSW", probability=0.973)
    assert text == "ResNet1D (Wang), Grad-CAM \u00d7 input | ECG 19 | true: QRSW | explained: QRSW, p = 0.97"


# ----------------------------------------------------------------------------- new figure kinds


def test_localisation_examples_shade_the_mask_and_draw_one_strip_per_method(planted, tmp_path):
    from imn.plots.localisation import LocalisationExample, evidence_lead, plot_localisation_examples

    signal, evidence, attribution = planted
    maps = {"imn": attribution, "gradcam": np.abs(attribution)[:, :1].repeat(NUM_LEADS, 1)}
    examples = [LocalisationExample(signal, evidence, maps, "STE: ECG 1"),
                LocalisationExample(signal, evidence, maps, "QRSW: ECG 2")]
    fig = plot_localisation_examples(examples, FS, title="localisation")
    traces = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in traces] == ["STE: ECG 1", "QRSW: ECG 2"]
    lead = evidence_lead(evidence)
    expected = [(s / FS, e / FS) for s, e in _spans(evidence[:, lead])]
    for ax in traces:
        shaded = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches
                        if p.get_gid() == "evidence")
        np.testing.assert_allclose(shaded, expected)
    strips = [ax for ax in fig.axes if any(im.get_gid() == "strip" for im in ax.images)]
    assert len(strips) == 2 * len(maps)
    names = {t.get_text() for ax in strips for t in ax.texts}
    assert names == {"IMN (W\u00b7x)", "Grad-CAM (time only)"}
    pa.save_figure(fig, tmp_path / "loc")
    # The longest label a reproduction draws fits left of its strip (it was cut off).
    long = {"attention": maps["gradcam"], "imn": attribution}
    fig = plot_localisation_examples([LocalisationExample(signal, evidence, long, "STE")], FS)
    fig.canvas.draw()
    labels = [t for ax in fig.axes for t in ax.texts]
    assert "Attention map (xECGNet) (time only)" in {t.get_text() for t in labels}
    assert min(t.get_window_extent().x0 for t in labels) >= 0


def test_roc_pr_panel_gives_n_bands_and_flags_tied_scores(tmp_path):
    from sklearn import metrics

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30), np.ones(12)].astype(int)
    smooth = y + rng.normal(0, 0.8, y.size)
    saturated = np.clip(np.round(smooth), 0, 1)  # heavily tied, like a saturated model
    assert pc.average_precision(y, smooth) == pytest.approx(metrics.average_precision_score(y, smooth))
    grid, low, high = pc.curve_band(y, smooth, "roc", n_boot=50)
    fpr, tpr, _ = pc.roc_curve(y, smooth)
    assert np.all(low <= high + 1e-12)
    assert pc.tied_fraction(saturated) > 0.9 and pc.tied_fraction(smooth) == 0.0
    fig = pc.plot_roc_pr_panel({"MI": {"imn": (y, saturated), "cnn2d": (y, smooth)}}, n_boot=50)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "n = 42 ECGs, 12 positive" in texts and "* scores tied" in texts
    roc = fig.axes[0]
    labels = [t.get_text() for t in roc.get_legend().get_texts()]
    assert labels[0].endswith("*") and not labels[1].endswith("*")
    for line in roc.lines[:2]:
        assert mcolors.to_hex(line.get_color()) == mcolors.to_hex(style.model_style(line.get_gid())["color"])
    pa.save_figure(fig, tmp_path / "roc_pr")


def test_deletion_auc_distribution_draws_the_random_median_as_reference(tmp_path):
    from imn.plots.summary import curve_aucs, plot_deletion_auc_distributions

    curves = np.tile(np.linspace(1, 0, 11), (4, 1)) * np.array([[1.0], [0.5], [0.8], [0.2]])
    aucs = curve_aucs(curves)
    np.testing.assert_allclose(aucs, [0.5, 0.25, 0.4, 0.1])
    fig = plot_deletion_auc_distributions({"imn": {"imn": aucs / 2, "random": aucs}})
    reference = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(reference) == 1 and reference[0].get_ydata()[0] == pytest.approx(np.median(aucs))
    pa.save_figure(fig, tmp_path / "auc")


def test_cost_vs_faithfulness_colours_points_by_method(tmp_path):
    from imn.plots.summary import plot_cost_vs_faithfulness

    points = [{"model": "imn", "method": "imn", "ms_per_ecg": 2.0, "deletion_auc": 0.1},
              {"model": "cnn2d", "method": "gradcam", "ms_per_ecg": 20.0, "deletion_auc": 0.5},
              {"model": "cnn2d", "method": "kernel_shap", "ms_per_ecg": float("nan"),
               "deletion_auc": 0.4}]
    fig = plot_cost_vs_faithfulness(points, device="cpu: test")
    ax = fig.axes[0]
    drawn = [(line.get_xdata()[0], mcolors.to_hex(line.get_color())) for line in ax.lines]
    assert drawn == [(2.0, mcolors.to_hex(style.method_style("imn")["color"])),
                     (20.0, mcolors.to_hex(style.method_style("gradcam")["color"]))]
    assert ax.get_xscale() == "log" and "ms per ECG" in ax.get_xlabel()
    pa.save_figure(fig, tmp_path / "cost")


def test_training_curves_mark_the_best_validation_epoch(tmp_path):
    from imn.plots.summary import plot_training_curves

    history = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_macro_auroc": v}
               for e, v in enumerate([0.6, 0.8, 0.7])]
    fig = plot_training_curves({"imn": history})
    star = [line for line in fig.axes[1].lines if line.get_marker() == "*"]
    assert len(star) == 1 and star[0].get_xdata()[0] == 2  # epoch 1 is shown as epoch 2
    pa.save_figure(fig, tmp_path / "training")


def test_training_curves_show_one_fit_models_as_a_level_and_every_model_in_the_legend(tmp_path):
    from imn.plots.summary import plot_training_curves

    history = [{"epoch": e, "train_loss": 40.0 / (e + 1) ** 3, "val_macro_auroc": 0.6 + 0.05 * e}
               for e in range(4)]
    one_fit = [{"epoch": 0, "val_macro_auroc": 0.83, "fit_seconds": 3.0}]  # baselines.tabular
    models = ["imn", "imn_stable", "cnn2d", "inception1d", "resnet1d_wang", "xecgnet"]
    fig = plot_training_curves({**{m: history for m in models}, "xgboost": one_fit})
    loss_ax, auc_ax = fig.axes
    assert loss_ax.get_yscale() == "log"  # a loss falling from 40 stays readable
    assert len(loss_ax.lines) == len(models), "a model fitted once has no loss curve"
    level = [line for line in auc_ax.lines if list(line.get_ydata()) == [0.83, 0.83]]
    assert len(level) == 1
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert len(labels) == len(models) + 1 and labels[-1] == "XGBoost (features, one fit)"
    pa.save_figure(fig, tmp_path / "training")
    # The legend's rows fit inside the figure (they were cut off below it).
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height


def test_sanity_cascade_keeps_the_trained_and_fully_random_columns(planted, tmp_path):
    from imn.plots.internals import cascade_columns, plot_sanity_cascade

    stages = ["original"] + [f"layer{i}" for i in range(9)]
    assert cascade_columns(stages)[0] == "original" and cascade_columns(stages)[-1] == "layer8"
    assert len(cascade_columns(stages)) == 6
    signal, _, attribution = planted
    rng = np.random.default_rng(0)
    cascades = {"saliency": {s: attribution + 0.1 * i * rng.normal(size=attribution.shape)
                             for i, s in enumerate(stages)}}
    correlations = {"saliency": {s: 1.0 - 0.1 * i for i, s in enumerate(stages)}}
    fig = plot_sanity_cascade(cascades, correlations, FS, title="sanity")
    curve = [ax for ax in fig.axes if ax.lines][-1].lines[0]
    np.testing.assert_allclose(curve.get_ydata(), [1.0 - 0.1 * i for i in range(10)])
    assert mcolors.to_hex(curve.get_color()) == mcolors.to_hex(style.method_style("saliency")["color"])
    pa.save_figure(fig, tmp_path / "sanity")


def test_beat_average_aligns_on_r_peaks(tmp_path):
    from imn.plots.internals import beat_average, plot_beat_average, r_peaks

    x = np.zeros((1, 1000, NUM_LEADS))
    peaks = np.arange(100, 1000, 80)
    x[0, peaks] = 1.0  # one spike per beat on every lead
    np.testing.assert_array_equal(r_peaks(x[0], FS), peaks)
    attribution = x.copy()
    beat, mean_map, beats = beat_average(x, attribution, FS, before_s=0.25, after_s=0.45)
    assert beats == len(peaks) - 1  # the last beat is too close to the end
    assert beat[25, 0] == pytest.approx(1.0) and mean_map[25, 0] == pytest.approx(1.0)
    fig = plot_beat_average({"MI": (beat, mean_map, beats, 1)}, FS, title="beats")
    pa.save_figure(fig, tmp_path / "beats")


def test_imn_weights_figure_shows_w_next_to_w_times_x(planted, tmp_path):
    from imn.plots.internals import plot_imn_weights

    signal, _, attribution = planted
    fig = plot_imn_weights(signal, signal, attribution + 0.1, FS, title="W")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["W (generated weights)", "W \u00b7 x (contribution to the logit)"]
    pa.save_figure(fig, tmp_path / "weights")


def test_a_flat_perturbation_curve_gets_no_auc_and_a_note():
    """A saturated model's insertion curves stay at 1: the legend says 'flat' instead of an
    AUC of 1.000, and the panel says why."""
    rising = np.tile(np.linspace(0.1, 1.0, 6), (4, 1))
    fig = pc.plot_perturbation_curves({"imn": np.full((4, 6), 0.99999), "saliency": rising},
                                      kind="insertion")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "IMN (W\u00b7x) (flat)" and labels[1].startswith("Saliency (AUC ")
    assert any("saturated" in t.get_text() for t in ax.texts)
    plt.close(fig)
