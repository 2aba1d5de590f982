"""Global fiducial points of a 12-lead ECG: one NeuroKit2 delineation per record.

Clinical systems measure intervals once per record on a combined signal and amplitudes per
lead at those common time points; this module does the first half. The record is band-passed
(0.5-40 Hz, zero phase), the 12 leads are combined into one fiducial lead (by default their
first principal component, signed so that its largest deflection is positive; or a named
lead such as ``"II"``), NeuroKit2 finds the R peaks (``ecg_peaks``) and delineates P, QRS and
T waves on it with its discrete-wavelet method (``ecg_delineate(method="dwt")``). When
fewer than half the beats come out with a plausible QRS, the next lead of
``DEFAULT_FIDUCIAL_LEADS`` is tried (:func:`delineate_best`).

Why one delineation: NeuroKit2's clean + peaks + delineate costs about 50 ms per 10 s signal
at 500 Hz here, so doing it per lead would take 12 times as long for little gain: per-lead
onsets disagree mostly where a lead is nearly isoelectric, i.e. where they are least reliable.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal as sps

from imn.data.dataset import LEADS

# Columns of a record's fiducial table (beats, len(FIDUCIALS)), in samples (float, NaN = not found).
FIDUCIALS: tuple[str, ...] = (
    "P_on", "P_peak", "P_off", "QRS_on", "Q_peak", "R_peak", "S_peak", "QRS_off",
    "T_on", "T_peak", "T_off",
)
FID = {name: k for k, name in enumerate(FIDUCIALS)}
_NEUROKIT_KEYS = {
    "P_on": "ECG_P_Onsets", "P_peak": "ECG_P_Peaks", "P_off": "ECG_P_Offsets",
    "QRS_on": "ECG_R_Onsets", "Q_peak": "ECG_Q_Peaks", "S_peak": "ECG_S_Peaks",
    "QRS_off": "ECG_R_Offsets", "T_on": "ECG_T_Onsets", "T_peak": "ECG_T_Peaks",
    "T_off": "ECG_T_Offsets",
}
# Physiological bounds (seconds) outside which a delineated wave is discarded for that beat.
_QRS_SECONDS = (0.03, 0.25)
_T_END_AFTER_R_SECONDS = (0.12, 0.70)  # R peak to T offset
_PR_SECONDS = (0.04, 0.40)  # P onset to QRS onset
_MIN_BEATS = 2
# Q peak to QRS onset (and S peak to offset) when a record gives no example of its own.
_BOUND_GAP_SECONDS = 0.02
# A QRS onset further than this before the Q peak (or before the R peak) is not the QRS's:
# NeuroKit2's DWT searches it between the P and Q peaks and often returns the P wave.
_ONSET_BEFORE_Q_SECONDS = 0.06
_ONSET_BEFORE_R_SECONDS = 0.12
FIDUCIAL_LEADS = ("pca",) + LEADS
# Lead II first (NeuroKit2's DWT delineator is tuned on it: on the PTB-XL slice it gives a
# plausible QRS in most beats of nearly every record, where the principal component fails in
# about 30% of records); the others are tried only when it does not.
DEFAULT_FIDUCIAL_LEADS = ("II", "V2", "V5", "pca")
_MIN_GOOD_BEAT_FRACTION = 0.5


class DelineationError(RuntimeError):
    """The record has no usable beats (too few R peaks, or NeuroKit2 failed on it)."""


def bandpass(signals: np.ndarray, sampling_rate: int, low_hz: float = 0.5,
             high_hz: float = 40.0) -> np.ndarray:
    """Zero-phase band-pass of ``(..., L, 12)`` signals along time; float64, same shape.

    The upper edge is lowered to 0.45 * rate for low rates (100 Hz gives 40 Hz anyway).
    """
    high = min(high_hz, 0.45 * sampling_rate)
    sos = sps.butter(2, [low_hz, high], btype="band", fs=sampling_rate, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(signals, np.float64), axis=-2)


def fiducial_signal(filtered: np.ndarray, lead: str = "pca") -> np.ndarray:
    """The combined lead ``(L,)`` of one filtered record ``(L, 12)``.

    ``"pca"``: projection on the first principal component of the 12 leads (the direction of
    largest variance, dominated by the QRS loop), signed so its largest deflection is
    positive, which is what NeuroKit2's delineator expects of an R wave. A lead name: that lead.
    """
    if lead != "pca":
        if lead not in LEADS:
            raise ValueError(f"fiducial lead must be 'pca' or one of {LEADS}, got {lead!r}")
        return filtered[:, LEADS.index(lead)]
    centred = filtered - filtered.mean(axis=0)
    # 12 x 12 covariance instead of an L x 12 SVD: same component, much less work.
    _, vectors = np.linalg.eigh(centred.T @ centred)
    combined = centred @ vectors[:, -1]
    if -combined.min() > combined.max():
        combined = -combined
    return combined


def delineate(combined: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Fiducial points ``(B, len(FIDUCIALS))`` in samples (NaN where a wave was not found).

    Beats whose QRS (or T, or P) falls outside physiological bounds keep NaN for that wave, so
    one bad wave never poisons the others.

    Raises:
      DelineationError: fewer than two R peaks, or NeuroKit2 raised.
    """
    import neurokit2 as nk  # imported here: it takes ~1 s and only this function needs it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NeuroKit2 warns per record about edge beats
        try:
            _, info = nk.ecg_peaks(combined, sampling_rate=sampling_rate)
            r_peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
            if len(r_peaks) < _MIN_BEATS:
                raise DelineationError(f"{len(r_peaks)} R peak(s) found; need {_MIN_BEATS}")
            _, waves = nk.ecg_delineate(combined, r_peaks, sampling_rate=sampling_rate,
                                        method="dwt")
        except DelineationError:
            raise
        except Exception as err:  # NeuroKit2 raises bare ValueError/IndexError on odd signals
            raise DelineationError(f"NeuroKit2 failed: {type(err).__name__}: {err}") from None
    table = np.full((len(r_peaks), len(FIDUCIALS)), np.nan)
    table[:, FID["R_peak"]] = r_peaks
    for name, key in _NEUROKIT_KEYS.items():
        points = np.asarray(waves.get(key, []), dtype=np.float64)
        if len(points) == len(r_peaks):
            table[:, FID[name]] = points
    _screen_qrs_bounds(table, sampling_rate)
    _fill_qrs_bounds(table, sampling_rate)
    return _drop_implausible(table, sampling_rate, len(combined))


def delineate_best(filtered: np.ndarray, sampling_rate: int,
                   leads: tuple[str, ...] = DEFAULT_FIDUCIAL_LEADS) -> tuple[np.ndarray, str]:
    """Delineate one filtered record ``(L, 12)`` on the first of ``leads`` that works.

    A lead "works" when at least half its beats have a plausible QRS; if none does, the lead
    with the most such beats is kept. Returns ``(fiducials (B, len(FIDUCIALS)), lead)``.

    Raises:
      DelineationError: no lead gives a single beat with a plausible QRS.
    """
    best, best_lead, best_good, errors = None, "", 0, []
    for lead in leads:
        try:
            table = delineate(fiducial_signal(filtered, lead), sampling_rate)
        except DelineationError as err:
            errors.append(f"{lead}: {err}")
            continue
        good = int(np.isfinite(table[:, FID["QRS_on"]]).sum())
        if good > best_good:
            best, best_lead, best_good = table, lead, good
        if good >= _MIN_GOOD_BEAT_FRACTION * len(table):
            break
        errors.append(f"{lead}: plausible QRS in {good} of {len(table)} beats")
    if best is None:
        raise DelineationError("no beat with a plausible QRS on any fiducial lead (" +
                               "; ".join(errors) + ")")
    return best, best_lead


def _screen_qrs_bounds(table: np.ndarray, rate: int) -> None:
    """Clear, in place, QRS bounds that belong to another wave, so :func:`_fill_qrs_bounds`
    refills them from the beat's Q / S peak with the gap of the plausible beats.

    An onset more than ``_ONSET_BEFORE_Q_SECONDS`` before the Q peak, or more than
    ``_ONSET_BEFORE_R_SECONDS`` before the R peak, lies in the P wave or the PR segment
    (NeuroKit2's DWT returned it for about 1 record in 5 of the PTB-XL slice at 500 Hz, with
    QRS durations of 170 ms for NORM records); it would also put the isoelectric baseline,
    taken just before the onset, on the P wave. An offset before the S peak cuts the S wave
    off the QRS.
    """
    on, off = table[:, FID["QRS_on"]], table[:, FID["QRS_off"]]
    q, r, s_peak = table[:, FID["Q_peak"]], table[:, FID["R_peak"]], table[:, FID["S_peak"]]
    with np.errstate(invalid="ignore"):
        early = ((q - on) > _ONSET_BEFORE_Q_SECONDS * rate) | ((r - on) > _ONSET_BEFORE_R_SECONDS * rate)
        cut = off < s_peak
    on[early] = np.nan
    off[cut] = np.nan


def _fill_qrs_bounds(table: np.ndarray, rate: int) -> None:
    """Fill missing QRS onsets / offsets from the Q / S peaks, in place.

    NeuroKit2's DWT searches a QRS onset between the P peak and the Q peak and an offset
    between the R peak and the T peak, so a beat without a P wave (atrial fibrillation, most
    of all) never gets an onset. Such a beat gets ``Q_peak - gap``, ``gap`` being the record's
    median Q-peak-to-onset distance over beats that have both, else ``_BOUND_GAP_SECONDS``;
    likewise ``S_peak + gap`` for offsets.
    """
    for bound, peak, sign in (("QRS_on", "Q_peak", -1.0), ("QRS_off", "S_peak", 1.0)):
        b, p = table[:, FID[bound]], table[:, FID[peak]]
        known = np.isfinite(b) & np.isfinite(p)
        gap = np.median(np.abs(b[known] - p[known])) if known.any() else _BOUND_GAP_SECONDS * rate
        missing = ~np.isfinite(b) & np.isfinite(p)
        b[missing] = np.round(p[missing] + sign * gap)


def _drop_implausible(table: np.ndarray, rate: int, length: int) -> np.ndarray:
    """NaN out waves that are out of order or out of physiological bounds, per beat."""
    t = table.copy()
    col = {name: t[:, k] for name, k in FID.items()}
    with np.errstate(invalid="ignore"):
        qrs = (col["QRS_off"] - col["QRS_on"]) / rate
        bad_qrs = ~((qrs >= _QRS_SECONDS[0]) & (qrs <= _QRS_SECONDS[1])
                    & (col["QRS_on"] <= col["R_peak"]) & (col["R_peak"] <= col["QRS_off"]))
        t_end = (col["T_off"] - col["R_peak"]) / rate
        bad_t = ~((t_end >= _T_END_AFTER_R_SECONDS[0]) & (t_end <= _T_END_AFTER_R_SECONDS[1])
                  & (col["T_on"] < col["T_off"]) & (col["T_on"] >= col["QRS_off"])
                  & (col["T_on"] <= col["T_peak"]) & (col["T_peak"] <= col["T_off"])) | bad_qrs
        pr = (col["QRS_on"] - col["P_on"]) / rate
        bad_p = ~((pr >= _PR_SECONDS[0]) & (pr <= _PR_SECONDS[1]) & (col["P_on"] < col["P_off"])
                  & (col["P_off"] <= col["QRS_on"])) | bad_qrs
    t[bad_qrs, FID["QRS_on"]] = np.nan
    t[bad_qrs, FID["QRS_off"]] = np.nan
    t[bad_qrs, FID["Q_peak"]] = np.nan
    t[bad_qrs, FID["S_peak"]] = np.nan
    for name in ("T_on", "T_peak", "T_off"):
        t[bad_t, FID[name]] = np.nan
    for name in ("P_on", "P_peak", "P_off"):
        t[bad_p, FID[name]] = np.nan
    # Points at the record's edges (NeuroKit2 sometimes returns them past the end).
    t[(t < 0) | (t >= length)] = np.nan
    return t
