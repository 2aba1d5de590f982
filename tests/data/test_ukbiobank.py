"""The UK Biobank resting-ECG XML reader, on files written here from the documented layout."""

from __future__ import annotations

import numpy as np
import pytest

from imn.data.dataset import LEADS, EcgDataError
from imn.data.ukbiobank import read_ukb_folder, read_ukb_xml

RATE, LENGTH, RESOLUTION_UV = 500, 5000, 5.0
MEASUREMENTS = {"VentricularRate": ("72", "BPM"), "PQInterval": ("160", "ms"),
                "QRSDuration": ("94", "ms"), "QTInterval": ("390", "ms"),
                "QTCInterval": ("426", "ms"), "RAxis": ("45", "degrees")}


def _waveforms(digital: np.ndarray, lead_names=LEADS) -> str:
    lines = []
    for lead, column in zip(lead_names, digital.T):
        # The device wraps long sample lists over several lines.
        wrapped = ",\n\t".join(",".join(str(v) for v in column[i:i + 25])
                                for i in range(0, len(column), 25))
        lines.append(f'<WaveformData lead="{lead}">{wrapped}</WaveformData>')
    return "\n".join(lines)


def write_ukb_xml(path, digital, *, root="CardiologyXML", resolution_units="uVperLsb",
                  count=None, lead_names=LEADS, rate="500") -> None:
    measurements = "\n".join(f'<{k} units="{u}">{v}</{k}>' for k, (v, u) in MEASUREMENTS.items())
    median = digital[:600]
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<{root}>
 <ObservationType>RestECG</ObservationType>
 <RestingECGMeasurements>
{measurements}
  <MedianSamples>
   <NumberOfLeads>12</NumberOfLeads>
   <SampleRate units="Hz">500</SampleRate>
   <ChannelSampleCountTotal>600</ChannelSampleCountTotal>
   <Resolution units="uVperLsb">{RESOLUTION_UV}</Resolution>
{_waveforms(median)}
  </MedianSamples>
 </RestingECGMeasurements>
 <StripData>
  <NumberOfLeads>12</NumberOfLeads>
  <SampleRate units="Hz">{rate}</SampleRate>
  <ChannelSampleCountTotal>{count if count is not None else len(digital)}</ChannelSampleCountTotal>
  <Resolution units="{resolution_units}">{RESOLUTION_UV}</Resolution>
{_waveforms(digital, lead_names)}
 </StripData>
</{root}>
""")


@pytest.fixture()
def digital():
    rng = np.random.default_rng(0)
    return rng.integers(-400, 400, size=(LENGTH, 12))


def test_reads_signal_measurements_and_median_beats(tmp_path, digital):
    path = tmp_path / "1000037_20205_2_0.xml"
    write_ukb_xml(path, digital)
    ecg = read_ukb_xml(path)
    assert ecg.signal.shape == (LENGTH, 12) and ecg.signal.dtype == np.float32
    assert ecg.sampling_rate == RATE
    np.testing.assert_allclose(ecg.signal, digital * RESOLUTION_UV / 1000, rtol=1e-6)
    assert ecg.measurements["QRSDuration"] == 94.0 and ecg.units["VentricularRate"] == "BPM"
    assert ecg.median_beats.shape == (600, 12)
    np.testing.assert_allclose(ecg.median_beats, digital[:600] * RESOLUTION_UV / 1000, rtol=1e-6)


def test_reorders_leads_written_in_another_order(tmp_path, digital):
    order = np.array([6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5])
    path = tmp_path / "shuffled.xml"
    write_ukb_xml(path, digital[:, order], lead_names=[LEADS[i].upper() for i in order])
    np.testing.assert_allclose(read_ukb_xml(path).signal, digital * RESOLUTION_UV / 1000, rtol=1e-6)


@pytest.mark.parametrize("change, message", [
    (dict(root="RestingECG"), "root element is <RestingECG>"),
    (dict(resolution_units="furlongs"), "units 'furlongs'"),
    (dict(count=4999), "ChannelSampleCountTotal says 4999"),
    (dict(lead_names=LEADS[:11] + ("V7",)), "unknown lead 'V7'"),
    (dict(rate="fast"), "'fast', not a number"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, digital, change, message):
    path = tmp_path / "bad.xml"
    write_ukb_xml(path, digital, **change)
    with pytest.raises(EcgDataError, match=message) as info:
        read_ukb_xml(path)
    assert "bad.xml" in str(info.value)


def test_broken_xml_missing_lead_and_bad_sample(tmp_path, digital):
    broken = tmp_path / "broken.xml"
    broken.write_text("<CardiologyXML><StripData>")
    with pytest.raises(EcgDataError, match="not well-formed XML"):
        read_ukb_xml(broken)
    eleven = tmp_path / "eleven.xml"
    write_ukb_xml(eleven, digital[:, :11], lead_names=LEADS[:11])
    with pytest.raises(EcgDataError, match=r"lacks lead\(s\) \['V6'\]"):
        read_ukb_xml(eleven)
    text = tmp_path / "text.xml"
    write_ukb_xml(text, digital)
    text.write_text(text.read_text().replace('<WaveformData lead="II">', '<WaveformData lead="II">x1,'))
    with pytest.raises(EcgDataError, match="lead II of <StripData> holds 'x1'"):
        read_ukb_xml(text)
    with pytest.raises(EcgDataError, match="does not exist"):
        read_ukb_xml(tmp_path / "absent.xml")


def test_folder_stacks_records_and_lists_bad_files(tmp_path, digital):
    good = [tmp_path / f"{i}.xml" for i in range(2)]
    for path in good:
        write_ukb_xml(path, digital)
    bad = tmp_path / "bad.xml"
    bad.write_text("nope")
    signals, records, errors = read_ukb_folder(good + [bad], on_error="skip")
    assert signals.shape == (2, LENGTH, 12) and len(records) == 2 and list(errors) == [str(bad)]
    with pytest.raises(EcgDataError, match="1 UK Biobank file"):
        read_ukb_folder(good + [bad])
