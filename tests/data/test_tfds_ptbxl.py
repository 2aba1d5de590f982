"""Tests of the TFDS PTB-XL builder: built without TensorFlow, read back through ArrayRecord.

Everything is built at 100 Hz from the 500-record slice in ../shared/data/ptb-xl (read-only)
into ``tmp_path``; the PTB-XL cache goes to ``tmp_path`` too. The reference is always
``load_ptbxl`` on the same slice: the TFDS copy must equal it exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from imn.data import tfds_ptbxl
from imn.data.dataset import (
    DEFAULT_SPLITS,
    SUPPORTED_SAMPLING_RATES,
    EcgDataError,
    EcgDataset,
)
from imn.data.ptbxl import TASKS, load_ptbxl
from imn.data.tfds_ptbxl import (
    PtbxlBuilder,
    load_tfds_ptbxl,
    prepare_tfds_ptbxl,
    tfds_builder,
)

TASK = "superdiagnostic"  # multi-hot, K = 5
RATE = 100
CONFIG = f"{TASK}_{RATE}hz"
FIELDS = ("signals", "labels", "ecg_ids", "patient_ids", "folds", "age", "sex")


def assert_same(actual: EcgDataset, expected: EcgDataset) -> None:
    """Bit-exact equality of every array (NaN ages included) and of the descriptors."""
    for name in FIELDS:
        a, e = getattr(actual, name), getattr(expected, name)
        assert a.dtype == e.dtype, name
        assert a.shape == e.shape, name
        if a.dtype.kind == "f":
            a, e = a.view(f"u{a.itemsize}"), e.view(f"u{e.itemsize}")
        np.testing.assert_array_equal(a, e, err_msg=name)
    assert actual.classes == expected.classes
    assert actual.sampling_rate == expected.sampling_rate
    assert actual.task == expected.task
    assert actual.skipped == expected.skipped


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ptbxl-cache")


@pytest.fixture(scope="module")
def reference(ptbxl_root, cache_dir) -> EcgDataset:
    return load_ptbxl(ptbxl_root, TASK, RATE, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory, ptbxl_root, cache_dir) -> Path:
    """A TFDS data_dir holding the superdiagnostic 100 Hz config, built once."""
    data_dir = tmp_path_factory.mktemp("tfds")
    version_dir = prepare_tfds_ptbxl(ptbxl_root, data_dir, TASK, RATE, cache_dir=cache_dir)
    assert version_dir == data_dir / "ptbxl" / CONFIG / tfds_ptbxl.DATASET_VERSION
    return data_dir


# ==================================================================== contents, exactly
def test_all_records_equal_load_ptbxl(built, reference):
    dataset = load_tfds_ptbxl(built, TASK, RATE)
    assert_same(dataset, reference)
    assert dataset.signals.shape == (len(reference), 1000, 12)
    assert dataset.classes == ("CD", "HYP", "MI", "NORM", "STTC")


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_each_split_is_its_folds(built, reference, split):
    part = load_tfds_ptbxl(built, TASK, RATE, split=split)
    assert_same(part, reference.split(split))
    assert set(np.unique(part.folds)) <= set(DEFAULT_SPLITS.folds(split))
    # TFDS's own bookkeeping agrees with what was read.
    info = tfds_builder(built, TASK, RATE).info
    assert info.splits[split].num_examples == len(part)


def test_split_sizes_add_up_to_the_folds(built, reference):
    info = tfds_builder(built, TASK, RATE).info
    sizes = {s: info.splits[s].num_examples for s in ("train", "validation", "test")}
    folds = reference.folds
    assert sizes == {
        "train": int(np.isin(folds, range(1, 9)).sum()),
        "validation": int((folds == 9).sum()),
        "test": int((folds == 10).sum()),
    }
    assert sum(sizes.values()) == len(reference)


# ==================================================================== TFDS, without TensorFlow
def test_files_are_array_record_in_tfds_layout(built):
    version_dir = built / "ptbxl" / CONFIG / tfds_ptbxl.DATASET_VERSION
    info = json.loads((version_dir / "dataset_info.json").read_text())
    assert info["fileFormat"] == "array_record"
    shards = sorted(p.name for p in version_dir.glob("ptbxl-*.array_record-*"))
    assert {name.split(".")[0] for name in shards} == {
        "ptbxl-train", "ptbxl-validation", "ptbxl-test"
    }
    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert metadata["classes"] == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert metadata["task"] == TASK and metadata["sampling_rate"] == RATE


def test_tfds_data_source_random_access(built, reference):
    """The stock TFDS entry points read it too: by registered name and from the folder."""
    sources = tfds.data_source(f"ptbxl/{CONFIG}", data_dir=built, download=False)
    test = reference.split("test")
    example = sources["test"][5]
    np.testing.assert_array_equal(example["signal"], test.signals[5])
    np.testing.assert_array_equal(example["labels"], test.labels[5])
    assert example["ecg_id"] == test.ecg_ids[5]
    assert example["strat_fold"] == 10

    # Without the builder class: TFDS restores features and metadata from the JSON files.
    read_only = tfds.builder_from_directory(built / "ptbxl" / CONFIG / "1.0.0")
    assert read_only.info.metadata["classes"] == list(reference.classes)
    assert len(read_only.as_data_source(split="validation")) == len(reference.split("validation"))


def test_tensorflow_was_never_imported(built):
    load_tfds_ptbxl(built, TASK, RATE, split="validation")
    assert "tensorflow" not in sys.modules


def test_configs_cover_every_task_and_rate():
    names = {config.name for config in PtbxlBuilder.BUILDER_CONFIGS}
    assert names == {f"{t}_{r}hz" for t in TASKS for r in SUPPORTED_SAMPLING_RATES}
    config = PtbxlBuilder.builder_configs["norm_vs_mi_500hz"]
    assert (config.task, config.sampling_rate) == ("norm_vs_mi", 500)


# ==================================================================== building
def test_second_prepare_does_not_rebuild(built, ptbxl_root, cache_dir, monkeypatch):
    version_dir = built / "ptbxl" / CONFIG / "1.0.0"
    before = {p.name: p.stat().st_mtime_ns for p in version_dir.iterdir()}

    def must_not_run(*args, **kwargs):
        raise AssertionError("prepare_tfds_ptbxl regenerated an existing dataset")

    monkeypatch.setattr(tfds_ptbxl, "load_ptbxl", must_not_run)
    assert prepare_tfds_ptbxl(ptbxl_root, built, TASK, RATE, cache_dir=cache_dir) == version_dir
    assert {p.name: p.stat().st_mtime_ns for p in version_dir.iterdir()} == before


def test_binary_task_built_from_manual_dir(tmp_path, ptbxl_root, cache_dir):
    """TFDS's own route: the PTB-XL folder as DownloadConfig(manual_dir=...)."""
    builder = tfds_builder(tmp_path, "norm_vs_mi", RATE, cache_dir=cache_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=ptbxl_root)
    )
    dataset = load_tfds_ptbxl(tmp_path, "norm_vs_mi", RATE)
    assert_same(dataset, load_ptbxl(ptbxl_root, "norm_vs_mi", RATE, cache_dir=cache_dir))
    assert dataset.classes == ("MI",) and dataset.labels.shape == (len(dataset), 1)


def test_feeds_the_batch_loader(built, reference):
    from imn.data.pipeline import BatchLoader  # JAX only for this test

    train = load_tfds_ptbxl(built, TASK, RATE, split="train")
    loader = BatchLoader.from_dataset(train, batch_size=16, shuffle=False,
                                      drop_remainder=False, prefetch_depth=0)
    batch = next(iter(loader.host_batches(0)))
    np.testing.assert_array_equal(batch["x"], reference.split("train").signals[:16])
    np.testing.assert_array_equal(batch["y"], reference.split("train").labels[:16])


# ==================================================================== clear errors
def test_missing_data_dir(tmp_path):
    with pytest.raises(EcgDataError, match="does not exist"):
        load_tfds_ptbxl(tmp_path / "nowhere", TASK, RATE)


def test_config_not_built(tmp_path, built):
    with pytest.raises(EcgDataError, match=r"ptbxl/norm_vs_cd_100hz is not built.*prepare_tfds"):
        load_tfds_ptbxl(built, "norm_vs_cd", RATE)
    with pytest.raises(EcgDataError, match="is not built"):
        load_tfds_ptbxl(tmp_path, TASK, RATE)
    assert list(tmp_path.iterdir()) == []  # looking does not create anything


@pytest.mark.parametrize(
    ("task", "rate", "split", "message"),
    [
        ("bogus", RATE, None, "unknown PTB-XL task 'bogus'; valid tasks: superdiagnostic"),
        (TASK, 250, None, "unsupported PTB-XL sampling rate 250"),
        (TASK, RATE, "val", "unknown split 'val'"),
    ],
)
def test_unknown_task_rate_or_split(built, task, rate, split, message):
    with pytest.raises(EcgDataError, match=message):
        load_tfds_ptbxl(built, task, rate, split=split)


def test_build_without_ptbxl_folder(tmp_path):
    with pytest.raises(EcgDataError, match="needs the PTB-XL folder"):
        tfds_builder(tmp_path, "norm_vs_hyp", RATE).download_and_prepare()
    assert not (tmp_path / "ptbxl" / "norm_vs_hyp_100hz" / "1.0.0").exists()
    with pytest.raises(EcgDataError, match="no ptbxl_database.csv"):
        prepare_tfds_ptbxl(tmp_path, tmp_path / "out", TASK, RATE)
