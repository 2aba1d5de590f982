"""Tests of the MIMIC-IV-ECG reader: report labels (negation, hedges), signals, folds, bad input.

MIMIC-IV-ECG needs credentialed access, so the tests write a small tree in its layout with
wfdb: 8 studies of 4 subjects, fmt 16 at 200 adu/mV, 500 Hz, 5000 samples, leads in
MIMIC's header order (aVF before aVL). Tests that break files do so in a copy.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from imn.data import mimic
from imn.data.conform import resample, stable_fold
from imn.data.dataset import LEADS, EcgDataError
from imn.data.mimic import load_mimic, report_labels, report_text, xplaim_labels, xplaim_text

GAIN = 200.0  # adu per mV, as in MIMIC-IV-ECG headers
FS, SAMPLES = 500, 5000
MIMIC_NAMES = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]

# study_id -> (subject_id, report statements, labels for "rhythm_norm" with uncertain="negative")
STUDIES: dict[int, tuple[int, list[str], set[str]]] = {
    40689238: (10000032, ["Sinus rhythm", "Normal ECG"], {"norm"}),
    41000001: (10000032, ["Atrial fibrillation with rapid ventricular response",
                          "Left axis deviation", "Abnormal ECG"], {"afib"}),
    41000002: (10000032, ["Sinus rhythm", "No evidence of atrial fibrillation",
                          "Possible left atrial abnormality", "Borderline ECG"], set()),
    42000003: (10000764, ["Sinus bradycardia", "1st degree A-V block",
                          "Right bundle branch block", "Abnormal ECG"],
               {"bradsr", "avb1", "rbbb"}),
    42000004: (10000764, ["Sinus rhythm", "Cannot rule out atrial flutter",
                          "Incomplete right bundle branch block", "Borderline ECG"], set()),
    43000005: (11200000, ["Sinus tachycardia", "Premature ventricular contractions",
                          "Probable left ventricular hypertrophy", "Abnormal ECG"],
               {"tachsr", "pvc"}),
    43000006: (11200000, ["Ventricular paced rhythm", "Abnormal ECG"], {"pace"}),
    44000007: (19999987, ["Sinus rhythm with PACs", "Left bundle branch block",
                          "Abnormal ECG"], {"pac", "lbbb"}),
}


def record_path(subject: int, study: int) -> str:
    return f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"


def digital_signal(study: int) -> np.ndarray:
    """int64 (5000, 12) in MIMIC's lead order; each lead has its own offset so a wrong
    reordering shows."""
    rng = np.random.default_rng(study)
    t = np.arange(SAMPLES) / FS
    base = 150 * np.sin(2 * np.pi * 1.2 * t)[:, None] + rng.normal(0, 5, (SAMPLES, 12))
    return np.round(base + 25 * np.arange(12)[None, :]).astype(np.int64)


def expected_mv(study: int) -> np.ndarray:
    """float64 (5000, 12) physical values in ``LEADS`` order."""
    order = [MIMIC_NAMES.index(lead) for lead in LEADS]
    return digital_signal(study)[:, order] / GAIN


def write_record(root: Path, subject: int, study: int, digital: np.ndarray | None = None,
                 names: list[str] | None = None) -> Path:
    path = root / record_path(subject, study)
    path.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(str(study), FS, ["mV"] * 12, names or MIMIC_NAMES,
                d_signal=digital_signal(study) if digital is None else digital,
                fmt=["16"] * 12, adc_gain=[GAIN] * 12, baseline=[0] * 12,
                write_dir=str(path.parent))
    return path


def write_tables(root: Path, studies: dict = STUDIES, drop_from_measurements=()) -> None:
    with open(root / "record_list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subject_id", "study_id", "file_name", "ecg_time", "path"])
        # PhysioNet's file is ordered by subject; the reader sorts by study_id.
        for study, (subject, _, _) in sorted(studies.items(), key=lambda kv: kv[1][0]):
            writer.writerow([subject, study, study, "2180-07-23 08:44:00",
                             record_path(subject, study)])
    numeric = ["bandwidth", "filtering", "rr_interval", "p_onset", "p_end", "qrs_onset",
               "qrs_end", "t_end", "p_axis", "qrs_axis", "t_axis"]
    with open(root / "machine_measurements.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subject_id", "study_id", "cart_id", "ecg_time",
                         *mimic.REPORT_COLUMNS, *numeric])
        for study, (subject, reports, _) in studies.items():
            if study in drop_from_measurements:
                continue
            cells = reports + [""] * (18 - len(reports))
            writer.writerow([subject, study, 6848296, "2180-07-23 08:44:00", *cells,
                             "0.005-150 Hz", "60 Hz notch Baseline filter", 659, 40, 128,
                             170, 258, 518, 81, 77, 79])


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mimic-iv-ecg")
    for study, (subject, _, _) in STUDIES.items():
        write_record(root, subject, study)
    write_tables(root)
    return root


@pytest.fixture(scope="module")
def data100(tree):
    return load_mimic(tree, "rhythm_norm", 100)


@pytest.fixture()
def broken(tree, tmp_path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    return root


# ============================================================ report labels on their own
@pytest.mark.parametrize("text, labels", [
    ("sinus rhythm; normal ecg", {"norm"}),
    ("Sinus rhythm; Otherwise normal ECG", set()),          # "otherwise": something else found
    ("Normal ECG; Abnormal ECG", set()),
    ("Atrial fibrillation; Normal ECG", {"afib"}),          # norm only without other classes
    ("Atrial fibrillation with rapid ventricular response", {"afib"}),
    ("AFIB", {"afib"}),
    ("Atrial flutter with 2:1 A-V block", {"aflu", "avb2"}),
    ("Sinus rhythm with 1st degree A-V block", {"avb1"}),
    ("First degree AV block; prolonged PR interval", {"avb1"}),
    ("2nd degree A-V block, Mobitz I (Wenckebach)", {"avb2"}),
    ("Complete heart block", {"avb3"}),
    ("Incomplete right bundle branch block", set()),
    ("RBBB with left anterior fascicular block", {"rbbb", "lafb"}),
    ("Left bundle branch block; left posterior hemiblock", {"lbbb", "lpfb"}),
    ("Supraventricular tachycardia", {"svt"}),
    ("Ventricular tachycardia", {"vt"}),
    ("Sinus rhythm with PACs", {"pac"}),
    ("Atrial premature complexes; ventricular premature complexes", {"pac", "pvc"}),
    ("Ventricular paced rhythm", {"pace"}),                 # "paced" is not "PACs"
    ("Wandering atrial pacemaker", set()),                  # not electronic pacing
    ("Electronic pacemaker", {"pace"}),
    ("Wolff-Parkinson-White pattern", {"wpw"}),
    ("Prolonged QT interval", {"lqt"}),
    ("Sinus bradycardia; Sinus tachycardia", {"bradsr", "tachsr"}),
    # negation: before the finding, after it, and its scope
    ("No evidence of atrial fibrillation", set()),
    ("Sinus rhythm; no atrial fibrillation", set()),
    ("Atrial fibrillation is no longer present", set()),
    ("Atrial fibrillation has resolved", set()),
    ("No PVCs; atrial fibrillation", {"afib"}),             # negation ends with its clause
    ("no evidence of afib but atrial flutter", {"aflu"}),   # ... and at "but"
    ("Atrial fibrillation without PVCs", {"afib"}),         # cue after afib negates only PVCs
    ("no afib; atrial fibrillation", {"afib"}),             # one affirmed mention suffices
    # hedges (default: absent)
    ("Cannot rule out atrial flutter", set()),
    ("Possible atrial fibrillation", set()),
    ("Probable sinus bradycardia", set()),
    ("Consider left anterior fascicular block", set()),
    ("Borderline prolonged QT interval", set()),
    ("Atrial flutter cannot be excluded", set()),
    ("Inferior infarct, possibly acute; sinus rhythm", set()),  # hedge in another clause
    ("Possible left atrial abnormality; sinus bradycardia", {"bradsr"}),
])
def test_report_labels(text, labels):
    assert report_labels(text) == frozenset(labels)


@pytest.mark.parametrize("text, labels", [
    ("Cannot rule out atrial flutter", {"aflu"}),
    ("Probable sinus bradycardia", {"bradsr"}),
    ("Atrial flutter cannot be excluded", {"aflu"}),
    ("No evidence of atrial fibrillation", set()),          # negation stays negation
    ("Atrial fibrillation is no longer present", set()),
])
def test_report_labels_uncertain_positive(text, labels):
    assert report_labels(text, uncertain="positive") == frozenset(labels)


def test_report_labels_rejects_unknown_policy():
    with pytest.raises(ValueError, match="uncertain"):
        report_labels("afib", uncertain="maybe")


def test_keyword_table_is_data():
    assert set(mimic.TASK_CLASSES["rhythm"]) == set(mimic.KEYWORD_TABLE)
    assert mimic.TASK_CLASSES["rhythm_norm"][-1] == "norm"
    for name, rule in mimic.KEYWORD_TABLE.items():
        assert rule.description and rule.patterns, name
    # ECG-XPLAIM's class set (25 classes, its src/initial_setup.py).
    assert len(mimic.XPLAIM_KEYWORDS) == 25
    assert set(mimic.KEYWORD_TABLE) <= set(mimic.XPLAIM_KEYWORDS)


def test_report_text_skips_empty_statements():
    assert report_text(["Sinus rhythm", float("nan"), None, "  ", "Normal ECG "]) == \
        "sinus rhythm; normal ecg"


def test_xplaim_labels_reproduce_plain_substring_matching():
    statements = ["Ventricular paced rhythm", "Incomplete right bundle branch block",
                  "No evidence of atrial fibrillation"] + [float("nan")] * 15
    text = xplaim_text(statements)
    assert text.startswith(" ventricular paced rhythm incomplete") and text.endswith(" nan ")
    # Substrings: "pac" in "paced", "right b" in "incomplete right bundle", negation ignored.
    assert xplaim_labels(text) == {"pace", "pac", "rbbb", "afib", "afifl"}
    # Its stem "longed PR" is upper case and never matches the lower-cased text.
    assert xplaim_labels(xplaim_text(["Prolonged PR interval"])) == set()
    assert xplaim_labels(xplaim_text(["Sinus rhythm with 1st degree A-V block"])) == {"avb1"}


# ============================================================ the loader on a written tree
def test_written_headers_use_mimic_lead_order(tree):
    header = wfdb.rdheader(str(tree / record_path(10000032, 40689238)))
    assert header.sig_name == list(mimic.MIMIC_LEAD_ORDER) == MIMIC_NAMES
    assert header.fs == FS and header.sig_len == SAMPLES


def test_labels_ids_and_metadata(data100):
    ds = data100
    assert ds.classes == mimic.TASK_CLASSES["rhythm_norm"]
    assert ds.task == "rhythm_norm" and ds.sampling_rate == 100
    assert ds.ecg_ids.dtype == np.int64 and ds.ecg_ids.tolist() == sorted(STUDIES)
    assert ds.patient_ids.tolist() == [STUDIES[s][0] for s in sorted(STUDIES)]
    for row, study in enumerate(ds.ecg_ids):
        got = {c for c, v in zip(ds.classes, ds.labels[row]) if v == 1}
        assert got == STUDIES[int(study)][2], study
    assert ds.labels.dtype == np.float32
    assert np.isnan(ds.age).all() and ds.age.dtype == np.float32
    assert (ds.sex == -1).all() and ds.sex.dtype == np.int8
    assert ds.skipped == ()


def test_other_tasks_and_uncertain_policy(tree):
    hedged = load_mimic(tree, "rhythm", 100, uncertain="positive")
    assert "norm" not in hedged.classes
    row = hedged.ecg_ids.tolist().index(42000004)          # "Cannot rule out atrial flutter"
    assert hedged.labels[row, hedged.classes.index("aflu")] == 1
    xplaim = load_mimic(tree, "xplaim", 100, max_records=8)
    assert xplaim.classes == tuple(mimic.XPLAIM_KEYWORDS)
    got = {c for c, v in zip(xplaim.classes, xplaim.labels[row]) if v}
    assert got == {"aflu", "afifl", "rbbb"}                 # hedge and "incomplete" both count


def test_signals_at_500_hz_equal_written_values(tree):
    ds = load_mimic(tree, "rhythm", 500)
    assert ds.signals.shape == (len(STUDIES), SAMPLES, 12) and ds.signals.dtype == np.float32
    for row, study in enumerate(ds.ecg_ids):
        # wfdb's (d - baseline) / gain in float64, then float32: exact.
        np.testing.assert_array_equal(ds.signals[row], expected_mv(int(study)).astype(np.float32))
    # Reordered to LEADS: aVL is MIMIC's 6th column, aVF its 5th.
    offsets = (ds.signals[0] - ds.signals[0][:, :1]).mean(axis=0) * GAIN / 25
    assert np.allclose(offsets, [MIMIC_NAMES.index(lead) for lead in LEADS], atol=0.2)


def test_signals_at_100_hz_are_resampled(data100):
    ds = data100
    assert ds.signals.shape == (len(STUDIES), 1000, 12)
    for row, study in enumerate(ds.ecg_ids):
        want = resample(expected_mv(int(study)), FS, 100)
        np.testing.assert_allclose(ds.signals[row], want, atol=1e-6)
    # Independently of the resampler: the noiseless 1.2 Hz sine plus per-lead offsets survives
    # anti-aliased decimation (the white noise, sd 0.025 mV, is partly filtered out).
    t = np.arange(1000) / 100
    order = [MIMIC_NAMES.index(lead) for lead in LEADS]
    slow = (150 * np.sin(2 * np.pi * 1.2 * t)[:, None] + 25 * np.asarray(order)[None, :]) / GAIN
    for row in range(len(ds)):
        np.testing.assert_allclose(ds.signals[row, 50:-50], slow[50:-50], atol=0.08)


def test_folds_are_patient_disjoint(data100):
    ds = data100
    assert ds.folds.tolist() == [stable_fold(int(s)) for s in ds.patient_ids]
    assert set(ds.folds.tolist()) <= set(range(1, 11))
    for subject in np.unique(ds.patient_ids):
        assert len(set(ds.folds[ds.patient_ids == subject].tolist())) == 1
    patients = [set(ds.split(s).patient_ids.tolist()) for s in ("train", "validation", "test")]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or
                patients[1] & patients[2])


def test_max_records_takes_first_studies(tree):
    ds = load_mimic(tree, "rhythm", 100, max_records=3)
    assert ds.ecg_ids.tolist() == sorted(STUDIES)[:3]


def test_crop_and_pad_options(tree):
    ds = load_mimic(tree, "rhythm", 100, seconds=4, crop="start", max_records=1)
    np.testing.assert_array_equal(ds.signals[0], load_mimic(tree, "rhythm", 100, max_records=1)
                                  .signals[0][:400])
    with pytest.raises(EcgDataError, match="padding is off"):
        load_mimic(tree, "rhythm", 100, seconds=12, pad=False, max_records=1)


# ============================================================ bad input
def _missing_dat(root):
    (root / (record_path(10000764, 42000003) + ".dat")).unlink()
    return 42000003, "file missing"


def _wrong_leads(root):
    names = MIMIC_NAMES[:-1] + ["V7"]
    write_record(root, 10000764, 42000003, names=names)
    return 42000003, r"lead names .* not the 12 standard leads.*V6.*V7"


def _nan_samples(root):
    digital = digital_signal(42000003)
    digital[100:110, MIMIC_NAMES.index("aVL")] = -32768    # fmt 16's invalid-sample value
    write_record(root, 10000764, 42000003, digital=digital)
    return 42000003, "10 NaN or infinite samples, first at sample 100 of lead aVL"


def _missing_report(root):
    write_tables(root, drop_from_measurements=(42000003,))
    return 42000003, "missing from machine_measurements.csv"


def _corrupt_header(root):
    (root / (record_path(10000764, 42000003) + ".hea")).write_text("this is not a header\n")
    return 42000003, "wfdb cannot read it"


def _other_subject(root):
    subject = STUDIES[42000003][0]
    # machine_measurements.csv names another patient for this study.
    text = (root / "machine_measurements.csv").read_text()
    (root / "machine_measurements.csv").write_text(
        text.replace(f"{subject},42000003,", "10000032,42000003,"))
    return 42000003, "subject_id 10000764 in record_list.csv but 10000032"


@pytest.mark.parametrize("breaker", [_missing_dat, _wrong_leads, _nan_samples, _missing_report,
                                     _corrupt_header, _other_subject])
def test_bad_record_raises_or_is_skipped(broken, breaker, caplog):
    study, message = breaker(broken)
    with pytest.raises(EcgDataError, match=rf"study_id {study}\b.*{message}") as info:
        load_mimic(broken, "rhythm", 100)
    assert "on_error='skip'" in str(info.value)
    ds = load_mimic(broken, "rhythm", 100, on_error="skip")
    assert ds.skipped == (study,)
    assert ds.ecg_ids.tolist() == [s for s in sorted(STUDIES) if s != study]
    assert len(ds.signals) == len(ds) == len(STUDIES) - 1
    np.testing.assert_allclose(ds.signals[-1], resample(expected_mv(44000007), FS, 100),
                               atol=1e-6)
    assert f"study_id {study}" in caplog.text


def test_bad_tables_and_arguments(tree, tmp_path):
    with pytest.raises(EcgDataError, match="unknown MIMIC-IV-ECG task 'superdiagnostic'"):
        load_mimic(tree, "superdiagnostic")
    with pytest.raises(EcgDataError, match="does not exist"):
        load_mimic(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="on_error"):
        load_mimic(tree, on_error="ignore")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EcgDataError, match="record_list.csv is missing"):
        load_mimic(tmp_path / "empty")
    root = tmp_path / "dup"
    shutil.copytree(tree, root)
    lines = (root / "record_list.csv").read_text().splitlines()
    (root / "record_list.csv").write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(EcgDataError, match="more than once"):
        load_mimic(root)
