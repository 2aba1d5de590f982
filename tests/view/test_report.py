"""`imn view` on a tiny trained and explained synthetic run: what the page holds, checked
against the run's own files and data, and the page itself in a real (headless) Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from imn.cli import main
from imn.view import encode

# Every test but one shares a trained and explained run (about a minute on the 2-core CPU).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KEPT = 3  # ECGs with every method (attributions_test.npz); more have IMN only


@pytest.fixture(scope="module")
def explained_run(tmp_path_factory):
    """A tiny IMN on synthetic data, explained by three methods on KEPT ECGs (with curves)
    and by IMN alone on KEPT + 2 ECGs (imn explain's file)."""
    from imn.explain.run import explain_run, faithfulness_run
    from imn.train.config import load_config
    from imn.train.trainer import train_and_evaluate

    workdir = tmp_path_factory.mktemp("view-run")
    config = load_config(f"{REPO / 'configs/imn.py'}:tiny", ["data.source=synthetic"])
    train_and_evaluate(config, workdir)
    faithfulness_run(workdir, ["imn", "saliency", "random"], "test", KEPT, keep_attributions=KEPT,
                     steps=5, correlation_runs=4, infidelity_perturbations=2, sensitivity_samples=0,
                     randomization=False, targets="evidence")
    explain_run(workdir, "imn", "test", KEPT + 2, targets="evidence")
    return workdir


@pytest.fixture(scope="module")
def report(explained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "report.html"
    assert main(["view", "--workdir", str(explained_run), "--out", str(out)]) == 0
    text = out.read_text()
    match = re.search(r'<script type="application/json" id="imn-data">(.*?)</script>', text, re.S)
    return out, json.loads(match.group(1).replace("<\\/", "</")), text


def test_page_is_self_contained(report):
    _, _, text = report
    # plotly.js is inline; nothing is loaded from a network or another file.
    assert "Plotly" in text and len(text) > 3_000_000
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=|<img[^>]+src="?http', text)


def test_page_holds_every_explained_ecg_with_labels_from_the_run(report, explained_run):
    _, payload, _ = report
    (run,) = payload["runs"]
    predictions = np.load(explained_run / "predictions_test.npz")
    kept = np.load(explained_run / "attributions_test.npz")
    alone = np.load(explained_run / "attributions_imn_test.npz")
    assert [e["id"] for e in run["ecgs"]] == [int(i) for i in alone["ecg_ids"]]
    classes = [str(c) for c in predictions["classes"]]
    for index, ecg in enumerate(run["ecgs"]):
        row = list(predictions["ecg_ids"]).index(ecg["id"])
        scores = predictions["scores"][row]
        assert ecg["predicted"] == classes[int(scores.argmax())]
        assert ecg["p_predicted"] == pytest.approx(float(scores.max()))
        target = int(alone["targets"][index])
        assert ecg["explained"] == classes[target] and ecg["p_explained"] == pytest.approx(float(scores[target]))
        assert ecg["true"] == ", ".join(c for c, flag in zip(classes, predictions["labels"][row]) if flag > 0)
        # Every method explained for this ECG, and only those.
        expected = {"imn", "saliency", "random"} if index < KEPT else {"imn"}
        assert set(ecg["maps"]) == expected
        assert (set(ecg["curves"]) == expected) == (index < KEPT)
    assert run["methods"]["imn"]["kind"] == "signed" and run["units"] == "mV"
    # The decoded IMN map is the saved one within the stated quantisation bound.
    saved = kept["attribution_imn"][0].astype(np.float64)
    decoded = encode.mulaw_decode(np.frombuffer(base64.b64decode(run["ecgs"][0]["maps"]["imn"]["q"]), np.int8)
                                  .reshape(saved.shape), run["ecgs"][0]["maps"]["imn"]["peak"])
    peak = np.abs(saved).max()
    assert np.all(np.abs(decoded - saved) <= encode.MULAW_RELATIVE_ERROR * (np.abs(saved) + peak / encode.MU) + 1e-12)


def test_signals_are_the_runs_records_in_millivolts_with_planted_masks(report, explained_run):
    from imn.train.config import TrainConfig
    from imn.train.data import load_dataset

    _, payload, _ = report
    config = TrainConfig.from_json((explained_run / "config.json").read_text())
    dataset, _ = load_dataset(config.data, seed=config.seed)
    ecg = payload["runs"][0]["ecgs"][0]
    row = list(dataset.ecg_ids).index(ecg["id"])
    signal = np.frombuffer(base64.b64decode(ecg["signal"]), "<i2").reshape(-1, 12) / 1000
    np.testing.assert_allclose(signal, dataset.signals[row], atol=6e-4)
    # targets="evidence": the explained class has a local planted mask, drawn per lead.
    target = payload["runs"][0]["classes"].index(ecg["explained"])
    mask = dataset.evidence[row, target]
    assert ecg["mask"] == encode.spans_seconds(mask, config.data.sampling_rate) and any(ecg["mask"])


def test_without_the_runs_data_the_page_shows_the_normalised_inputs_and_says_so(explained_run, tmp_path):
    from imn.view.collect import read_run

    view = read_run(explained_run, data=f"synthetic:{tmp_path / 'moved'}")
    assert view.units == "normalised" and "could not be read" in view.units_note
    kept = np.load(explained_run / "attributions_imn_test.npz")
    np.testing.assert_array_equal(view.ecgs[0].signal, kept["x"][0])


def test_view_of_a_folder_without_explanations_is_a_clear_error(tmp_path, capsys):
    assert main(["view", "--workdir", str(tmp_path)]) == 2
    assert "no run folder with explained ECGs" in capsys.readouterr().err


# ------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser, found before the module's run is trained (so a skip costs nothing)."""
    from imn.view.chromium import INSTALL_HINT, find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the browser test, but there is no Chromium on PATH; {INSTALL_HINT}")
        pytest.skip(f"the browser test needs Chromium; {INSTALL_HINT}")
    return binary


LEAD_TRACES = "document.querySelectorAll('#leads g.trace.scatter').length"
SWITCHER = "Array.from(document.querySelectorAll('#method-switcher input[type=radio]')).map(i => i.value)"


def _choose(page, expression: str, method: str | None = None, ecg: int | None = None) -> None:
    """Change a control as a reader would and wait for the page to redraw."""
    page.evaluate(expression)
    if method is not None:
        page.wait_for(f"document.body.dataset.method === '{method}'")
    if ecg is not None:
        page.wait_for(f"document.body.dataset.ecg === '{ecg}'")


def test_page_renders_in_chromium_without_errors(chromium, report, tmp_path):
    from imn.view.chromium import HeadlessPage

    out, payload, _ = report
    ecgs = payload["runs"][0]["ecgs"]
    with HeadlessPage(width=1400, height=900, binary=chromium) as page:
        page.open(out, "document.body.dataset.ready === '1'")
        first_render_ms = int(page.evaluate("document.body.dataset.firstRenderMs"))
        # IMN opens with W beside W * x: 12 leads in each of two columns.
        assert page.evaluate("document.body.dataset.method") == "imn"
        assert page.evaluate(LEAD_TRACES) == 24
        assert page.evaluate(SWITCHER) == list(ecgs[0]["maps"])
        assert page.evaluate("document.querySelectorAll('#curves g.trace.scatter').length") == 4
        # One lead-resolved overlay per lead, and the mask drawn.
        assert page.evaluate("document.querySelectorAll('#leads g.hm').length") == 24
        mask_shapes = ("Array.from(document.querySelectorAll('#leads .shapelayer path'))"
                       ".filter(p => p.style.fill.replace(/ /g, '') === 'rgb(0,158,115)').length")
        assert page.evaluate(mask_shapes) == sum(len(spans) for spans in ecgs[0]["mask"])
        # The page decodes what Python encoded: lead II's hover values are the IMN map's.
        hover = np.array(page.evaluate(
            "document.getElementById('leads').data.find(t => t.meta && t.meta.role === 'lead' && t.meta.lead === 1).customdata"))
        codes = np.frombuffer(base64.b64decode(ecgs[0]["maps"]["imn"]["q"]), np.int8).reshape(-1, 12)
        np.testing.assert_allclose(hover, encode.mulaw_decode(codes, ecgs[0]["maps"]["imn"]["peak"])[:, 1], rtol=1e-9)

        _choose(page, "document.querySelector('#method-switcher input[value=saliency]').click()", method="saliency")
        assert page.evaluate(LEAD_TRACES) == 12
        # Zoom on one lead: every lead follows (linked x axes).
        page.evaluate("Plotly.relayout('leads', {'xaxis3.range': [2, 3]}).then(() => true)")
        ranges = page.evaluate("Object.entries(document.getElementById('leads')._fullLayout)"
                               ".filter(([k]) => /^xaxis\\d*$/.test(k)).map(([, a]) => a.range)")
        assert len(ranges) == 12 and all(r == pytest.approx([2, 3]) for r in ranges)
        page.screenshot(tmp_path / "saliency.png")

        last = len(ecgs) - 1
        _choose(page, f"(s => {{ s.value = '{last}'; s.dispatchEvent(new Event('change')); }})"
                      "(document.getElementById('ecg-select'))", ecg=ecgs[last]["id"])
        assert page.evaluate(SWITCHER) == ["imn"]
        assert page.evaluate("document.body.dataset.method") == "imn"
        shot = page.screenshot(tmp_path / "report.png")
        errors, requests = page.errors, page.requests
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("IMN_SCREENSHOT_DIR")
    if keep:
        for name in ("saliency.png", "report.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)
    print(f"first render {first_render_ms} ms; screenshots in {tmp_path}")


def test_readme_screenshot_script_shows_the_ecg_asked_for(chromium, report, tmp_path, capsys):
    """``docs/screenshot_viewer.py`` (the README's picture) selects the run and ECG it is
    given and writes the page's top as a PNG."""
    import importlib.util

    out, payload, _ = report
    run = payload["runs"][0]
    spec = importlib.util.spec_from_file_location(
        "screenshot_viewer", Path(__file__).parents[2] / "docs" / "screenshot_viewer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    last = run["ecgs"][-1]
    shot = tmp_path / "shot.png"
    assert module.main(["--report", str(out), "--model", run["name"], "--ecg-id", str(last["id"]),
                        "--out", str(shot), "--height", "700"]) == 0
    assert f"ECG {last['id']} " in capsys.readouterr().out
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    with pytest.raises(SystemExit, match="no run"):
        module.main(["--report", str(out), "--model", "no_such_model", "--out", str(shot)])
