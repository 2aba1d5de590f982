"""Compact, exactly specified encodings of the arrays a report embeds.

The page must stay near 20 MB for 50 ECGs x 8 methods at 100 Hz, so:

* overlays (attributions, IMN's W) are averaged into bins of at most ``OVERLAY_RATE`` Hz
  and stored as 8-bit mu-law codes (mu = 255) of ``value / peak``, with ``peak`` the
  largest ``|value|`` of that ECG's map (all leads): a decoded value is off by at most
  ``MULAW_RELATIVE_ERROR * (|value| + peak / 255)`` (2.2 % of the value for values well above
  ``peak / 255``, 4.4 % at it); code -128 is "undefined";
* signals are averaged into bins of at most ``SIGNAL_RATE`` Hz and stored as int16
  microvolts (or 1/1000 of a normalised unit);
* arrays are little-endian, time-major ``(T, 12)``, base64 text.

The page's JavaScript decodes with the same formulas (``decodeMulaw`` in ``app.js``);
:func:`mulaw_decode` is the reference the tests hold it to.
"""

from __future__ import annotations

import base64

import numpy as np

MU = 255.0
LEVELS = 127
UNDEFINED = -128
OVERLAY_RATE = 100
SIGNAL_RATE = 250
# Half a code step of the mu-law curve as a relative change of 1 + mu |v| / peak.
MULAW_RELATIVE_ERROR = float(np.expm1(0.5 * np.log1p(MU) / LEVELS))
_SIGNAL_SCALE = 1000.0  # int16 units per signal unit (microvolts per mV)


def bin_factor(sampling_rate: int, limit: int) -> int:
    """Samples averaged into one stored value: the smallest divisor of the rate that brings
    it to at most ``limit`` Hz (1 when it is already there)."""
    for factor in range(1, sampling_rate + 1):
        if sampling_rate % factor == 0 and sampling_rate // factor <= limit:
            return factor
    return sampling_rate


def bin_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """``(L, C)`` -> ``(L // factor, C)`` means of consecutive samples (NaN ignored; a bin
    with no finite value stays NaN). A trailing partial bin is dropped."""
    values = np.asarray(values, np.float64)
    if factor == 1:
        return values
    length = values.shape[0] // factor * factor
    blocks = values[:length].reshape(length // factor, factor, *values.shape[1:])
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=1)
    sums = np.where(finite, blocks, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mulaw_encode(values: np.ndarray) -> tuple[np.ndarray, float]:
    """int8 codes of ``values`` (any shape) and their ``peak`` (max finite ``|v|``, 0 when
    there is none). NaN becomes ``UNDEFINED``."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    peak = float(np.abs(values[finite]).max()) if finite.any() else 0.0
    if peak == 0.0:
        return np.where(finite, 0, UNDEFINED).astype(np.int8), 0.0
    scaled = np.clip(np.abs(np.where(finite, values, 0.0)) / peak, 0.0, 1.0)
    codes = np.rint(LEVELS * np.log1p(MU * scaled) / np.log1p(MU)) * np.sign(values)
    return np.where(finite, codes, UNDEFINED).astype(np.int8), peak


def mulaw_decode(codes: np.ndarray, peak: float) -> np.ndarray:
    """The values ``codes`` stand for (NaN for ``UNDEFINED``)."""
    codes = np.asarray(codes, np.int8).astype(np.float64)
    magnitude = peak * np.expm1(np.abs(codes) / LEVELS * np.log1p(MU)) / MU
    return np.where(codes == UNDEFINED, np.nan, np.sign(codes) * magnitude)


def b64(array: np.ndarray) -> str:
    """Base64 text of the array's little-endian bytes, C order."""
    array = np.ascontiguousarray(array)
    return base64.b64encode(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")


def encode_overlay(values: np.ndarray, factor: int) -> dict:
    """``(L, 12)`` map -> ``{"peak", "q"}`` after averaging over ``factor`` samples."""
    codes, peak = mulaw_encode(bin_mean(values, factor))
    return {"peak": peak, "q": b64(codes)}


def encode_signal(signal: np.ndarray, factor: int) -> str:
    """``(L, 12)`` signal -> base64 int16 of ``1000 x`` its bin means (microvolts for mV)."""
    binned = np.nan_to_num(bin_mean(signal, factor))
    return b64(np.clip(np.rint(binned * _SIGNAL_SCALE), -32767, 32767).astype(np.int16))


def spans_seconds(mask: np.ndarray, sampling_rate: int) -> list[list[list[float]]]:
    """Per lead, the ``[start_s, stop_s]`` of the True runs of an ``(L, 12)`` mask."""
    spans = []
    for lead in range(mask.shape[1]):
        padded = np.concatenate([[False], mask[:, lead].astype(bool), [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        spans.append([[float(a) / sampling_rate, float(b) / sampling_rate]
                      for a, b in zip(edges[0::2], edges[1::2])])
    return spans
