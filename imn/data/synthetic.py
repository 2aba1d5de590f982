"""Synthetic 12-lead ECGs whose class evidence is known sample by sample.

Each record is 10 s of a beating heart, built the way ECGSYN (McSharry et al., 2003) builds
one lead, but as a 3-D cardiac dipole (a vectorcardiogram) projected onto Dower-like lead
vectors, vectorised over records:

* every beat is a sum of compactly supported Gaussian bumps (P, Q, R, S, an asymmetric T),
  each with its own 3-D direction, so the QRS traces a loop and the 12 leads differ the way
  real leads do (small r / deep S in V1, tall R in V5-V6, negative aVR, R-wave progression);
* R-R intervals carry respiratory sinus arrhythmia and jitter, the QT interval follows the
  preceding R-R interval (Bazett-like ``sqrt(RR)``), PR and QRS widths vary per subject;
* subjects differ in heart axis (a random 3-D rotation), QRS-T angle, overall voltage
  (log-normal) and electrode placement (per-lead gain and angle);
* leads I, II and V1-V6 are projected from the dipole; III, aVR, aVL and aVF are computed
  from I and II (Einthoven/Goldberger), so ``III = II - I``, ``aVR = -(I + II) / 2``,
  ``aVL = I - II / 2`` and ``aVF = II - I / 2`` hold up to the independent per-lead noise
  that is added last (and the 1 uV quantisation);
* baseline wander, noise bursts (EMG) and tremor are added to the electrode-level leads
  (so they obey the lead relations), white noise to every lead; values are rounded to
  1 uV so that WFDB ``fmt 16`` at 1000 units/mV stores them exactly.

Classes (sorted, as the PTB-XL reader sorts them) and where their evidence mask lies:

=======  ====================================================  ==============================
class    what is planted                                       evidence mask
=======  ====================================================  ==============================
AFIB     atrial fibrillation: irregular R-R, no P waves,       every lead, every sample (the
         fibrillatory f-waves (4-9 Hz, largest in V1 / II)     rhythm is a property of the
                                                               whole record)
NORM     nothing (NORM iff no other class is present)          every lead, every sample
QRSW     widened QRS (bundle-branch-like: wider Q/R/S and a    every lead, the QRS complex of
         late terminal deflection, RBBB- or LBBB-like)         every beat (widened extent)
STE      ST elevation in one coronary territory, reciprocal    the territory's leads, the ST
         depression elsewhere (anterior V1-V4, inferior        segment of every beat (J point
         II/III/aVF, lateral I/aVL/V5/V6)                      to T peak: where it is raised)
TINV     T-wave inversion in one territory (same three)        the territory's leads, the T
                                                               wave of every beat
=======  ====================================================  ==============================

Classes co-occur (drawn independently with the prevalences of :class:`SyntheticDifficulty`).
The territory of STE and of TINV is drawn per record. The masks mark the *planted* windows:
where the record differs from the same record generated with that effect switched off
(``make_synthetic(..., remove_effects=("STE",))`` returns that counterfactual, with the same
random draws, labels and masks). For QRSW that difference lies entirely inside the mask; for
STE and TINV it lies inside the mask's time windows, and mostly (median ~85%) in its leads:
the reciprocal changes in the other leads are real but unmarked. Removing AFIB gives the
record sinus rhythm, so it changes the whole record and moves the beats, and with them the
windows of the other classes.

Difficulty levels (``LEVELS``, ``make_synthetic(..., difficulty="easy")``): ``easy``
(effects doubled, almost no noise, no look-alikes: learnt by a small CNN in a few hundred
steps), ``default`` (the benchmark described here, unchanged since the first release) and
``hard`` (smaller effects, twice the noise, more and larger look-alikes); their hand-made-
feature baselines are in the README.

Difficulty. Effect sizes are drawn from ranges that reach down to the noise, and healthy
records carry look-alikes, so even a perfect model cannot reach AUROC 1.0: early
repolarisation (diffuse ST elevation) and rate-related ST depression, positional T-wave
inversion in V1/V2 and a leftward T axis (negative T in III), flat T waves, nonspecific QRS
prolongation, sinus arrhythmia and premature atrial beats, low-voltage P waves and tremor
(4-6 Hz) in the limb leads. All of it is drawn independently of the labels.

With the default :class:`SyntheticDifficulty`, a logistic-regression baseline on
hand-crafted features (median beat per lead, R-R statistics, 4-9 Hz band power; see
``scripts/synthetic_baseline.py``) trained on folds 1-8 of 5000 records at 100 Hz, seed 0,
reaches a macro AUROC of 0.827 on fold 10 (AFIB 0.984, NORM 0.755, QRSW 0.825, STE 0.860,
TINV 0.709); command: ``python scripts/synthetic_baseline.py --n 5000 --rate 100 --seed 0
--test``. Gradient-boosted trees on the same features (``--model hgb``) reach 0.928 on
fold 10 (0.921 on fold 9): a good non-linear model lands well below 1.0 too. AFIB is the
easy class (a missing P wave is hard to hide). The default was set on fold 9 only.

Determinism: records are generated in fixed blocks of ``_BLOCK`` records, each with its own
random stream derived from ``seed``, so a seed gives bit-identical arrays, and record ``i``
is the same whatever ``n`` is (only the folds, which are balanced over the whole set,
depend on ``n``). All shape parameters are drawn before any noise, so the 100 Hz and the
500 Hz versions of a record are the same clean ECG with different noise samples.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imn.data.dataset import LEADS, NUM_LEADS, RECORD_SECONDS, EcgDataError, EcgDataset

CLASSES: tuple[str, ...] = ("AFIB", "NORM", "QRSW", "STE", "TINV")
CLASS_DESCRIPTIONS: dict[str, str] = {
    "AFIB": "atrial fibrillation (irregular R-R, no P waves, fibrillatory waves)",
    "NORM": "normal ECG",
    "QRSW": "widened QRS complex (bundle-branch-like conduction delay)",
    "STE": "ST elevation in one coronary territory",
    "TINV": "T-wave inversion in one territory",
}
# Territories of STE and TINV: leads (names in LEADS) that the evidence mask marks.
TERRITORIES: dict[str, tuple[str, ...]] = {
    "anterior": ("V1", "V2", "V3", "V4"),
    "inferior": ("II", "III", "aVF"),
    "lateral": ("I", "aVL", "V5", "V6"),
}
TERRITORY_NAMES: tuple[str, ...] = tuple(TERRITORIES)
TASK = "synthetic"
_K = {name: k for k, name in enumerate(CLASSES)}  # label column of each class

# The generator works on 8 independent leads (I, II, V1-V6) and derives the other four.
_INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
_BLOCK = 256  # records per random stream: fixed, so record i never depends on n
_MAX_BEATS = 44  # enough R peaks to cover 10 s at the shortest R-R (0.3 s) from t0 >= -2 s
_MIN_RR, _MAX_RR = 0.3, 2.0
_EDGE = float(np.exp(-4.5))  # a Gaussian at 3 sigma; subtracted so bumps end at exactly 0
_FOLD_STREAM = 1_000_003  # spawn key of the fold assignment (block keys are 0, 1, 2, ...)


# ====================================================================== difficulty knobs
@dataclasses.dataclass(frozen=True)
class SyntheticDifficulty:
    """Knobs of the generator. The defaults are the documented benchmark setting.

    Attributes:
      effect_scale: multiplies every planted effect (ST shift, degree of T inversion, QRS
        widening, AF irregularity and f-wave amplitude). 0 makes the classes invisible,
        except that AFIB records still lack P waves.
      noise_mv: std of the white noise added to every lead (mV).
      wander_mv: amplitude of the baseline wander per lead (mV).
      burst_probability: chance that a record has a burst of muscle noise.
      confounder_strength: scales the amplitude of the normal-variant look-alikes (and, up
        to 1, how often they occur). 0: no look-alikes.
      amplitude_variation: std of the log of the per-subject voltage scale.
      axis_variation_deg: std of the heart-axis rotation between subjects (degrees).
      afib_prevalence, qrsw_prevalence, ste_prevalence, tinv_prevalence: probability of
        each abnormal class (drawn independently); NORM is the rest.
    """

    effect_scale: float = 1.0
    noise_mv: float = 0.02
    wander_mv: float = 0.1
    burst_probability: float = 0.15
    confounder_strength: float = 1.0
    amplitude_variation: float = 0.25
    axis_variation_deg: float = 20.0
    afib_prevalence: float = 0.15
    qrsw_prevalence: float = 0.15
    ste_prevalence: float = 0.2
    tinv_prevalence: float = 0.2

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"SyntheticDifficulty.{field.name} must be a finite number >= 0, "
                                 f"got {value!r}")
        for name in ("burst_probability", "afib_prevalence", "qrsw_prevalence",
                     "ste_prevalence", "tinv_prevalence"):
            if getattr(self, name) > 1:
                raise ValueError(f"SyntheticDifficulty.{name} is a probability; got "
                                 f"{getattr(self, name)}")

    @property
    def prevalences(self) -> dict[str, float]:
        """Probability of each abnormal class."""
        return {"AFIB": self.afib_prevalence, "QRSW": self.qrsw_prevalence,
                "STE": self.ste_prevalence, "TINV": self.tinv_prevalence}


DEFAULT_DIFFICULTY = SyntheticDifficulty()
# Large effects, little noise, no look-alikes: a signal small models learn in a few hundred
# steps (the demo, and the test that training learns).
EASY_DIFFICULTY = SyntheticDifficulty(effect_scale=2.0, noise_mv=0.005, wander_mv=0.02,
                                      burst_probability=0.0, confounder_strength=0.0,
                                      amplitude_variation=0.1, axis_variation_deg=10.0)
# Smaller effects, twice the noise, more frequent and larger look-alikes and more variation
# between subjects: headroom above what the default level's models reach.
HARD_DIFFICULTY = SyntheticDifficulty(effect_scale=0.7, noise_mv=0.04, wander_mv=0.15,
                                      burst_probability=0.3, confounder_strength=1.5,
                                      amplitude_variation=0.3, axis_variation_deg=25.0)
# The named levels of ``make_synthetic(..., difficulty=LEVEL)``, ``imn data synth --level``
# and ``data.synthetic_level`` (measured baselines per level: README.md).
LEVELS: dict[str, SyntheticDifficulty] = {
    "easy": EASY_DIFFICULTY, "default": DEFAULT_DIFFICULTY, "hard": HARD_DIFFICULTY,
}


def difficulty_level(level: str | SyntheticDifficulty | None) -> SyntheticDifficulty:
    """The knobs of a named level (``easy``, ``default``, ``hard``); a
    :class:`SyntheticDifficulty` is returned as is and ``None`` means ``default``."""
    if level is None:
        return DEFAULT_DIFFICULTY
    if isinstance(level, SyntheticDifficulty):
        return level
    if level not in LEVELS:
        raise ValueError(f"unknown synthetic difficulty level {level!r}; expected one of "
                         f"{list(LEVELS)}")
    return LEVELS[level]


# ====================================================================== geometry
# Dipole axes: x points to the subject's left, y to the feet, z forward (anterior).
def _lead_vectors() -> np.ndarray:
    """(3, 8) lead vectors of I, II, V1-V6 (columns), for a standard subject."""
    frontal = {"I": 0.0, "II": 60.0}  # hexaxial angles, degrees towards the feet
    # Precordial electrodes in the horizontal plane: angle from the left (x) towards the
    # front (z), with a gain that is larger for the electrodes nearest the heart.
    precordial = {"V1": (115, 1.0), "V2": (95, 1.4), "V3": (72, 1.5),
                  "V4": (48, 1.4), "V5": (22, 1.2), "V6": (3, 1.0)}
    columns = []
    for name in _INDEPENDENT:
        if name in frontal:
            a = np.deg2rad(frontal[name])
            columns.append((np.cos(a), np.sin(a), 0.0))
        else:
            angle, gain = precordial[name]
            a = np.deg2rad(angle)
            columns.append((gain * np.cos(a), 0.1 * gain, gain * np.sin(a)))
    return np.array(columns).T


_LEAD_VECTORS = _lead_vectors()
# Wave directions (mV) for a standard subject; amplitudes vary per subject and beat.
_P_VEC = np.array([0.07, 0.09, 0.02])
_Q_VEC = np.array([-0.12, 0.02, 0.20])  # septal activation: rightward and forward
_R_VEC = np.array([0.85, 0.75, -0.45])
_S_VEC = np.array([-0.25, -0.15, -0.35])  # terminal forces: rightward, up, back
_T_VEC = np.array([0.22, 0.22, 0.15])
_F_VEC = np.array([-0.4, 0.5, 0.7])  # f-waves: right atrium, largest in V1 and inferior leads
# Late rightward-anterior force: R' in V1, wide S in I and V6.
_RBBB_VEC = np.array([-0.35, 0.05, 0.45])
_LBBB_VEC = np.array([0.5, 0.1, -0.5])  # late leftward-posterior force: broad R in I, V5-V6

# Per-lead patterns over the 8 independent leads (I, II, V1..V6). Derived leads follow.
_STE_PATTERN = {
    "anterior": [0.0, -0.15, 0.6, 1.0, 1.0, 0.7, 0.15, 0.0],  # reciprocal in III, aVF
    "inferior": [-0.25, 1.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.15],  # III +1.25, aVF +1.1, aVL -0.75
    "lateral": [1.0, 0.35, -0.2, 0.0, 0.0, 0.2, 0.8, 1.0],  # aVL +0.8, III -0.65
}
# TINV: which independent leads are set to an inverted T of depth * weight. Inverting T in
# I (lateral) makes aVL negative; in II (inferior) makes III and aVF negative.
_TINV_PATTERN = {
    "anterior": [0.0, 0.0, 0.6, 1.0, 1.0, 0.8, 0.0, 0.0],
    "inferior": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    "lateral": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 1.0],
}
_ER_PATTERN = [0.3, 0.6, 0.0, 0.6, 0.9, 1.0, 0.8, 0.4]  # early repolarisation: diffuse
_RATE_ST_PATTERN = [0.2, 0.6, 0.0, 0.0, 0.3, 0.8, 1.0, 0.8]  # rate-related ST depression


def _territory_lead_mask() -> np.ndarray:
    """bool (3, 12): the leads of each territory, in TERRITORY_NAMES order."""
    mask = np.zeros((len(TERRITORIES), NUM_LEADS), dtype=bool)
    for row, leads in enumerate(TERRITORIES.values()):
        mask[row, [LEADS.index(lead) for lead in leads]] = True
    return mask


_TERRITORY_LEADS = _territory_lead_mask()


def _rotation(frontal: np.ndarray, horizontal: np.ndarray, sagittal: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations about z (frontal plane), y (horizontal) and x (sagittal), radians."""
    def about(axis: int, angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        out = np.zeros(angle.shape + (3, 3))
        out[..., axis, axis] = 1.0
        out[..., i, i], out[..., i, j], out[..., j, i], out[..., j, j] = c, -s, s, c
        return out

    return about(2, frontal) @ about(1, horizontal) @ about(0, sagittal)


# ====================================================================== per-record parameters
@dataclasses.dataclass
class _Params:
    """Everything random about a block of ``n`` records except the noise samples.

    Shapes: (n,) per record, (n, 3) dipole vectors, (n, 8) per independent lead,
    (n, B) per beat (B = _MAX_BEATS).
    """

    labels: np.ndarray  # bool (n, 5) in CLASSES order
    age: np.ndarray
    sex: np.ndarray
    # rhythm
    rr_sinus: np.ndarray  # (n, B) interval after beat i, sinus rhythm
    rr_afib: np.ndarray  # (n, B) the same under AF
    first_beat: np.ndarray  # (n,) fraction of the first interval before t = 0
    ectopic: np.ndarray  # bool (n, B) premature atrial beats (sinus rhythm only)
    # morphology
    lead_vectors: np.ndarray  # (n, 3, 8)
    p_vec: np.ndarray
    q_vec: np.ndarray
    r_vec: np.ndarray
    s_vec: np.ndarray
    t_vec: np.ndarray
    pr: np.ndarray  # (n,) P centre before R (s)
    p_width: np.ndarray
    qrs_width: np.ndarray  # (n,) width multiplier of Q, R, S (nonspecific prolongation)
    t_centre: np.ndarray  # (n,) T peak after R at RR = 1 s
    t_width: np.ndarray
    st_onset: np.ndarray  # (n,) J point after R (s)
    beat_qrs_amp: np.ndarray  # (n, B)
    beat_t_amp: np.ndarray  # (n, B)
    beat_p_amp: np.ndarray  # (n, B)
    # planted effects (drawn for every record, used where the label is set)
    ste_territory: np.ndarray  # int (n,)
    ste_amp8: np.ndarray  # (n, 8) mV per independent lead
    tinv_territory: np.ndarray
    tinv_depth8: np.ndarray  # (n, 8) mV (0 where the lead is not modified)
    tinv_degree: np.ndarray  # (n,) in (0, 1]: 1 turns T into -depth, less only flattens it
    qrsw_scale: np.ndarray  # (n,) width multiplier > 1
    qrsw_delay: np.ndarray  # (n,) extra delay of S (s)
    qrsw_vec: np.ndarray  # (n, 3) late terminal force
    rsr_vec: np.ndarray  # (n, 3) terminal force of incomplete RBBB (confounder)
    f_amp: np.ndarray
    f_freq: np.ndarray
    f_phase: np.ndarray  # (n, 3): carrier, frequency-modulation and amplitude-modulation
    f_vec: np.ndarray
    # confounders
    st_conf8: np.ndarray  # (n, 8) early repolarisation + rate-related ST shift (mV)
    j_notch8: np.ndarray  # (n, 8) J-wave amplitude of early repolarisation
    v1v2_t8: np.ndarray  # (n, 8) positional T inversion depth in V1/V2
    tremor_amp: np.ndarray
    tremor_freq: np.ndarray
    tremor_phase: np.ndarray
    wander_amp: np.ndarray  # (n, 8, 2)
    wander_freq: np.ndarray
    wander_phase: np.ndarray
    burst: np.ndarray  # bool (n,)
    burst_start: np.ndarray
    burst_length: np.ndarray
    burst_amp8: np.ndarray  # (n, 8) (0 for leads outside the burst)


def _draw_params(rng: np.random.Generator, n: int, d: SyntheticDifficulty) -> _Params:
    """Draw the parameters of ``n`` records. The order of draws is part of the format:
    changing it changes every synthetic data set."""
    B = _MAX_BEATS
    u = rng.random
    conf = d.confounder_strength
    p_conf = min(conf, 1.0)
    eff = d.effect_scale

    # ---- labels
    prevalence = np.array([d.afib_prevalence, d.qrsw_prevalence, d.ste_prevalence,
                           d.tinv_prevalence])
    abnormal = u((n, 4)) < prevalence
    labels = np.zeros((n, len(CLASSES)), dtype=bool)
    labels[:, [_K[c] for c in ("AFIB", "QRSW", "STE", "TINV")]] = abnormal
    labels[:, _K["NORM"]] = ~abnormal.any(axis=1)
    age = np.clip(np.round(rng.normal(60, 16, n)), 18, 95).astype(np.float32)
    # One severity in [0, 1] per abnormal class sets all of that class's effect sizes
    # together, so a mild case is mild in every respect (near-invisible at the low end).
    sev_afib, sev_qrsw, sev_ste, sev_tinv = u((4, n))
    sex = (u(n) < 0.5).astype(np.int8)

    # ---- rhythm
    hr_sinus = np.clip(rng.normal(72, 13, n), 45, 130)
    rr0 = 60.0 / hr_sinus
    strong_rsa = u(n) < 0.25 * p_conf
    rsa_amp = np.where(strong_rsa, u(n) * 0.08 + 0.04, u(n) * 0.04) * max(conf, 0.25)
    rsa_freq = u(n) * 0.2 + 0.15  # breaths per second
    rsa_phase = u(n) * 2 * np.pi
    beat = np.arange(B)
    rr_sinus = rr0[:, None] * (
        1 + rsa_amp[:, None] * np.sin(2 * np.pi * rsa_freq[:, None] * rr0[:, None] * beat
                                      + rsa_phase[:, None])
        + rng.normal(0, 0.012, (n, B))
    )
    # Premature atrial beats: beat i comes early (the interval before it shortens) and the
    # sinus node resets (the interval after it lengthens a little).
    has_ectopy = u(n) < 0.25 * p_conf
    ectopic = has_ectopy[:, None] & (u((n, B)) < 0.12)
    ectopic[:, :2] = False
    ectopic[:, 1:] &= ~ectopic[:, :-1]
    prematurity = u((n, B)) * 0.2 + 0.6
    shorten = np.ones((n, B))
    shorten[:, :-1] = np.where(ectopic[:, 1:], prematurity[:, 1:], 1.0)
    lengthen = np.where(ectopic, 1.0 + 0.5 * (1.0 - prematurity), 1.0)
    rr_sinus = np.clip(rr_sinus * shorten * lengthen, _MIN_RR, _MAX_RR)

    hr_afib = np.clip(rng.normal(82, 18, n), 50, 150)
    af_cv = eff * (0.05 + 0.15 * sev_afib)
    z = rng.normal(0, 1, (n, B))
    rr_afib = (60.0 / hr_afib)[:, None] * np.exp(af_cv[:, None] * z - af_cv[:, None] ** 2 / 2)
    rr_afib = np.clip(rr_afib, _MIN_RR, _MAX_RR)
    first_beat = u(n)

    # ---- morphology
    axis = np.deg2rad(d.axis_variation_deg)
    rotation = _rotation(rng.normal(0, axis, n), rng.normal(0, 0.75 * axis, n),
                         rng.normal(0, 0.5 * axis, n))
    # The T axis deviates a little more from the QRS axis; some healthy subjects have a
    # leftward T axis, which makes T negative in III (a look-alike of inferior TINV).
    t_frontal = rng.normal(0, np.deg2rad(8), n)
    leftward_t = u(n) < 0.15 * p_conf
    t_frontal = t_frontal - np.where(leftward_t, np.deg2rad(25 + 25 * u(n)) * min(conf, 1.5), 0.0)
    t_rotation = rotation @ _rotation(t_frontal, rng.normal(0, np.deg2rad(8), n), np.zeros(n))
    voltage = np.exp(rng.normal(0, d.amplitude_variation, n))

    def wave(vec: np.ndarray, rot: np.ndarray, spread: float) -> np.ndarray:
        scale = voltage * np.exp(rng.normal(0, spread, n))
        return np.einsum("nij,j->ni", rot, vec) * scale[:, None]

    p_vec = wave(_P_VEC, rotation, 0.45)
    q_vec = wave(_Q_VEC, rotation, 0.25)
    r_vec = wave(_R_VEC, rotation, 0.15)
    s_vec = wave(_S_VEC, rotation, 0.25)
    t_vec = wave(_T_VEC, t_rotation, 0.2)
    low_p = u(n) < 0.35 * p_conf
    p_vec *= np.where(low_p, 1 - p_conf * (1 - 0.3 * u(n)), 1.0)[:, None]  # down to ~0
    flat_t = u(n) < 0.15 * p_conf
    t_vec *= np.where(flat_t, 0.15 + 0.35 * u(n), 1.0)[:, None]

    # Electrode placement and body habitus: per-lead gain and a small rotation of each
    # precordial lead vector in the horizontal plane.
    gain = np.exp(rng.normal(0, 0.1, (n, 8)))
    turn = rng.normal(0, np.deg2rad(5), (n, 8))
    turn[:, :2] = 0.0  # limb leads are fixed by the electrode positions on the limbs
    lv = np.broadcast_to(_LEAD_VECTORS, (n, 3, 8)).copy()
    x, zz = lv[:, 0, :].copy(), lv[:, 2, :].copy()
    lv[:, 0, :] = x * np.cos(turn) - zz * np.sin(turn)
    lv[:, 2, :] = x * np.sin(turn) + zz * np.cos(turn)
    lead_vectors = lv * gain[:, None, :]

    pr = u(n) * 0.09 + 0.12
    p_width = u(n) * 0.008 + 0.018
    wide_normal = u(n) < 0.25 * p_conf
    qrs_width = np.where(wide_normal, 1.05 + 0.3 * u(n) * min(conf, 1.5), 0.9 + 0.2 * u(n))
    t_centre = u(n) * 0.06 + 0.24
    t_width = u(n) * 0.015 + 0.04
    st_onset = u(n) * 0.01 + 0.03

    resp_phase = rsa_phase[:, None] + 2 * np.pi * rsa_freq[:, None] * rr0[:, None] * beat
    beat_qrs_amp = 1 + 0.04 * np.sin(resp_phase) + rng.normal(0, 0.02, (n, B))
    beat_t_amp = 1 + rng.normal(0, 0.03, (n, B))
    beat_p_amp = 1 + rng.normal(0, 0.05, (n, B))
    # An ectopic P wave comes from elsewhere in the atria: different size, maybe inverted.
    beat_p_amp = np.where(ectopic, u((n, B)) * 1.2 - 0.6, beat_p_amp)

    # ---- planted effects
    jitter = np.exp(rng.normal(0, 0.2, (n, 8)))
    ste_territory = rng.integers(0, 3, n)
    ste_pattern = np.array([_STE_PATTERN[t] for t in TERRITORY_NAMES])[ste_territory]
    ste_amp8 = (eff * (0.01 + 0.13 * sev_ste))[:, None] * ste_pattern * jitter
    tinv_territory = rng.integers(0, 3, n)
    tinv_pattern = np.array([_TINV_PATTERN[t] for t in TERRITORY_NAMES])[tinv_territory]
    tinv_depth8 = (u(n) * 0.15 + 0.05)[:, None] * tinv_pattern * jitter
    tinv_degree = np.minimum(1.0, eff * (0.15 + 0.85 * sev_tinv))
    qrsw_scale = 1 + eff * (0.01 + 0.2 * sev_qrsw)
    qrsw_delay = eff * 0.011 * sev_qrsw
    rbbb = u(n) < 0.5
    terminal = np.where(rbbb[:, None], _RBBB_VEC, _LBBB_VEC)
    terminal_size = eff * (0.02 + 0.3 * sev_qrsw) * voltage
    qrsw_vec = np.einsum("nij,nj->ni", rotation, terminal) * terminal_size[:, None]
    # Incomplete right bundle-branch block (rSr' in V1): a normal variant with a small,
    # early terminal force, the look-alike of QRSW.
    rsr = u(n) < 0.15 * p_conf
    rsr_vec = np.einsum("nij,j->ni", rotation, _RBBB_VEC) * (
        np.where(rsr, conf * (u(n) * 0.25 + 0.05), 0.0) * voltage)[:, None]
    f_amp = eff * (0.01 + 0.05 * sev_afib)
    f_freq = u(n) * 4 + 4.5
    f_phase = u((n, 3)) * 2 * np.pi
    f_dir = _F_VEC + rng.normal(0, 0.2, (n, 3))
    f_vec = f_dir / np.linalg.norm(f_dir, axis=1, keepdims=True)

    # ---- confounders
    er = u(n) < 0.3 * p_conf
    er_amp = np.where(er, conf * (u(n) * 0.15 + 0.03), 0.0)
    rate_dep = -conf * 0.05 * np.clip((hr_sinus - 90) / 30, 0, 1) * u(n)
    st_conf8 = (er_amp[:, None] * np.array(_ER_PATTERN)
                + rate_dep[:, None] * np.array(_RATE_ST_PATTERN))
    st_conf8 = st_conf8 * np.exp(rng.normal(0, 0.2, (n, 8)))
    j_notch8 = 0.6 * er_amp[:, None] * np.array(_ER_PATTERN) * (u(n) < 0.5)[:, None]
    v1v2_t8 = np.zeros((n, 8))
    positional = u(n) < 0.3 * p_conf
    v1v2_t8[:, 2] = np.where(positional, conf * (u(n) * 0.13 + 0.02), 0.0)
    v1v2_t8[:, 3] = np.where(positional & (u(n) < 0.35), conf * (u(n) * 0.08 + 0.01), 0.0)
    tremor_amp = np.where(u(n) < 0.08 * p_conf, conf * (u(n) * 0.04 + 0.015), 0.0)
    tremor_freq = u(n) * 2 + 4
    tremor_phase = u(n) * 2 * np.pi
    wander_amp = d.wander_mv * (u((n, 8, 2)) * 0.7 + 0.3) / np.sqrt(2)
    wander_freq = u((n, 8, 2)) * 0.55 + 0.05
    wander_phase = u((n, 8, 2)) * 2 * np.pi
    burst = u(n) < d.burst_probability
    burst_start = u(n) * 9.0
    burst_length = u(n) * 1.5 + 0.5
    burst_amp8 = (u(n) * 0.2 + 0.05)[:, None] * (u((n, 8)) < 0.5)

    return _Params(
        labels=labels, age=age, sex=sex, rr_sinus=rr_sinus, rr_afib=rr_afib,
        first_beat=first_beat, ectopic=ectopic, lead_vectors=lead_vectors,
        p_vec=p_vec, q_vec=q_vec, r_vec=r_vec, s_vec=s_vec, t_vec=t_vec, pr=pr,
        p_width=p_width, qrs_width=qrs_width, t_centre=t_centre, t_width=t_width,
        st_onset=st_onset, beat_qrs_amp=beat_qrs_amp, beat_t_amp=beat_t_amp,
        beat_p_amp=beat_p_amp, ste_territory=ste_territory, ste_amp8=ste_amp8,
        tinv_territory=tinv_territory, tinv_depth8=tinv_depth8, tinv_degree=tinv_degree,
        qrsw_scale=qrsw_scale,
        qrsw_delay=qrsw_delay, qrsw_vec=qrsw_vec, rsr_vec=rsr_vec, f_amp=f_amp, f_freq=f_freq,
        f_phase=f_phase, f_vec=f_vec, st_conf8=st_conf8, j_notch8=j_notch8,
        v1v2_t8=v1v2_t8, tremor_amp=tremor_amp, tremor_freq=tremor_freq,
        tremor_phase=tremor_phase, wander_amp=wander_amp, wander_freq=wander_freq,
        wander_phase=wander_phase, burst=burst, burst_start=burst_start,
        burst_length=burst_length, burst_amp8=burst_amp8,
    )


# ====================================================================== rendering
def _bump(tau: np.ndarray, centre, width_left, width_right=None) -> np.ndarray:
    """Gaussian bump of height 1 at ``centre``, cut to exactly 0 beyond 3 widths.

    Compact support is what makes the evidence masks exact: outside a planted window the
    effect adds exactly 0.0. ``width_right`` (default: ``width_left``) makes it asymmetric.
    """
    offset = tau - centre
    width = width_left if width_right is None else np.where(offset < 0, width_left, width_right)
    z = offset / width
    return np.maximum(np.exp(-0.5 * z * z) - _EDGE, 0.0) * (1.0 / (1.0 - _EDGE))


def _plateau(tau: np.ndarray, start, end) -> np.ndarray:
    """1 on the middle of (start, end), cosine ramps over its first 25% and last 35%, 0 outside."""
    u = (tau - start) / (end - start)
    inside = (u > 0) & (u < 1)
    up = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / 0.25, 0, 1))
    down = 0.5 - 0.5 * np.cos(np.pi * np.clip((1 - u) / 0.35, 0, 1))
    return np.where(inside, up * down, 0.0)


def _beat_times(p: _Params, afib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (n, B) in seconds and the R-R interval (n, B) after each beat."""
    rr = np.where(afib[:, None], p.rr_afib, p.rr_sinus)
    start = -p.first_beat * rr[:, 0]
    r_times = start[:, None] + np.concatenate(
        [np.zeros((len(rr), 1)), np.cumsum(rr[:, :-1], axis=1)], axis=1)
    return r_times, rr


def _surrounding_beats(r_times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n, L) index of the last R peak at or before each sample (all rows in one search)."""
    n, beats = r_times.shape
    span = float(np.ceil(r_times.max() - min(r_times.min(), 0.0) + t[-1] + 1.0))
    row_offset = span * np.arange(n)[:, None]
    flat_r = (r_times - r_times.min() + row_offset).ravel()
    flat_t = (t[None, :] - r_times.min() + row_offset).ravel()
    index = np.searchsorted(flat_r, flat_t, side="right").reshape(n, len(t)) - 1
    return index - beats * np.arange(n)[:, None]


def _render_block(p: _Params, sampling_rate: int, noise_seeds: Sequence[np.random.SeedSequence],
                  d: SyntheticDifficulty, remove: frozenset[str]):
    """Signals float64 (n, L, 12) before quantisation and evidence bool (n, K, L, 12).

    ``noise_seeds``: one stream for the muscle-noise bursts and one for the white noise, so
    that the first m records of a block get the same noise whatever the block's length.
    """
    burst_rng, white_rng = (np.random.default_rng(s) for s in noise_seeds)
    n = len(p.labels)
    length = RECORD_SECONDS * sampling_rate
    t = np.arange(length) / sampling_rate
    has = {name: p.labels[:, k] for k, name in enumerate(CLASSES)}
    # What is *drawn into the signal*; labels and masks always follow ``has``.
    shows = {name: has[name] & (name not in remove) for name in has}

    r_times, rr = _beat_times(p, shows["AFIB"])
    rr_before = np.concatenate([rr[:, :1], rr[:, :-1]], axis=1)
    # QT follows the preceding R-R; both P and T are squeezed where they would otherwise
    # reach a neighbouring R peak (fast AF after a long pause, premature beats), so every
    # beat's waves end before the next beat's R peak and start after the previous one's.
    stretch = np.sqrt(rr_before)
    t_centre = p.t_centre[:, None] * stretch
    t_width = p.t_width[:, None] * stretch
    t_end = t_centre + 3 * 0.8 * t_width
    t_squeeze = np.minimum(1.0, 0.92 * rr / t_end)
    t_centre, t_width = t_centre * t_squeeze, t_width * t_squeeze
    p_start = p.pr[:, None] + 3 * p.p_width[:, None]
    p_squeeze = np.minimum(1.0, 0.92 * rr_before / p_start)
    p_centre = -p.pr[:, None] * p_squeeze
    p_width = p.p_width[:, None] * p_squeeze
    p_amp = p.beat_p_amp * ~shows["AFIB"][:, None]

    prev = _surrounding_beats(r_times, t)
    sides = {"prev": prev, "next": prev + 1}
    tau = {s: t[None, :] - np.take_along_axis(r_times, i, axis=1) for s, i in sides.items()}

    def at(side: str, per_beat: np.ndarray) -> np.ndarray:
        return np.take_along_axis(per_beat, sides[side], axis=1)

    # QRS geometry; QRSW widens Q, R and S, delays S and adds a late terminal force.
    wide = np.where(shows["QRSW"], p.qrsw_scale, 1.0) * p.qrs_width
    delay = np.where(shows["QRSW"], p.qrsw_delay, 0.0)
    q_c, q_w = -0.022 * wide, 0.008 * wide
    r_w = 0.011 * wide
    s_c, s_w = 0.022 * wide + delay, 0.009 * wide
    # Late terminal forces: QRSW's, and the small early one of incomplete RBBB.
    x_c, x_w = 0.04 * wide + delay, 0.012 * wide
    x_vec = p.qrsw_vec * shows["QRSW"][:, None]
    rsr_c, rsr_w = 0.04 * p.qrs_width, 0.012 * p.qrs_width

    dipole = np.zeros((n, length, 3))

    def add(shape: np.ndarray, vec: np.ndarray) -> None:
        dipole[...] += shape[..., None] * vec[:, None, :]

    col = lambda a: np.asarray(a)[:, None]  # noqa: E731  per-record value against time
    for side in ("prev", "next"):
        s_tau = tau[side]
        amp = at(side, p.beat_qrs_amp)
        add(amp * _bump(s_tau, col(q_c), col(q_w)), p.q_vec)
        add(amp * _bump(s_tau, 0.0, col(r_w)), p.r_vec)
        add(amp * _bump(s_tau, col(s_c), col(s_w)), p.s_vec)
        add(amp * _bump(s_tau, col(x_c), col(x_w)), x_vec)
        add(amp * _bump(s_tau, col(rsr_c), col(rsr_w)), p.rsr_vec)
    # P waves lie before their R peak, T waves and ST segments after it.
    add(at("next", p_amp) * _bump(tau["next"], at("next", p_centre), at("next", p_width)), p.p_vec)
    t_shape = _bump(tau["prev"], at("prev", t_centre), 1.2 * at("prev", t_width),
                    0.8 * at("prev", t_width))
    t_beat = at("prev", p.beat_t_amp)
    add(t_beat * t_shape, p.t_vec)
    if shows["AFIB"].any():
        phase = (2 * np.pi * col(p.f_freq) * t + col(p.f_phase[:, 0])
                 + 0.8 * np.sin(2 * np.pi * 0.7 * t + col(p.f_phase[:, 1])))
        envelope = 1 + 0.3 * np.sin(2 * np.pi * 0.2 * t + col(p.f_phase[:, 2]))
        add(col(p.f_amp * shows["AFIB"]) * envelope * np.sin(phase), p.f_vec)

    leads8 = np.einsum("nlj,njm->nlm", dipole, p.lead_vectors)
    del dipole

    # Lead-space changes of repolarisation (they are not dipolar in real hearts either).
    st_end = np.maximum(t_centre, col(p.st_onset) + 0.05)
    st_shape = _plateau(tau["prev"], col(p.st_onset), at("prev", st_end))
    ste = p.ste_amp8 * shows["STE"][:, None]
    leads8 += st_shape[..., None] * (ste + p.st_conf8)[:, None, :]
    leads8 += _bump(tau["prev"], col(p.st_onset), 0.008)[..., None] * p.j_notch8[:, None, :]
    # T inversion of degree a in a modified lead: T -> T - a * (T + depth), i.e. from
    # flattening (small a) to full inversion to -depth (a = 1), whatever T was before.
    t_in_lead = np.einsum("nj,njm->nm", p.t_vec, p.lead_vectors)
    for depth8, degree in ((p.tinv_depth8, p.tinv_degree * shows["TINV"]), (p.v1v2_t8, 1.0)):
        modified = (depth8 > 0) * np.asarray(degree).reshape(-1, 1)
        shape = t_shape[..., None] * modified[:, None, :]
        leads8 -= shape * (t_beat[..., None] * t_in_lead[:, None, :] + depth8[:, None, :])

    # Electrode-level disturbances (they obey the lead relations).
    for j in range(p.wander_amp.shape[2]):
        leads8 += p.wander_amp[:, None, :, j] * np.sin(
            2 * np.pi * p.wander_freq[:, None, :, j] * t[None, :, None]
            + p.wander_phase[:, None, :, j])
    if p.tremor_amp.any():
        tremor = col(p.tremor_amp) * np.sin(2 * np.pi * col(p.tremor_freq) * t
                                            + col(p.tremor_phase))
        leads8[..., :2] += tremor[..., None] * np.array([1.0, -0.6])
    rows = np.flatnonzero(p.burst)
    if len(rows):
        window = _plateau(t[None, :], col(p.burst_start[rows]),
                          col(p.burst_start[rows] + p.burst_length[rows]))
        emg = burst_rng.standard_normal((len(rows), length, 8))
        leads8[rows] += emg * window[..., None] * p.burst_amp8[rows][:, None, :]

    lead_i, lead_ii = leads8[..., 0], leads8[..., 1]
    signals = np.empty((n, length, NUM_LEADS))
    signals[..., 0] = lead_i
    signals[..., 1] = lead_ii
    signals[..., 2] = lead_ii - lead_i
    signals[..., 3] = -(lead_i + lead_ii) / 2
    signals[..., 4] = lead_i - lead_ii / 2
    signals[..., 5] = lead_ii - lead_i / 2
    signals[..., 6:] = leads8[..., 2:]
    del leads8
    if d.noise_mv > 0:
        signals += d.noise_mv * white_rng.standard_normal((n, length, NUM_LEADS))

    # ---- evidence masks, from the same windows as the effects
    evidence = np.zeros((n, len(CLASSES), length, NUM_LEADS), dtype=bool)
    evidence[has["AFIB"], _K["AFIB"]] = True
    evidence[has["NORM"], _K["NORM"]] = True
    # QRSW's mask is the widened extent (whether or not remove_effects leaves it out).
    full = p.qrsw_scale * p.qrs_width
    qrs_start = -0.022 * full - 3 * 0.008 * full
    qrs_end = 0.04 * full + p.qrsw_delay + 3 * 0.012 * full  # end of the terminal force
    in_qrs = np.zeros((n, length), dtype=bool)
    for side in ("prev", "next"):
        in_qrs |= (tau[side] > col(qrs_start)) & (tau[side] < col(qrs_end))
    evidence[:, _K["QRSW"]] = (in_qrs & col(has["QRSW"]))[..., None]
    evidence[:, _K["STE"]] = ((st_shape > 0) & col(has["STE"]))[..., None] & \
        _TERRITORY_LEADS[p.ste_territory][:, None, :]
    evidence[:, _K["TINV"]] = ((t_shape > 0) & col(has["TINV"]))[..., None] & \
        _TERRITORY_LEADS[p.tinv_territory][:, None, :]
    return signals, evidence


# ====================================================================== public API
def make_synthetic(
    n: int,
    sampling_rate: int = 100,
    seed: int = 0,
    *,
    difficulty: SyntheticDifficulty | str | None = None,
    remove_effects: Sequence[str] = (),
    **difficulty_overrides: float,
) -> EcgDataset:
    """Generate ``n`` labelled 10 s 12-lead ECGs with ground-truth evidence masks.

    Args:
      n: number of records.
      sampling_rate: samples per second (any positive integer; PTB-XL uses 100 and 500).
      seed: non-negative integer; the same seed gives bit-identical arrays.
      difficulty: the knobs, or the name of a level in ``LEVELS`` (``"easy"``,
        ``"default"``, ``"hard"``); default ``DEFAULT_DIFFICULTY``.
      remove_effects: abnormal classes (e.g. ``("STE",)``) whose planted effect is left out
        of the signal while labels, masks and every random draw stay the same: the
        counterfactual twin of each record, for testing explanations. (Removing ``AFIB``
        restores sinus rhythm, which moves the beats and the other classes' masks.)
      **difficulty_overrides: single knobs replaced on top of ``difficulty``
        (e.g. ``noise_mv=0``).

    Returns:
      ``EcgDataset`` with float32 ``signals (n, 10 * sampling_rate, 12)`` in mV (multiples
      of 0.001), ``labels (n, 5)`` over ``CLASSES``, ``evidence`` bool ``(n, 5, L, 12)``,
      ``ecg_ids = patient_ids = 1..n``, balanced label-stratified ``folds`` 1..10, synthetic
      ``age`` and ``sex``, ``task = "synthetic"``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) \
            or sampling_rate < 1:
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    difficulty = difficulty_level(difficulty)
    if difficulty_overrides:
        known = {f.name for f in dataclasses.fields(SyntheticDifficulty)}
        unknown = sorted(set(difficulty_overrides) - known)
        if unknown:
            raise ValueError(f"unknown difficulty knob(s) {unknown}; known: {sorted(known)}")
        difficulty = dataclasses.replace(difficulty, **difficulty_overrides)
    remove = frozenset(remove_effects)
    bad = sorted(remove - (set(CLASSES) - {"NORM"}))
    if bad:
        raise ValueError(f"remove_effects names {bad}; choose from "
                         f"{[c for c in CLASSES if c != 'NORM']}")

    length = RECORD_SECONDS * int(sampling_rate)
    signals = np.empty((n, length, NUM_LEADS), dtype=np.float32)
    evidence = np.empty((n, len(CLASSES), length, NUM_LEADS), dtype=bool)
    labels = np.empty((n, len(CLASSES)), dtype=np.float32)
    age = np.empty(n, dtype=np.float32)
    sex = np.empty(n, dtype=np.int8)
    for block, start in enumerate(range(0, n, _BLOCK)):
        streams = [np.random.SeedSequence(int(seed), spawn_key=(block, s)) for s in range(3)]
        # Draw a whole block even when fewer records are needed: record i must not depend on n.
        params = _draw_params(np.random.default_rng(streams[0]), _BLOCK, difficulty)
        stop = min(start + _BLOCK, n)
        params = _take(params, stop - start)
        block_signals, block_evidence = _render_block(params, int(sampling_rate), streams[1:],
                                                      difficulty, remove)
        # 1 uV steps: what WFDB fmt 16 at 1000 units/mV stores exactly.
        signals[start:stop] = np.round(block_signals * 1000.0) / 1000.0
        evidence[start:stop] = block_evidence
        labels[start:stop] = params.labels
        age[start:stop] = params.age
        sex[start:stop] = params.sex

    ids = np.arange(1, n + 1, dtype=np.int64)
    return EcgDataset(
        signals=signals, labels=labels, classes=CLASSES, ecg_ids=ids, patient_ids=ids.copy(),
        folds=_balanced_folds(labels, seed), age=age, sex=sex,
        sampling_rate=int(sampling_rate), task=TASK, evidence=evidence,
    )


def _take(p: _Params, count: int) -> _Params:
    """The first ``count`` records of a block of parameters."""
    return _Params(**{f.name: getattr(p, f.name)[:count] for f in dataclasses.fields(p)})


def _balanced_folds(labels: np.ndarray, seed: int) -> np.ndarray:
    """Folds 1..10, sizes differing by at most one, each label combination spread evenly.

    Records are ordered by label combination (randomly within one) and dealt out to the
    folds in turn, which stratifies every class the way PTB-XL's ``strat_fold`` does.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_FOLD_STREAM,)))
    combination = labels.astype(np.int64) @ (1 << np.arange(labels.shape[1]))
    order = np.lexsort((rng.random(len(labels)), combination))
    folds = np.empty(len(labels), dtype=np.int64)
    folds[order] = (np.arange(len(labels)) + rng.integers(10)) % 10 + 1
    return folds


# ====================================================================== PTB-XL layout on disk
_DATABASE_COLUMNS = (
    "ecg_id", "patient_id", "age", "sex", "height", "weight", "nurse", "site", "device",
    "recording_date", "report", "scp_codes", "heart_axis", "infarction_stadium1",
    "infarction_stadium2", "validated_by", "second_opinion", "initial_autogenerated_report",
    "validated_by_human", "baseline_drift", "static_noise", "burst_noise",
    "electrodes_problems", "extra_beats", "pacemaker", "strat_fold", "filename_lr",
    "filename_hr",
)
_STATEMENT_COLUMNS = (
    "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass",
    "Statement Category", "SCP-ECG Statement Description", "AHA code", "aECG REFID",
    "CDISC Code", "DICOM Code",
)
_HEADER_LEADS = tuple(lead.upper() if lead.startswith("aV") else lead for lead in LEADS)
_SUFFIX = {100: "lr", 500: "hr"}


def record_path(ecg_id: int, sampling_rate: int) -> str:
    """PTB-XL's relative record path, e.g. ``records100/01000/01001_lr`` (no extension)."""
    if sampling_rate not in _SUFFIX:
        raise EcgDataError(f"the PTB-XL layout has records at 100 and 500 Hz only, "
                           f"not {sampling_rate} Hz")
    folder = (int(ecg_id) // 1000) * 1000
    return f"records{sampling_rate}/{folder:05d}/{int(ecg_id):05d}_{_SUFFIX[sampling_rate]}"


def _database_table(dataset: EcgDataset):
    import pandas as pd

    codes = [
        "{" + ", ".join(f"'{c}': 100.0" for c, on in zip(dataset.classes, row) if on) + "}"
        for row in dataset.labels > 0.5
    ]
    frame = pd.DataFrame({column: [""] * len(dataset) for column in _DATABASE_COLUMNS})
    frame["ecg_id"] = dataset.ecg_ids
    frame["patient_id"] = dataset.patient_ids.astype(np.float64)
    frame["age"] = dataset.age.astype(np.float64)
    frame["sex"] = dataset.sex.astype(np.int64)
    frame["scp_codes"] = codes
    frame["strat_fold"] = dataset.folds
    frame["filename_lr"] = [record_path(i, 100) for i in dataset.ecg_ids]
    frame["filename_hr"] = [record_path(i, 500) for i in dataset.ecg_ids]
    return frame


def _write_wfdb_record(path: Path, digital: np.ndarray, sampling_rate: int) -> None:
    """Write ``path.hea`` and ``path.dat`` for int16 samples ``(L, 12)`` (1 uV units).

    Byte for byte what ``wfdb.wrsamp`` writes for fmt 16, gain 1000/mV, baseline 0 (the
    format of PTB-XL's headers; a test checks the equality), about 100 times faster: wrsamp
    spends ~40 ms per record in its checks, which is minutes for 10,000 records.
    """
    name = path.name
    checksums = digital.astype(np.int64).sum(axis=0) % 65536
    lines = [f"{name} {NUM_LEADS} {sampling_rate} {len(digital)}"]
    for lead, first, checksum in zip(_HEADER_LEADS, digital[0], checksums):
        lines.append(f"{name}.dat 16 1000.0(0)/mV 16 0 {int(first)} {int(checksum)} 0 {lead}")
    path.with_name(name + ".hea").write_text("\n".join(lines) + "\n")
    # fmt 16: little-endian 16-bit samples, interleaved (sample by sample, lead by lead).
    path.with_name(name + ".dat").write_bytes(np.ascontiguousarray(digital, dtype="<i2").tobytes())


def write_synthetic(dataset: EcgDataset, out_dir: str | os.PathLike) -> Path:
    """Write ``dataset`` as a PhysioNet PTB-XL folder that ``load_synthetic`` reads back.

    Writes ``ptbxl_database.csv`` (PTB-XL's 28 columns; ``scp_codes`` like
    ``"{'STE': 100.0}"``), ``scp_statements.csv`` (one diagnostic statement per class whose
    ``diagnostic_class`` is the class itself, so the ``superdiagnostic`` task yields exactly
    these classes), the WFDB records (``records100/00000/00001_lr.{hea,dat}``, or
    ``records500/.../_hr``; fmt 16, gain 1000/mV, baseline 0, 1000 records per folder) and
    ``evidence_{rate}.npz`` (bit-packed masks, their shape, classes and ecg_ids).

    The 100 Hz and 500 Hz versions of one data set (same seed) can share a folder: the
    metadata is the same; writing a *different* data set into a folder raises.

    Returns:
      The folder.
    Raises:
      EcgDataError: a rate other than 100/500, no evidence, values outside 16 bits, or a
        folder that already holds a different data set.
    """
    import pandas as pd

    out = Path(out_dir)
    rate = dataset.sampling_rate
    record_path(1, rate)  # checks the rate
    if dataset.evidence is None:
        raise EcgDataError("write_synthetic needs a dataset with evidence masks "
                           "(from make_synthetic)")
    if dataset.length != RECORD_SECONDS * rate:
        raise EcgDataError(f"records have {dataset.length} samples; PTB-XL records are "
                           f"{RECORD_SECONDS} s = {RECORD_SECONDS * rate} samples at {rate} Hz")
    digital = np.round(dataset.signals.astype(np.float64) * 1000.0)
    limit = np.iinfo(np.int16).max
    if np.abs(digital).max(initial=0) > limit:
        row = int(np.argmax(np.abs(digital).max(axis=(1, 2))))
        raise EcgDataError(f"ecg_id {dataset.ecg_ids[row]} exceeds +-{limit / 1000} mV, the "
                           f"range of 16-bit samples at 1000 units/mV")
    digital = digital.astype(np.int16)

    out.mkdir(parents=True, exist_ok=True)
    table = _database_table(dataset)
    database = out / "ptbxl_database.csv"
    if database.exists():
        old = pd.read_csv(database)
        same = (len(old) == len(table)
                and np.array_equal(old["ecg_id"].to_numpy(), table["ecg_id"].to_numpy())
                and list(old["scp_codes"]) == list(table["scp_codes"])
                and np.array_equal(old["strat_fold"].to_numpy(), table["strat_fold"].to_numpy()))
        if not same:
            raise EcgDataError(f"{database} already describes a different data set; write "
                               f"into an empty folder")
    table.to_csv(database, index=False)
    statements = pd.DataFrame(
        {column: [""] * len(dataset.classes) for column in _STATEMENT_COLUMNS},
        index=pd.Index(dataset.classes),
    )
    statements["description"] = [CLASS_DESCRIPTIONS.get(c, c) for c in dataset.classes]
    statements["diagnostic"] = 1.0
    statements["form"] = [1.0 if c in ("QRSW", "STE", "TINV") else np.nan for c in dataset.classes]
    statements["rhythm"] = [1.0 if c == "AFIB" else np.nan for c in dataset.classes]
    statements["diagnostic_class"] = list(dataset.classes)
    statements["diagnostic_subclass"] = list(dataset.classes)
    statements["Statement Category"] = "synthetic"
    statements["SCP-ECG Statement Description"] = statements["description"]
    statements.to_csv(out / "scp_statements.csv")

    for row, ecg_id in enumerate(dataset.ecg_ids):
        relative = record_path(int(ecg_id), rate)
        folder = out / os.path.dirname(relative)
        folder.mkdir(parents=True, exist_ok=True)
        _write_wfdb_record(folder / os.path.basename(relative), digital[row], rate)

    np.savez_compressed(
        out / f"evidence_{rate}.npz",
        packed=np.packbits(dataset.evidence.reshape(-1)),
        shape=np.array(dataset.evidence.shape, dtype=np.int64),
        classes=np.array(dataset.classes),
        ecg_ids=dataset.ecg_ids,
    )
    return out


def load_synthetic(root: str | os.PathLike, sampling_rate: int = 100,
                   **load_kwargs) -> EcgDataset:
    """Read a folder written by :func:`write_synthetic`, evidence masks included.

    Signals, labels and folds come through :func:`imn.data.ptbxl.load_ptbxl` (task
    ``superdiagnostic``, by default without its cache), exactly as a user's PTB-XL would;
    classes that no record carries are restored from the evidence file so the label columns
    stay ``CLASSES``. ``load_kwargs`` go to ``load_ptbxl`` (e.g. ``use_cache=True``,
    ``workers=4``, ``progress=True``: reading 10,000 records one by one takes minutes).

    Raises:
      EcgDataError: a missing or malformed evidence file, or one that does not match the
        records (classes, ecg_ids or shape).
    """
    from imn.data.ptbxl import load_ptbxl

    root = Path(root)
    path = root / f"evidence_{sampling_rate}.npz"
    if not path.is_file():
        raise EcgDataError(f"evidence file {path} is missing (was the folder written by "
                           f"write_synthetic at {sampling_rate} Hz?)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            packed, shape = stored["packed"], tuple(int(s) for s in stored["shape"])
            classes = tuple(str(c) for c in stored["classes"])
            ecg_ids = stored["ecg_ids"].astype(np.int64)
    except (KeyError, ValueError, OSError) as err:
        raise EcgDataError(f"cannot read evidence file {path}: {err}") from err

    load_kwargs.setdefault("use_cache", False)
    dataset = load_ptbxl(root, "superdiagnostic", sampling_rate, **load_kwargs)
    unknown = sorted(set(dataset.classes) - set(classes))
    if unknown:
        raise EcgDataError(f"{root / 'ptbxl_database.csv'} has classes {unknown} that the "
                           f"evidence file {path} (classes {list(classes)}) lacks")
    if not np.array_equal(dataset.ecg_ids, ecg_ids):
        raise EcgDataError(f"evidence file {path} holds {len(ecg_ids)} records whose ecg_ids "
                           f"differ from the {len(dataset)} labelled records in {root}")
    expected = (len(dataset), len(classes), dataset.length, NUM_LEADS)
    if shape != expected or packed.size * 8 < int(np.prod(shape)):
        raise EcgDataError(f"evidence file {path} has shape {shape} ({packed.size} packed "
                           f"bytes); the records need {expected}")
    evidence = np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).view(bool)
    labels = np.zeros((len(dataset), len(classes)), dtype=np.float32)
    for k, name in enumerate(dataset.classes):
        labels[:, classes.index(name)] = dataset.labels[:, k]
    return dataclasses.replace(dataset, labels=labels, classes=classes, evidence=evidence,
                               task=TASK)
