"""Attribution and curve figures: every figure renders (PDF + 300 dpi PNG at its designed size,
fonts >= 6 pt), and the numeric helpers behind them agree with hand computations."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from imn.data.dataset import LEADS, NUM_LEADS  # noqa: E402
from imn.data.synthetic import make_synthetic  # noqa: E402
from imn.plots import attribution as pa  # noqa: E402
from imn.plots import curves as pc  # noqa: E402

FS = 100


@pytest.fixture(scope="module")
def ecg() -> tuple[np.ndarray, np.ndarray]:
    """One 10 s synthetic ECG at 100 Hz and a signed attribution with two planted blocks."""
    signal = make_synthetic(1, FS, seed=0).signals[0].astype(np.float64)
    rng = np.random.default_rng(0)
    attribution = np.gradient(signal, axis=0) + 0.01 * rng.standard_normal(signal.shape)
    attribution[300:350, LEADS.index("V2")] += 2.0
    attribution[600:650, LEADS.index("II")] -= 2.0
    return signal, attribution


def _check_fonts(fig: plt.Figure) -> None:
    fig.canvas.draw()  # materialise tick labels
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    assert sizes and min(sizes) >= pa.MIN_FONT_PT


def _render(fig: plt.Figure, stem: Path) -> list[Path]:
    """Check fonts, save, and check both files and the PNG's 300 dpi pixel size."""
    _check_fonts(fig)
    width_in, height_in = fig.get_size_inches()
    paths = pa.save_figure(fig, stem)
    assert [p.suffix for p in paths] == [".pdf", ".png"]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
    assert paths[0].read_bytes()[:5] == b"%PDF-"
    rows, cols = mpimg.imread(paths[1]).shape[:2]
    assert (rows, cols) == (int(height_in * pa.DPI), int(width_in * pa.DPI))
    assert not plt.fignum_exists(fig.number)  # save_figure closes it
    return paths


# ----------------------------------------------------------------------------- saving


def test_save_figure_writes_pdf_and_png_at_300_dpi(tmp_path: Path) -> None:
    """An 88 x 50 mm figure gives a 1039 x 590 px PNG (Agg truncates 1039.4 x 590.6); a .png
    suffix on the stem is dropped."""
    fig = plt.figure(figsize=(88 / 25.4, 50 / 25.4))
    paths = pa.save_figure(fig, tmp_path / "sub" / "fig.png")
    assert paths == [tmp_path / "sub" / "fig.pdf", tmp_path / "sub" / "fig.png"]
    assert mpimg.imread(paths[1]).shape[:2] == (590, 1039)


def test_redrawing_a_figure_gives_the_same_files(tmp_path: Path) -> None:
    """No creation date or other run-dependent bytes: an unchanged figure redrawn into
    results/ leaves the committed PDF and PNG as they were."""
    def draw(stem):
        fig = plt.figure(figsize=(88 / 25.4, 50 / 25.4))
        fig.add_subplot().plot([0, 1, 3], [1, 0, 2], label="a line")
        return pa.save_figure(fig, stem)

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert b"/CreationDate" not in first[0].read_bytes()  # it changes every second otherwise
    for one, two in zip(first, second):
        assert one.read_bytes() == two.read_bytes(), one.suffix


# ----------------------------------------------------------------------------- ECG views


@pytest.mark.parametrize("layout", ["4x3+rhythm", "6x2"])
def test_attribution_ecg_renders(ecg, tmp_path: Path, layout: str) -> None:
    """Both layouts save at the double-column width (180 mm) with a colourbar."""
    signal, attribution = ecg
    fig = pa.plot_attribution_ecg(signal, attribution, FS, layout=layout, title="IG, STE")
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(pa.DOUBLE_COLUMN_MM)
    _render(fig, tmp_path / f"ecg_{layout}")


def test_attribution_ecg_keeps_the_paper_isotropic_and_1_to_1_when_asked(ecg) -> None:
    """mm per data unit is the same on both axes; width_mm=None gives exactly 1 mm per mm."""
    signal, attribution = ecg
    # 250 mm of paper plus the 10 mm calibration margin.
    for width_mm, expected in ((180.0, 180.0 / 260.0), (None, 1.0)):
        fig = pa.plot_attribution_ecg(signal, attribution, FS, width_mm=width_mm)
        ax = fig.axes[0]
        box = ax.get_position()
        w_mm, h_mm = fig.get_size_inches() * 25.4
        x_scale = box.width * w_mm / np.ptp(ax.get_xlim())
        y_scale = box.height * h_mm / np.ptp(ax.get_ylim())
        assert x_scale == pytest.approx(expected) and y_scale == pytest.approx(expected)
        plt.close(fig)


def test_4x3_layout_gives_each_column_its_own_quarter_and_a_rhythm_strip() -> None:
    """I/II/III show 0-2.5 s, aVR.. 2.5-5 s, V1.. 5-7.5 s, V4.. 7.5-10 s; rhythm II 0-10 s."""
    panels, width, height = pa.layout_panels("4x3+rhythm", 1000, FS, rhythm_lead="II")
    assert (width, height) == (250.0, 120.0)
    windows = {(LEADS[p.lead], p.start, p.stop) for p in panels[:-1]}
    for c, group in enumerate((("I", "II", "III"), ("aVR", "aVL", "aVF"),
                               ("V1", "V2", "V3"), ("V4", "V5", "V6"))):
        assert {(name, 250 * c, 250 * (c + 1)) for name in group} <= windows
    rhythm = panels[-1]
    assert (LEADS[rhythm.lead], rhythm.start, rhythm.stop, rhythm.x0) == ("II", 0, 1000, 0.0)
    assert len(panels) == 13


def test_methods_side_by_side_renders_one_column_per_method(ecg, tmp_path: Path) -> None:
    """Three methods -> three paper axes titled by method; 'all' leads also works."""
    signal, attribution = ecg
    methods = {"IG": attribution, "Saliency": np.abs(attribution), "SHAP": -attribution}
    fig = pa.plot_methods_side_by_side(signal, methods, FS)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list(methods)
    _render(fig, tmp_path / "methods")
    plt.close(pa.plot_methods_side_by_side(signal, methods, FS, leads="all",
                                           time_window=(2.0, 4.5)))


def test_methods_side_by_side_wraps_into_rows_of_at_most_columns(ecg, tmp_path: Path) -> None:
    """Eight methods with columns=4: two rows of four panels, same width, in order."""
    signal, attribution = ecg
    methods = {f"m{i}": attribution * (i + 1) for i in range(8)}
    fig = pa.plot_methods_side_by_side(signal, methods, FS, columns=4)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == list(methods)
    boxes = [ax.get_position() for ax in axes]
    assert len({round(b.x0, 6) for b in boxes}) == 4 and len({round(b.y0, 6) for b in boxes}) == 2
    assert boxes[0].y0 > boxes[4].y0 and abs(boxes[0].x0 - boxes[4].x0) < 1e-9  # row 2 below row 1
    # The outer panels keep a margin from the page edges (their frames were half cut off).
    assert min(b.x0 for b in boxes) > 0 and max(b.x1 for b in boxes) < 1
    _render(fig, tmp_path / "methods_grid")
    with pytest.raises(ValueError, match="columns"):
        pa.plot_methods_side_by_side(signal, methods, FS, columns=0)


def test_lead_focus_renders(ecg, tmp_path: Path) -> None:
    """The focus view has the paper axes and an attribution axes on the same time axis: the
    paper's time 0 (after the calibration margin) and 10 s land where the lower axes' do."""
    signal, attribution = ecg
    fig = pa.plot_lead_focus(signal, attribution, FS, lead="V2", title="V2")
    paper, attr = fig.axes[0], fig.axes[1]
    fig.canvas.draw()
    for seconds in (0.0, 10.0):
        paper_x = paper.transData.transform((seconds * pa.PAPER_SPEED_MM_PER_S, 0))[0]
        attr_x = attr.transData.transform((seconds, 0))[0]
        assert paper_x == pytest.approx(attr_x, abs=0.5)
    assert attr.get_xlim() == (0.0, 10.0) and paper.get_xlim() == (-pa.CALIBRATION_MM, 250.0)
    assert "ECG" in attr.get_ylabel()  # the unit of the lower axis is stated
    _render(fig, tmp_path / "focus")


# ----------------------------------------------------------------------------- segments


def test_segment_heatmap_equals_a_plain_loop_over_windows() -> None:
    """0.5 s windows at 50% overlap: starts every 0.25 s, only windows inside the record."""
    rng = np.random.default_rng(1)
    attribution = rng.standard_normal((1000, NUM_LEADS))
    values, starts_s = pa.segment_heatmap(attribution, FS)
    expected_starts = list(range(0, 1000 - 50 + 1, 25))
    assert starts_s.tolist() == [s / FS for s in expected_starts]
    assert values.shape == (NUM_LEADS, len(expected_starts)) == (12, 39)
    loop = np.array([[np.mean(np.abs(attribution[s:s + 50, lead])) for s in expected_starts]
                     for lead in range(NUM_LEADS)])
    np.testing.assert_allclose(values, loop, rtol=1e-10, atol=1e-12)


def test_segment_heatmap_renders(ecg, tmp_path: Path) -> None:
    _, attribution = ecg
    _render(pa.plot_segment_heatmap(attribution, FS, title="segments"), tmp_path / "segments")


def test_top_k_segments_returns_the_planted_windows_with_their_signs() -> None:
    """+1 over 1.0-1.5 s and -2 over 3.0-3.5 s in V1 (both on the window grid): with k=3 the
    two blocks come back, the larger |sum| first, and nothing else (other windows that do
    not overlap them sum to zero). Other leads are all zero: no windows."""
    attribution = np.zeros((1000, NUM_LEADS))
    v1 = LEADS.index("V1")
    attribution[100:150, v1] = 1.0
    attribution[300:350, v1] = -2.0
    segments = pa.top_k_segments(attribution, FS, k=3)
    assert len(segments) == NUM_LEADS
    assert segments[v1] == [(3.0, 3.5, pytest.approx(-100.0)), (1.0, 1.5, pytest.approx(50.0))]
    assert all(segments[i] == [] for i in range(NUM_LEADS) if i != v1)


def test_top_k_segments_are_disjoint_and_ranked() -> None:
    """On noise: k windows per lead, pairwise non-overlapping, |sum| decreasing, sums exact."""
    rng = np.random.default_rng(2)
    attribution = rng.standard_normal((1000, NUM_LEADS))
    for lead, segments in enumerate(pa.top_k_segments(attribution, FS, k=4)):
        assert len(segments) == 4
        for i, (s, e, v) in enumerate(segments):
            a, b = int(round(s * FS)), int(round(e * FS))
            assert b - a == 50 and v == pytest.approx(attribution[a:b, lead].sum())
            for s2, e2, _ in segments[i + 1:]:
                assert e <= s2 or e2 <= s
        sums = [abs(v) for _, _, v in segments]
        assert sums == sorted(sums, reverse=True)


def test_plot_top_segments_draws_red_and_blue_boxes(ecg, tmp_path: Path) -> None:
    """One box per selected segment (chosen within the 5 s each lead is shown in '6x2'); red
    where the sum is positive, blue where negative; every box lies inside its panel."""
    signal, attribution = ecg
    segments = pa.visible_top_k_segments(attribution, FS, "6x2", k=2)
    fig = pa.plot_top_segments(signal, attribution, FS, k=2, title="top 2")
    boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    for lead, lead_segments in enumerate(segments):
        start, stop = (0.0, 5.0) if lead < 6 else (5.0, 10.0)
        assert all(start <= s and e <= stop for s, e, _ in lead_segments)
    colours = [matplotlib.colors.to_hex(b.get_edgecolor()) for b in boxes]
    expected = [pa.POSITIVE_COLOR if v > 0 else pa.NEGATIVE_COLOR
                for lead in segments for _, _, v in lead]
    assert sorted(colours) == sorted(expected)
    assert pa.POSITIVE_COLOR in colours and pa.NEGATIVE_COLOR in colours
    _render(fig, tmp_path / "top")


# ----------------------------------------------------------------------------- ECG-XPLAIM


def test_abnormal_spans_returns_the_planted_span() -> None:
    """-1 on 2.0-2.6 s of aVL (60 samples) and 0.1 on 5.0-5.5 s of V4 (50), zeros elsewhere.
    Without smoothing: q0.9 of the 12 000 values is 0, so both blocks are spans; q0.995 lies
    between 0.1 and 1 (the 61st largest value is 0.1), so only aVL's block is. With the
    default 40 ms (4-sample) smoother the span moves by at most the smoother's reach."""
    attribution = np.zeros((1000, NUM_LEADS))
    avl, v4 = LEADS.index("aVL"), LEADS.index("V4")
    attribution[200:260, avl] = -1.0
    attribution[500:550, v4] = 0.1
    both = pa.abnormal_spans(attribution, FS, quantile=0.9, smooth_s=0.0)
    assert both[avl] == [(2.0, 2.6)] and both[v4] == [(5.0, 5.5)]
    exact = pa.abnormal_spans(attribution, FS, quantile=0.995, smooth_s=0.0)
    assert exact[avl] == [(2.0, 2.6)]
    assert all(exact[i] == [] for i in range(NUM_LEADS) if i != avl)
    smoothed = pa.abnormal_spans(attribution, FS, quantile=0.995)
    (start, end), = smoothed[avl]
    assert abs(start - 2.0) <= 0.03 and abs(end - 2.6) <= 0.03
    assert all(smoothed[i] == [] for i in range(NUM_LEADS) if i != avl)
    assert pa.abnormal_spans(np.zeros((1000, NUM_LEADS)), FS) == [[]] * NUM_LEADS


def test_xplaim_views_write_four_figures(ecg, tmp_path: Path) -> None:
    """Quick, fine, heatmap and lead views: 8 files at their designed sizes; the fine plot
    boxes the k strongest abnormal spans as thin outlines; the quick plot keeps the sign."""
    signal, attribution = ecg
    figures = pa.xplaim_figures(signal, attribution, FS, lead="V2", k=4)
    assert list(figures) == ["quick", "fine", "heatmap", "lead"]
    boxes = [p for p in figures["fine"].axes[0].patches if isinstance(p, Rectangle)]
    assert len(boxes) == 4 and all(b.get_linewidth() < 1.0 and not b.get_fill() for b in boxes)
    quick = figures["quick"].axes[0].images[0]
    assert quick.norm.vmin == -1.0 and quick.norm.vmax == 1.0  # signed, centred at 0
    heatmap = figures["heatmap"].axes[0]
    assert len(heatmap.lines) == NUM_LEADS  # the waveforms are drawn over the heatmap
    sizes = []
    for fig in figures.values():
        _check_fonts(fig)
        sizes.append(tuple(int(x * pa.DPI) for x in fig.get_size_inches()[::-1]))
        plt.close(fig)
    paths = pa.plot_xplaim_views(signal, attribution, FS, lead="V2", out_stem=tmp_path / "x")
    assert [p.name for p in paths] == [f"x_{v}.{ext}" for v in ("quick", "fine", "heatmap", "lead")
                                       for ext in ("pdf", "png")]
    assert all(p.stat().st_size > 0 for p in paths)
    assert all(p.read_bytes()[:5] == b"%PDF-" for p in paths[0::2])
    assert [mpimg.imread(p).shape[:2] for p in paths[1::2]] == sizes


# ----------------------------------------------------------------------------- curves


def _perturbation_curves(rng: np.random.Generator, n: int = 40) -> dict[str, np.ndarray]:
    x = np.linspace(0, 1, 11)
    return {"IG": np.exp(-4 * x) * rng.uniform(0.6, 1, (n, 1)),
            "Random": (1 - x) * rng.uniform(0.6, 1, (n, 1))}


def test_bootstrap_band_brackets_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(4)
    curves = rng.uniform(0, 1, (200, 11))
    mean, low, high = pc.bootstrap_band(curves, n_boot=500)
    np.testing.assert_allclose(mean, curves.mean(0))
    assert np.all(low <= mean) and np.all(mean <= high)
    # Half-width ~ 1.96 * SE for a mean of uniforms (SD 0.289, n = 200): about 0.04.
    assert np.all((high - low) / 2 < 0.06) and np.all((high - low) / 2 > 0.025)
    single = pc.bootstrap_band(curves[:1])
    assert all(np.array_equal(part, curves[0]) for part in single)


def test_perturbation_curves_render_with_auc_in_legend(tmp_path: Path) -> None:
    """The legend's AUC is the trapezoid of the mean curve."""
    curves = _perturbation_curves(np.random.default_rng(5))
    fig = pc.plot_perturbation_curves(curves, kind="deletion", title="deletion")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    x = np.linspace(0, 1, 11)
    for label, (name, c) in zip(labels, curves.items()):
        assert label == f"{name} (AUC {np.trapezoid(c.mean(0), x):.3f})"
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(pc.SINGLE_COLUMN_MM)
    _render(fig, tmp_path / "deletion")


def test_deletion_insertion_renders_two_panels(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    deletion = _perturbation_curves(rng)
    insertion = {k: 1 - v for k, v in deletion.items()}
    fig = pc.plot_deletion_insertion(deletion, insertion)
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["Deletion", "Insertion"]
    _render(fig, tmp_path / "delins")


def test_roc_curve_matches_hand_computation_and_sklearn() -> None:
    """y = [0, 0, 1, 1], scores [.1, .4, .35, .8]: AUROC 0.75; ties as in scikit-learn."""
    fpr, tpr, thr = pc.roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert pc.trapezoid_auc(fpr, tpr) == pytest.approx(0.75)
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    scores = np.round(y + rng.normal(0, 1, 300), 1)  # rounding makes ties
    fpr, tpr, thr = pc.roc_curve(y, scores)
    ref_fpr, ref_tpr, ref_thr = metrics.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thr[1:], ref_thr[1:])
    assert pc.trapezoid_auc(fpr, tpr) == pytest.approx(metrics.roc_auc_score(y, scores))


def test_plot_roc_curves_renders_with_auroc_in_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    curves = {"IMN": (y, y + rng.normal(0, 0.7, 200)), "ResNet": (y, y + rng.normal(0, 1, 200))}
    fig = pc.plot_roc_curves(curves, title="STE")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for label, (name, (yt, s)) in zip(labels, curves.items()):
        fpr, tpr, _ = pc.roc_curve(yt, s)
        assert label == f"{name} ({pc.trapezoid_auc(fpr, tpr):.3f})"
    assert labels[-1] == "chance (0.500)"
    _render(fig, tmp_path / "roc")


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, a: pa.plot_attribution_ecg(s[:, :11], a[:, :11], FS), r"shape \(L, 12\)"),
        (lambda s, a: pa.plot_attribution_ecg(s, a[:500], FS), "differs from the signal"),
        (lambda s, a: pa.plot_attribution_ecg(s, a, FS, layout="3x4"), "unknown layout"),
        (lambda s, a: pa.plot_attribution_ecg(s, a, FS, rhythm_lead="V7"), "unknown lead"),
        (lambda s, a: pa.plot_attribution_ecg(s, a, 0), "sampling_rate"),
        (lambda s, a: pa.plot_lead_focus(s, a, FS, lead="aVX"), "unknown lead"),
        (lambda s, a: pa.plot_methods_side_by_side(s, {"IG": a[:, :3]}, FS), "IG"),
        (lambda s, a: pa.plot_methods_side_by_side(s, {}, FS), "at least one method"),
        (lambda s, a: pa.plot_methods_side_by_side(s, {"IG": a}, FS, leads=["II", "X"]),
         "unknown lead"),
        (lambda s, a: pa.plot_methods_side_by_side(s, {"IG": a}, FS, time_window=(8, 12)),
         "time_window"),
        (lambda s, a: pa.segment_heatmap(a, FS, window_s=20.0), "longer than the record"),
        (lambda s, a: pa.segment_heatmap(a, FS, overlap=1.0), "overlap"),
        (lambda s, a: pa.segment_heatmap(a.T, FS), r"shape \(L, 12\)"),
        (lambda s, a: pa.top_k_segments(a, FS, k=0), "k must be"),
        (lambda s, a: pa.abnormal_spans(a, FS, quantile=1.5), "quantile"),
        (lambda s, a: pa.plot_xplaim_views(s, a, FS, lead="V9", out_stem="/tmp/never"),
         "unknown lead"),
        (lambda s, a: pc.plot_perturbation_curves({"IG": np.ones((3, 5))}, kind="both"),
         "unknown kind"),
        (lambda s, a: pc.plot_perturbation_curves({"IG": np.ones((3, 5, 2))}), "steps"),
        (lambda s, a: pc.roc_curve(np.ones(5), np.arange(5.0)), "both classes"),
        (lambda s, a: pc.roc_curve(np.array([0, 2, 1]), np.arange(3.0)), "0/1"),
    ],
)
def test_bad_inputs_raise_value_error(ecg, call, match: str) -> None:
    signal, attribution = ecg
    with pytest.raises(ValueError, match=match):
        call(signal, attribution)
    plt.close("all")
