"""Per-lead wave measurements at global fiducial points, vectorised over beats, leads and records.

Every beat of every record is one row; a wave's samples are gathered into a padded
``(beats, W, 12)`` block with a mask, so each measurement is one masked NumPy reduction over
all beats and leads at once, and the per-record aggregate (max / min / mean / sd over beats) is
one ``reduceat`` over the beats sorted by record. No Python loop runs over beats or leads.

Amplitudes are relative to the beat's isoelectric level in that lead: the mean over the
PR segment just before QRS onset (``QRS_on - 30 ms`` to ``QRS_on - 5 ms``).

Per-lead features (named ``<lead>_<feature>``, e.g. ``V2_ST60_mean``):

==================  ========  ============================================================
feature             unit      what (per beat, then aggregated over the record's beats)
==================  ========  ============================================================
R_amp_max/min/mean  mV        largest value in the QRS (QRS_on..QRS_off)
R_amp_sd            mV        sd over beats of R_amp
Q_amp_max/min/mean  mV        smallest value from QRS onset to the (global) R peak
S_amp_max/min/mean  mV        smallest value from the (global) R peak to QRS offset
P_amp_max/min/mean  mV        the P wave's extreme (signed: value of largest magnitude)
T_amp_max/min/mean  mV        the T wave's extreme (signed), T_on..T_off
T_amp_sd            mV        sd over beats of T_amp
QRS_pp_mean         mV        QRS peak-to-peak amplitude
R_mean              mV        mean value over the QRS ("R-wave mean")
T_mean              mV        mean value over the T wave ("T-wave mean")
QRS_area            mV*ms     signed area of the QRS
QRS_abs_area        mV*ms     area of the QRS's absolute value
T_area              mV*ms     signed area of the T wave
T_abs_area          mV*ms     area of the T wave's absolute value
P_area              mV*ms     signed area of the P wave
ST_J_mean           mV        level at the J point (QRS offset)
ST60_max/min/mean   mV        ST level at J + 60 ms (mean over J + 50..70 ms)
ST_integral         mV*ms     signed area from the J point to T onset (J + 80 ms if no T onset)
ST_slope            mV/s      (level at J + 80 ms - level at J) / 80 ms
R_dur               ms        time the QRS spends above the isoelectric level
N_dur               ms        time the QRS spends below it
R_time              ms        QRS onset to this lead's QRS maximum (ventricular activation time)
T_R_ratio           1         mean T_amp / mean QRS_pp
==================  ========  ============================================================

Global features (named ``global_<feature>``; medians over beats of the fiducial lead):
``RR_mean`` and ``RR_sd`` (ms), ``HR`` (beats/min), ``PR``, ``P_dur``, ``QRS_dur``, ``QT``,
``T_dur`` (ms), ``QTc`` (Bazett, ms), ``n_beats`` (beats with a delineated QRS).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from imn.data.dataset import LEADS
from imn.features.delineate import FID

# (feature, wave, per-beat quantity, aggregate over beats, unit). ``wave`` names the span the feature
# measures (see :func:`wave_spans`); explanation maps spread a feature's value over it.
_LEAD_SPEC: tuple[tuple[str, str, str, str, str], ...] = (
    ("R_amp_max", "QRS", "R_amp", "max", "mV"),
    ("R_amp_min", "QRS", "R_amp", "min", "mV"),
    ("R_amp_mean", "QRS", "R_amp", "mean", "mV"),
    ("R_amp_sd", "QRS", "R_amp", "sd", "mV"),
    ("Q_amp_max", "Q", "Q_amp", "max", "mV"),
    ("Q_amp_min", "Q", "Q_amp", "min", "mV"),
    ("Q_amp_mean", "Q", "Q_amp", "mean", "mV"),
    ("S_amp_max", "S", "S_amp", "max", "mV"),
    ("S_amp_min", "S", "S_amp", "min", "mV"),
    ("S_amp_mean", "S", "S_amp", "mean", "mV"),
    ("P_amp_max", "P", "P_amp", "max", "mV"),
    ("P_amp_min", "P", "P_amp", "min", "mV"),
    ("P_amp_mean", "P", "P_amp", "mean", "mV"),
    ("T_amp_max", "T", "T_amp", "max", "mV"),
    ("T_amp_min", "T", "T_amp", "min", "mV"),
    ("T_amp_mean", "T", "T_amp", "mean", "mV"),
    ("T_amp_sd", "T", "T_amp", "sd", "mV"),
    ("QRS_pp_mean", "QRS", "QRS_pp", "mean", "mV"),
    ("R_mean", "QRS", "R_mean", "mean", "mV"),
    ("T_mean", "T", "T_mean", "mean", "mV"),
    ("QRS_area", "QRS", "QRS_area", "mean", "mV*ms"),
    ("QRS_abs_area", "QRS", "QRS_abs_area", "mean", "mV*ms"),
    ("T_area", "T", "T_area", "mean", "mV*ms"),
    ("T_abs_area", "T", "T_abs_area", "mean", "mV*ms"),
    ("P_area", "P", "P_area", "mean", "mV*ms"),
    ("ST_J_mean", "J", "ST_J", "mean", "mV"),
    ("ST60_max", "ST60", "ST60", "max", "mV"),
    ("ST60_min", "ST60", "ST60", "min", "mV"),
    ("ST60_mean", "ST60", "ST60", "mean", "mV"),
    ("ST_integral", "ST", "ST_integral", "mean", "mV*ms"),
    ("ST_slope", "ST80", "ST_slope", "mean", "mV/s"),
    ("R_dur", "QRS", "R_dur", "mean", "ms"),
    ("N_dur", "QRS", "N_dur", "mean", "ms"),
    ("R_time", "QRS", "R_time", "mean", "ms"),
    ("T_R_ratio", "QRS+T", "", "ratio", "1"),
)
LEAD_FEATURES: tuple[str, ...] = tuple(spec[0] for spec in _LEAD_SPEC)
LEAD_FEATURE_WAVES: dict[str, str] = {spec[0]: spec[1] for spec in _LEAD_SPEC}
GLOBAL_FEATURES: tuple[str, ...] = (
    "RR_mean", "RR_sd", "HR", "PR", "P_dur", "QRS_dur", "QT", "QTc", "T_dur", "n_beats",
)
GLOBAL_FEATURE_WAVES: dict[str, str] = {
    "RR_mean": "RR", "RR_sd": "RR", "HR": "RR", "PR": "PR", "P_dur": "P", "QRS_dur": "QRS",
    "QT": "QT", "QTc": "QT", "T_dur": "T", "n_beats": "QRS",
}
UNITS: dict[str, str] = {spec[0]: spec[4] for spec in _LEAD_SPEC} | {
    "RR_mean": "ms", "RR_sd": "ms", "HR": "1/min", "PR": "ms", "P_dur": "ms", "QRS_dur": "ms",
    "QT": "ms", "QTc": "ms", "T_dur": "ms", "n_beats": "1",
}
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{lead}_{feature}" for lead in LEADS for feature in LEAD_FEATURES
) + tuple(f"global_{feature}" for feature in GLOBAL_FEATURES)

_BASELINE_MS = (-30.0, -5.0)  # isoelectric window relative to QRS onset
_J_HALF_MS = 10.0
_ST60_MS = (50.0, 70.0)
_ST80_MS = 80.0
WAVES = ("QRS", "Q", "S", "P", "T", "J", "ST60", "ST", "ST80", "RR", "PR", "QT", "baseline")


def feature_unit(name: str) -> str:
    """Unit of a feature column name (``V2_ST60_mean`` -> ``mV``)."""
    prefix, _, feature = name.partition("_")
    if (prefix not in LEADS and prefix != "global") or feature not in UNITS:
        raise KeyError(f"unknown feature {name!r}")
    return UNITS[feature]


def wave_spans(fiducials: np.ndarray, wave: str, sampling_rate: int,
               next_r_peak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample (inclusive, float, NaN = no span) of ``wave`` in each beat.

    Args:
      fiducials: ``(B, len(FIDUCIALS))`` in samples.
      wave: one of ``WAVES`` (``QRS+T`` is not a span; map it as QRS and T).
      next_r_peak: ``(B,)`` the following beat's R peak (for ``RR``); NaN for the last beat.
    """
    f = {name: fiducials[:, k] for name, k in FID.items()}
    ms = sampling_rate / 1000.0
    j_point = f["QRS_off"]
    if wave == "QRS":
        return f["QRS_on"], f["QRS_off"]
    if wave == "Q":
        return f["QRS_on"], np.where(np.isfinite(j_point), f["R_peak"], np.nan)
    if wave == "S":
        return np.where(np.isfinite(f["QRS_on"]), f["R_peak"], np.nan), f["QRS_off"]
    if wave == "P":
        return f["P_on"], f["P_off"]
    if wave == "T":
        return f["T_on"], f["T_off"]
    if wave == "J":
        return np.floor(j_point - _J_HALF_MS * ms), np.ceil(j_point + _J_HALF_MS * ms)
    if wave == "ST60":
        return np.round(j_point + _ST60_MS[0] * ms), np.round(j_point + _ST60_MS[1] * ms)
    if wave == "ST":
        end = np.where(np.isfinite(f["T_on"]), f["T_on"], np.round(j_point + _ST80_MS * ms))
        return j_point, end
    if wave == "ST80":
        return j_point, np.round(j_point + _ST80_MS * ms)
    if wave == "RR":
        nxt = np.full(len(fiducials), np.nan) if next_r_peak is None else next_r_peak
        return f["R_peak"], nxt
    if wave == "PR":
        return f["P_on"], f["QRS_on"]
    if wave == "QT":
        return f["QRS_on"], f["T_off"]
    if wave == "baseline":
        # ceil / floor, not round: round-half-to-even gave the window a length that depended
        # on the onset's parity wherever the bound falls on half a sample (100 Hz: -0.5).
        return (np.ceil(f["QRS_on"] + _BASELINE_MS[0] * ms),
                np.floor(f["QRS_on"] + _BASELINE_MS[1] * ms))
    raise ValueError(f"unknown wave {wave!r}; expected one of {WAVES}")


@dataclasses.dataclass
class _Window:
    values: np.ndarray  # (B, W, 12), relative to the beat's baseline
    mask: np.ndarray  # (B, W) bool
    start: np.ndarray  # (B,) int


def _gather(signals: np.ndarray, record: np.ndarray, start: np.ndarray, stop: np.ndarray,
            baseline: np.ndarray | None) -> _Window:
    """Samples ``start..stop`` (inclusive) of each beat's record, padded to the longest span."""
    length = signals.shape[1]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(start) & np.isfinite(stop) & (stop >= start) & (start >= 0) \
            & (stop < length)
    first = np.where(valid, start, 0).astype(np.int64)
    last = np.where(valid, stop, -1).astype(np.int64)
    width = int((last - first).max(initial=-1)) + 1
    width = max(width, 1)
    offsets = np.arange(width)
    index = first[:, None] + offsets
    mask = (index <= last[:, None]) & valid[:, None]
    np.clip(index, 0, length - 1, out=index)
    values = signals[record[:, None], index]  # (B, W, 12)
    if baseline is not None:
        values = values - baseline[:, None, :]
    return _Window(values, mask, first)


def _masked(window: _Window, fill: float) -> np.ndarray:
    return np.where(window.mask[:, :, None], window.values, fill)


def _beat_quantities(signals: np.ndarray, record: np.ndarray, fiducials: np.ndarray,
                     rate: int) -> dict[str, np.ndarray]:
    """Per beat and lead ``(B, 12)`` float64 quantities (NaN where the wave is missing)."""
    dt_ms = 1000.0 / rate
    nan = np.nan

    def span(wave: str) -> tuple[np.ndarray, np.ndarray]:
        return wave_spans(fiducials, wave, rate)

    base = _gather(signals, record, *span("baseline"), None)
    counts = base.mask.sum(1)
    baseline = np.where(counts[:, None] > 0,
                        (_masked(base, 0.0)).sum(1) / np.maximum(counts, 1)[:, None], nan)

    def window(wave: str) -> tuple[_Window, np.ndarray]:
        w = _gather(signals, record, *span(wave), baseline)
        has = w.mask.any(1)[:, None] & np.isfinite(baseline)
        return w, has

    out: dict[str, np.ndarray] = {}
    qrs, has_qrs = window("QRS")
    n_qrs = np.maximum(qrs.mask.sum(1), 1)[:, None]
    top = _masked(qrs, -np.inf).max(1)
    bottom = _masked(qrs, np.inf).min(1)
    out["R_amp"] = np.where(has_qrs, top, nan)
    out["QRS_pp"] = np.where(has_qrs, top - bottom, nan)
    out["R_mean"] = np.where(has_qrs, _masked(qrs, 0.0).sum(1) / n_qrs, nan)
    out["QRS_area"] = np.where(has_qrs, _masked(qrs, 0.0).sum(1) * dt_ms, nan)
    out["QRS_abs_area"] = np.where(has_qrs, np.abs(_masked(qrs, 0.0)).sum(1) * dt_ms, nan)
    out["R_dur"] = np.where(has_qrs, (_masked(qrs, 0.0) > 0).sum(1) * dt_ms, nan)
    out["N_dur"] = np.where(has_qrs, (_masked(qrs, 0.0) < 0).sum(1) * dt_ms, nan)
    out["R_time"] = np.where(has_qrs, _masked(qrs, -np.inf).argmax(1) * dt_ms, nan)

    for name, wave in (("Q_amp", "Q"), ("S_amp", "S")):
        w, has = window(wave)
        out[name] = np.where(has, _masked(w, np.inf).min(1), nan)

    for wave in ("P", "T"):
        w, has = window(wave)
        n = np.maximum(w.mask.sum(1), 1)[:, None]
        magnitude = np.abs(_masked(w, 0.0))
        extreme = np.take_along_axis(w.values, magnitude.argmax(1)[:, None, :], axis=1)[:, 0]
        out[f"{wave}_amp"] = np.where(has, extreme, nan)
        out[f"{wave}_area"] = np.where(has, _masked(w, 0.0).sum(1) * dt_ms, nan)
        if wave == "T":
            out["T_mean"] = np.where(has, _masked(w, 0.0).sum(1) / n, nan)
            out["T_abs_area"] = np.where(has, magnitude.sum(1) * dt_ms, nan)

    for name, wave in (("ST_J", "J"), ("ST60", "ST60")):
        w, has = window(wave)
        n = np.maximum(w.mask.sum(1), 1)[:, None]
        out[name] = np.where(has, _masked(w, 0.0).sum(1) / n, nan)
    w, has = window("ST")
    out["ST_integral"] = np.where(has, _masked(w, 0.0).sum(1) * dt_ms, nan)
    w, has = window("ST80")
    last = w.mask.sum(1) - 1
    end_value = np.take_along_axis(w.values, np.maximum(last, 0)[:, None, None], axis=1)[:, 0]
    full = has & (last[:, None] >= 1)
    out["ST_slope"] = np.where(full, (end_value - w.values[:, 0]) / (_ST80_MS / 1000.0), nan)
    return out


def _reduce(values: np.ndarray, starts: np.ndarray, how: str) -> np.ndarray:
    """Aggregate ``(B, 12)`` over the beats of each record (``starts``: first beat of each)."""
    finite = np.isfinite(values)
    if how == "max":
        return np.fmax.reduceat(values, starts, axis=0)
    if how == "min":
        return np.fmin.reduceat(values, starts, axis=0)
    count = np.add.reduceat(finite, starts, axis=0)
    total = np.add.reduceat(np.where(finite, values, 0.0), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        if how == "mean":
            return np.where(count > 0, mean, np.nan)
        if how == "sd":
            squares = np.add.reduceat(np.where(finite, values ** 2, 0.0), starts, axis=0)
            variance = np.maximum(squares / count - mean ** 2, 0.0)
            return np.where(count > 1, np.sqrt(variance), np.nan)
    raise ValueError(how)


# Per-lead features that one beat decides (the largest or smallest over the record's beats).
EXTREME_FEATURES: tuple[str, ...] = tuple(spec[0] for spec in _LEAD_SPEC if spec[3] in ("max", "min"))


def _attaining_beat(values: np.ndarray, aggregate: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``(R, 12)`` int: the first beat (counted within its record) whose ``values (B, 12)``
    equal the record's ``aggregate (R, 12)``; -1 where the aggregate is NaN."""
    counts = np.diff(np.append(starts, len(values)))
    owner = np.repeat(np.arange(len(starts)), counts)  # (B,) record of each beat
    position = np.arange(len(values)) - starts[owner]  # (B,) beat within its record
    hits = values == aggregate[owner]  # NaN never equals
    candidate = np.where(hits, position[:, None], np.iinfo(np.int64).max)
    first = np.minimum.reduceat(candidate, starts, axis=0)
    return np.where(first == np.iinfo(np.int64).max, -1, first)


def lead_features(filtered: np.ndarray, fiducials: list[np.ndarray | None],
                  sampling_rate: int, *, with_extreme_beats: bool = False):
    """Per-lead features ``(N, 12, len(LEAD_FEATURES))`` of a block of records.

    Args:
      filtered: ``(N, L, 12)`` band-passed signals (mV).
      fiducials: per record ``(B_i, len(FIDUCIALS))`` or ``None`` (failed: all NaN).
      with_extreme_beats: also return int16 ``(N, 12, len(EXTREME_FEATURES))``: for each
        max / min feature, the row of ``fiducials[i]`` of the beat that sets it (the first
        if several tie), -1 where the feature is NaN. A map of the feature back onto the
        ECG belongs on that beat, not on every beat.
    """
    n = len(filtered)
    out = np.full((n, len(LEADS), len(LEAD_FEATURES)), np.nan)
    beats = np.full((n, len(LEADS), len(EXTREME_FEATURES)), -1, np.int16)
    usable = [i for i, f in enumerate(fiducials) if f is not None and len(f)]
    if not usable:
        return (out, beats) if with_extreme_beats else out
    table = np.concatenate([fiducials[i] for i in usable])
    record = np.concatenate([np.full(len(fiducials[i]), i) for i in usable])
    starts = np.concatenate([[0], np.cumsum([len(fiducials[i]) for i in usable])[:-1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        quantities = _beat_quantities(filtered, record, table, sampling_rate)
        aggregated = {}
        for k, (name, _, quantity, how, _) in enumerate(_LEAD_SPEC):
            if how == "ratio":
                continue
            aggregated[name] = _reduce(quantities[quantity], starts, how)
            out[usable, :, k] = aggregated[name]
            if with_extreme_beats and name in EXTREME_FEATURES:
                beats[usable, :, EXTREME_FEATURES.index(name)] = _attaining_beat(
                    quantities[quantity], aggregated[name], starts)
        ratio = aggregated["T_amp_mean"] / aggregated["QRS_pp_mean"]
        out[usable, :, LEAD_FEATURES.index("T_R_ratio")] = np.where(
            np.isfinite(ratio), ratio, np.nan)
    return (out, beats) if with_extreme_beats else out


def global_features(fiducials: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Interval features ``(len(GLOBAL_FEATURES),)`` of one record's fiducial table (ms)."""
    ms = 1000.0 / sampling_rate
    f = {name: fiducials[:, k] for name, k in FID.items()}
    rr = np.diff(f["R_peak"]) * ms

    def median(values: np.ndarray) -> float:
        values = values[np.isfinite(values)]
        return float(np.median(values)) if len(values) else np.nan

    rr_mean = float(rr.mean()) if len(rr) else np.nan
    qt = median((f["T_off"] - f["QRS_on"]) * ms)
    values = {
        "RR_mean": rr_mean,
        "RR_sd": float(rr.std()) if len(rr) > 1 else np.nan,
        "HR": 60_000.0 / rr_mean if rr_mean > 0 else np.nan,
        "PR": median((f["QRS_on"] - f["P_on"]) * ms),
        "P_dur": median((f["P_off"] - f["P_on"]) * ms),
        "QRS_dur": median((f["QRS_off"] - f["QRS_on"]) * ms),
        "QT": qt,
        "QTc": qt / np.sqrt(rr_mean / 1000.0) if rr_mean > 0 else np.nan,
        "T_dur": median((f["T_off"] - f["T_on"]) * ms),
        "n_beats": float(np.isfinite(f["QRS_on"]).sum()),
    }
    return np.array([values[name] for name in GLOBAL_FEATURES])
