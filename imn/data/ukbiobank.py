"""UK Biobank resting 12-lead ECGs (field 20205): the acquisition software's XML export.

The files (``<eid>_20205_<instance>_0.xml``) come from GE CardioSoft and hold, under the
root ``CardiologyXML``:

* ``StripData``: ``NumberOfLeads``, ``SampleRate units="Hz"`` (500),
  ``ChannelSampleCountTotal`` (5000), ``Resolution units="uVperLsb"`` (the ADC step, usually
  5 uV) and one ``WaveformData lead="I"`` ... ``lead="V6"`` per lead, its samples as
  comma-separated integers (line breaks and tabs allowed between them);
* ``RestingECGMeasurements``: the device's own measurements, each an element with a
  ``units`` attribute (``VentricularRate units="BPM"``, ``PQInterval units="ms"``,
  ``PDuration``, ``QRSDuration``, ``QTInterval``, ``QTCInterval``, ``RRInterval``,
  ``PPInterval`` (ms), ``PAxis``, ``RAxis``, ``TAxis`` (degrees), ``POnset``, ``QOnset``,
  ``TOffset``, ...), and ``MedianSamples`` (a median beat per lead, same layout as the strip).

The data are under UK Biobank's access control; the tests write a file of this layout.
"""

from __future__ import annotations

import dataclasses
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imn.data.dataset import LEADS, NUM_LEADS, EcgDataError, canonical_lead_name

ROOT_TAG = "CardiologyXML"
# Resolution units the reader converts to mV per ADC step.
_MV_PER_UNIT = {"uvperlsb": 1e-3, "uv/lsb": 1e-3, "mvperlsb": 1.0, "nvperlsb": 1e-6}


@dataclasses.dataclass
class UkbEcg:
    """One UK Biobank resting ECG.

    Attributes:
      signal: float32 ``(L, 12)`` in mV, leads in ``LEADS`` order (L = 5000 at 500 Hz).
      sampling_rate: Hz, from ``StripData/SampleRate``.
      measurements: the device's measurements, name -> value (float; NaN if not a number).
      units: measurement name -> its ``units`` attribute ("" if none).
      median_beats: float32 ``(M, 12)`` mV median beat per lead, or None if absent.
      path: the file.
    """

    signal: np.ndarray
    sampling_rate: int
    measurements: dict[str, float]
    units: dict[str, str]
    median_beats: np.ndarray | None
    path: Path


def _child(parent: ET.Element, tag: str, path: Path, where: str) -> ET.Element:
    node = parent.find(tag)
    if node is None:
        raise EcgDataError(f"{path}: no <{tag}> in <{where}> (not a UK Biobank resting-ECG XML?)")
    return node


def _number(node: ET.Element, path: Path, where: str) -> float:
    text = (node.text or "").strip()
    try:
        return float(text)
    except ValueError:
        raise EcgDataError(f"{path}: <{where}> holds {text!r}, not a number") from None


def _waveforms(section: ET.Element, path: Path, where: str, resolution_mv: float,
               expected: int | None) -> np.ndarray:
    """The ``WaveformData`` leads of ``section`` as float32 ``(samples, 12)`` mV in LEADS order."""
    by_lead: dict[str, np.ndarray] = {}
    for node in section.findall("WaveformData"):
        name = canonical_lead_name(node.get("lead", ""))
        if name not in LEADS:
            raise EcgDataError(f"{path}: <{where}/WaveformData> has unknown lead {node.get('lead')!r}")
        if name in by_lead:
            raise EcgDataError(f"{path}: lead {name} appears twice in <{where}>")
        text = (node.text or "").replace("\n", "").replace("\t", "").replace(" ", "").strip(",")
        try:
            by_lead[name] = np.array([int(v) for v in text.split(",")], dtype=np.int64) if text \
                else np.zeros(0, np.int64)
        except ValueError:
            bad = next(v for v in text.split(",") if not v.lstrip("-").isdigit())
            raise EcgDataError(f"{path}: lead {name} of <{where}> holds {bad!r}, not an integer "
                               f"sample") from None
    missing = [lead for lead in LEADS if lead not in by_lead]
    if missing:
        raise EcgDataError(f"{path}: <{where}> lacks lead(s) {missing}; found {sorted(by_lead)}")
    lengths = {lead: len(v) for lead, v in by_lead.items()}
    if len(set(lengths.values())) != 1:
        raise EcgDataError(f"{path}: leads of <{where}> differ in length: {lengths}")
    length = next(iter(lengths.values()))
    if expected is not None and length != expected:
        raise EcgDataError(f"{path}: <{where}> leads have {length} samples; "
                           f"ChannelSampleCountTotal says {expected}")
    digital = np.stack([by_lead[lead] for lead in LEADS], axis=1)
    return (digital * resolution_mv).astype(np.float32)


def _resolution_mv(section: ET.Element, path: Path, where: str) -> float:
    node = _child(section, "Resolution", path, where)
    units = (node.get("units") or "uVperLsb").strip().lower()
    if units not in _MV_PER_UNIT:
        raise EcgDataError(f"{path}: <{where}/Resolution> has units {node.get('units')!r}; "
                           f"expected one of uVperLsb, mVperLsb, nVperLsb")
    value = _number(node, path, f"{where}/Resolution")
    if not value > 0:
        raise EcgDataError(f"{path}: <{where}/Resolution> is {value}; it must be > 0")
    return value * _MV_PER_UNIT[units]


def read_ukb_xml(path: str | os.PathLike) -> UkbEcg:
    """Read one UK Biobank resting-ECG XML file.

    Raises:
      EcgDataError naming the file and the problem (not XML, not ``CardiologyXML``, a
      missing section or lead, a non-integer sample, lengths that disagree, bad units).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise EcgDataError(f"UK Biobank ECG file {path} does not exist") from None
    except ET.ParseError as err:
        raise EcgDataError(f"{path}: not well-formed XML ({err})") from None
    if root.tag != ROOT_TAG:
        raise EcgDataError(f"{path}: root element is <{root.tag}>; a UK Biobank resting ECG has "
                           f"<{ROOT_TAG}>")
    strip = _child(root, "StripData", path, ROOT_TAG)
    rate_value = _number(_child(strip, "SampleRate", path, "StripData"), path, "StripData/SampleRate")
    if not (rate_value > 0 and float(rate_value).is_integer()):
        raise EcgDataError(f"{path}: <StripData/SampleRate> is {rate_value}; expected a positive "
                           f"integer (500 Hz)")
    count_node = strip.find("ChannelSampleCountTotal")
    expected = None if count_node is None else int(_number(count_node, path,
                                                            "StripData/ChannelSampleCountTotal"))
    signal = _waveforms(strip, path, "StripData", _resolution_mv(strip, path, "StripData"), expected)
    if len(signal) == 0:
        raise EcgDataError(f"{path}: <StripData> leads hold no samples")

    measurements: dict[str, float] = {}
    units: dict[str, str] = {}
    median = None
    section = root.find("RestingECGMeasurements")
    if section is not None:
        for node in section:
            if node.tag == "MedianSamples" or len(node):
                continue
            text = (node.text or "").strip()
            try:
                measurements[node.tag] = float(text)
            except ValueError:
                measurements[node.tag] = math.nan
            units[node.tag] = node.get("units", "")
        median_node = section.find("MedianSamples")
        if median_node is not None and median_node.find("WaveformData") is not None:
            median = _waveforms(median_node, path, "RestingECGMeasurements/MedianSamples",
                                _resolution_mv(median_node, path, "MedianSamples"), None)
    return UkbEcg(signal=signal, sampling_rate=int(rate_value), measurements=measurements,
                  units=units, median_beats=median, path=path)


def read_ukb_folder(paths: Sequence[str | os.PathLike], *, progress: bool = False,
                    on_error: str = "raise") -> tuple[np.ndarray, list[UkbEcg], dict[str, str]]:
    """Read many files into ``signals (N, L, 12)`` (all must share rate and length).

    ``on_error="skip"`` leaves unreadable files out and returns them as path -> message;
    ``"raise"`` raises one :class:`EcgDataError` listing every bad file.
    Returns ``(signals, records, errors)``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    records, errors = [], {}
    for path in tqdm(list(paths), desc="UK Biobank XML", unit="file", disable=not progress):
        try:
            records.append(read_ukb_xml(path))
        except EcgDataError as err:
            errors[str(path)] = str(err)
    if errors and on_error == "raise":
        raise EcgDataError(f"{len(errors)} UK Biobank file(s) unreadable:\n  " + "\n  ".join(errors.values()))
    shapes = {(r.sampling_rate, r.signal.shape) for r in records}
    if len(shapes) > 1:
        raise EcgDataError(f"UK Biobank files differ in rate / shape: {sorted(shapes)}")
    signals = np.stack([r.signal for r in records]) if records else np.zeros((0, 0, NUM_LEADS), np.float32)
    return signals, records, errors


__all__ = ["ROOT_TAG", "UkbEcg", "read_ukb_folder", "read_ukb_xml"]
