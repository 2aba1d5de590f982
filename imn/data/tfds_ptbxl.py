"""PTB-XL as a TFDS dataset: ArrayRecord shards written and read back without TensorFlow.

TFDS 4.9.10 builds a ``GeneratorBasedBuilder`` with ``file_format="array_record"`` and serves
it through ``as_data_source()`` / ``tfds.data_source`` with TensorFlow absent: examples are
serialised with the ``tf.train.Example`` protos TFDS bundles, written with the
``array_record`` package, and decoded with NumPy. Only ``as_dataset()`` (``tf.data``) needs
TensorFlow, and nothing here calls it.

Layout on disk (TFDS's own)::

    data_dir/ptbxl/<task>_<rate>hz/1.0.0/
        dataset_info.json  features.json  metadata.json
        ptbxl-train.array_record-00000-of-0000N  ... -validation... ... -test...

One config per task of :data:`imn.data.ptbxl.TASKS` and rate (100, 500 Hz), e.g.
``norm_vs_mi_100hz``. Splits are PTB-XL's recommended ones: ``strat_fold`` 1-8 train, 9
validation, 10 test (:data:`imn.data.dataset.DEFAULT_SPLITS`).

Generation calls :func:`imn.data.ptbxl.load_ptbxl`, so signals, labels, classes and the
records a task keeps are exactly those of the project's reader; nothing is parsed twice.

Usage::

    prepare_tfds_ptbxl("~/data/ptb-xl", "~/tfds", "superdiagnostic", 100)   # builds once
    train = load_tfds_ptbxl("~/tfds", "superdiagnostic", 100, split="train")  # EcgDataset
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from imn.data.dataset import (
    DEFAULT_SPLITS,
    NUM_LEADS,
    RECORD_SECONDS,
    SUPPORTED_SAMPLING_RATES,
    EcgDataError,
    EcgDataset,
)
from imn.data.ptbxl import TASKS, fingerprint_matches, load_ptbxl, source_fingerprint

logger = logging.getLogger("imn")

DATASET_NAME = "ptbxl"
# Bump when what load_ptbxl returns for a task changes (labels, kept records): a dataset
# built by an older version is then not silently reused (TFDS keys the folder by version).
DATASET_VERSION = "1.0.0"
SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Records decoded per call to the data source; bounds the list of dicts held at once.
_READ_CHUNK = 256

_CITATION = """\
@article{wagner2020ptbxl,
  title={PTB-XL, a large publicly available electrocardiography dataset},
  author={Wagner, Patrick and Strodthoff, Nils and Bousseljot, Ralf-Dieter and Kreiseler,
          Dieter and Lunze, Fatima I and Samek, Wojciech and Schaeffter, Tobias},
  journal={Scientific Data}, volume={7}, number={1}, pages={154}, year={2020}
}"""


def config_name(task: str, sampling_rate: int) -> str:
    """The TFDS config of a task at a rate: ``config_name("norm_vs_mi", 100) == "norm_vs_mi_100hz"``.

    Raises:
      EcgDataError: unknown task or unsupported rate (the message lists the valid ones).
    """
    if task not in TASKS:
        raise EcgDataError(f"unknown PTB-XL task {task!r}; valid tasks: {', '.join(TASKS)}")
    if sampling_rate not in SUPPORTED_SAMPLING_RATES:
        raise EcgDataError(
            f"unsupported PTB-XL sampling rate {sampling_rate!r}; "
            f"choose one of {SUPPORTED_SAMPLING_RATES} Hz"
        )
    return f"{task}_{sampling_rate}hz"


class PtbxlConfig(tfds.core.BuilderConfig):
    """One task at one sampling rate."""

    def __init__(self, *, task: str, sampling_rate: int, **kwargs):
        super().__init__(
            name=config_name(task, sampling_rate),
            description=f"PTB-XL, task {task!r}, {sampling_rate} Hz "
                        f"({RECORD_SECONDS * sampling_rate} samples x {NUM_LEADS} leads, mV)",
            **kwargs,
        )
        self.task = task
        self.sampling_rate = sampling_rate


class PtbxlBuilder(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of PTB-XL from a local copy (PhysioNet's layout); no download.

    Features of each example:

      ``signal``      float32 ``(L, 12)``, mV, leads in ``LEADS`` order (``L = 10 * rate``).
      ``labels``      float32 ``(K,)`` multi-hot; ``K = len(info.metadata["classes"])``.
      ``ecg_id``      int64.
      ``patient_id``  int64, -1 if unknown.
      ``strat_fold``  int64, 1..10.
      ``age``         float32, NaN if unknown.
      ``sex``         int8, 0 male, 1 female, -1 unknown.

    ``labels`` is declared with a variable length ``(None,)``: ``load_ptbxl`` keeps the
    classes that occur in the records it reads, so ``K`` is only known after reading them,
    while TFDS fixes the features when the builder is constructed. Every example of a built
    config has the same ``K``; the class names, in label-column order, are in
    ``info.metadata["classes"]``, together with ``task``, ``sampling_rate`` and ``skipped``
    (ecg_ids left out as unreadable with ``on_error="skip"``).

    The PTB-XL folder is given either as ``ptbxl_root=`` or as TFDS's manual directory,
    ``download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))``.

    Args:
      ptbxl_root: folder holding ``ptbxl_database.csv``, ``scp_statements.csv`` and
        ``records100/`` / ``records500/``; only needed to build.
      cache_dir, use_cache, on_error: passed to :func:`imn.data.ptbxl.load_ptbxl`.
      **kwargs: ``tfds.core.DatasetBuilder`` arguments (``config``, ``data_dir``, ...);
        ``file_format`` defaults to ``"array_record"``.
    """

    name = DATASET_NAME
    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        DATASET_VERSION: "Labels, signals and folds from imn.data.ptbxl.load_ptbxl.",
    }
    BUILDER_CONFIGS: ClassVar[list[PtbxlConfig]] = [
        PtbxlConfig(task=task, sampling_rate=rate)
        for rate in SUPPORTED_SAMPLING_RATES
        for task in TASKS
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "superdiagnostic_100hz"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download PTB-XL from https://physionet.org/content/ptb-xl/ and pass the folder "
        "holding ptbxl_database.csv as ptbxl_root= or as the manual_dir of the DownloadConfig."
    )

    def __init__(
        self,
        *,
        ptbxl_root: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        on_error: str = "raise",
        **kwargs,
    ):
        # Set before super().__init__, which already calls _info().
        self._ptbxl_root = None if ptbxl_root is None else Path(ptbxl_root).expanduser()
        self._cache_dir = cache_dir
        self._use_cache = use_cache
        self._on_error = on_error
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS 4.9.10 works this out with `importlib_resources` for any builder defined in a
        # package, but declares that module only for Python < 3.9, so building raises
        # ModuleNotFoundError (tensorflow/datasets#11212). The answer is simply this file.
        return epath.Path(__file__)

    # -------------------------------------------------------------------------- TFDS hooks
    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo(builder=self) rather than dataset_info_from_configs(), which looks for
        # metadata files (README, CITATIONS.bib) in a per-dataset package folder.
        length = RECORD_SECONDS * self.builder_config.sampling_rate
        return tfds.core.DatasetInfo(
            builder=self,
            description="PTB-XL 12-lead ECGs (Wagner et al. 2020) with the benchmark labels "
                        "of Strodthoff et al. (2021) as computed by imn.data.ptbxl.",
            features=tfds.features.FeaturesDict({
                "signal": tfds.features.Tensor(
                    shape=(length, NUM_LEADS), dtype=np.float32,
                    # Raw float32 bytes: 60x faster to serialise than a protobuf float list
                    # (22 ms vs 0.3 ms a 500 Hz record), the same size, bit-exact.
                    encoding=tfds.features.Encoding.BYTES,
                ),
                "labels": tfds.features.Tensor(shape=(None,), dtype=np.float32),
                "ecg_id": np.int64,
                "patient_id": np.int64,
                "strat_fold": np.int64,
                "age": np.float32,
                "sex": np.int8,
            }),
            homepage="https://physionet.org/content/ptb-xl/",
            citation=_CITATION,
            # Filled in by _split_generators, once load_ptbxl has fixed the classes; TFDS
            # writes metadata.json after generation and restores it on read.
            metadata=tfds.core.MetadataDict(),
            # Keep generation order (ascending ecg_id, load_ptbxl's order) in the shards.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config
        root = self._ptbxl_root
        if root is None:
            try:
                root = Path(dl_manager.manual_dir)
            except (AssertionError, ValueError) as err:
                raise EcgDataError(
                    f"building TFDS config {config.name!r} needs the PTB-XL folder: pass "
                    f"ptbxl_root= or a DownloadConfig(manual_dir=...) ({err})"
                ) from None
        dataset = load_ptbxl(
            root, config.task, config.sampling_rate,
            cache_dir=self._cache_dir, use_cache=self._use_cache, on_error=self._on_error,
        )
        self.info.metadata.update(
            source=os.fspath(root.resolve()),
            # The same key as the PTB-XL cache's: prepare_tfds_ptbxl rebuilds when it changes.
            source_fingerprint=source_fingerprint(root, config.sampling_rate),
            task=config.task,
            sampling_rate=config.sampling_rate,
            classes=list(dataset.classes),
            skipped=[int(i) for i in dataset.skipped],
        )
        return {split: self._generate_examples(dataset.split(split)) for split in SPLITS}

    def _generate_examples(self, dataset: EcgDataset):
        # ecg_ids are unique, so they serve as TFDS's example keys.
        for row in range(len(dataset)):
            yield int(dataset.ecg_ids[row]), {
                "signal": dataset.signals[row],
                "labels": dataset.labels[row],
                "ecg_id": dataset.ecg_ids[row],
                "patient_id": dataset.patient_ids[row],
                "strat_fold": dataset.folds[row],
                "age": dataset.age[row],
                "sex": dataset.sex[row],
            }


# ============================================================================== public API
def tfds_builder(
    data_dir: str | os.PathLike, task: str, sampling_rate: int = 100, **kwargs
) -> PtbxlBuilder:
    """The builder of ``task`` at ``sampling_rate`` under ``data_dir`` (nothing is built).

    ``kwargs`` go to :class:`PtbxlBuilder` (``ptbxl_root``, ``cache_dir``, ...).
    """
    name = config_name(task, sampling_rate)
    return PtbxlBuilder(config=name, data_dir=os.fspath(Path(data_dir).expanduser()), **kwargs)


def is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether ``builder``'s version folder is complete (TFDS renames it into place last)."""
    return (Path(os.fspath(builder.data_path)) / "dataset_info.json").is_file()


def prepare_tfds_ptbxl(
    ptbxl_root: str | os.PathLike,
    data_dir: str | os.PathLike,
    task: str,
    sampling_rate: int = 100,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    on_error: str = "raise",
    overwrite: bool = False,
) -> Path:
    """Build the TFDS dataset of ``task`` at ``sampling_rate`` unless it is already there.

    Args:
      ptbxl_root: the PTB-XL folder (read-only is fine).
      data_dir: TFDS data folder; the dataset goes to ``data_dir/ptbxl/<config>/1.0.0``.
      task, sampling_rate: which config.
      cache_dir, use_cache, on_error: passed to :func:`imn.data.ptbxl.load_ptbxl`.
      overwrite: rebuild even if the dataset exists. An existing dataset is otherwise reused
        unless ``ptbxl_root``'s database or record files changed since it was built (its
        ``metadata.json`` records their fingerprint, as the PTB-XL cache's manifest does;
        ``$IMN_CACHE_CHECK=sha256`` compares contents).

    Returns:
      The version folder of the built dataset.
    """
    root = Path(ptbxl_root).expanduser()
    if not (root / "ptbxl_database.csv").is_file():
        raise EcgDataError(f"PTB-XL root {root} has no ptbxl_database.csv")
    builder = tfds_builder(
        data_dir, task, sampling_rate,
        ptbxl_root=root, cache_dir=cache_dir, use_cache=use_cache, on_error=on_error,
    )
    if (not overwrite and is_prepared(builder)
            and not fingerprint_matches(_built_from(builder), source_fingerprint(root, sampling_rate))):
        logger.info("%s was built from another state of %s; rebuilding it", builder.data_path, root)
        overwrite = True
    if overwrite or not is_prepared(builder):
        mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
                else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(download_mode=mode)
        )
    return Path(os.fspath(builder.data_path))


def _built_from(builder: tfds.core.DatasetBuilder) -> dict | None:
    """The source fingerprint a prepared dataset recorded (None if it recorded none)."""
    try:
        metadata = json.loads((Path(os.fspath(builder.data_path)) / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return metadata.get("source_fingerprint")


def load_tfds_ptbxl(
    data_dir: str | os.PathLike,
    task: str,
    sampling_rate: int = 100,
    split: str | None = None,
) -> EcgDataset:
    """Read a built dataset through TFDS's ArrayRecord data source into an ``EcgDataset``.

    Args:
      data_dir: the TFDS data folder given to :func:`prepare_tfds_ptbxl`.
      task, sampling_rate: which config.
      split: ``"train"``, ``"validation"``, ``"test"``, or ``None`` for all records.

    Returns:
      The same arrays as ``load_ptbxl(root, task, sampling_rate)`` (or its ``.split(split)``):
      float32 ``signals (N, L, 12)`` in mV, float32 ``labels (N, K)``, ``classes``,
      ``ecg_ids``, ``patient_ids``, ``folds``, ``age``, ``sex``, ``skipped``; rows sorted by
      ``ecg_id``.

    Raises:
      EcgDataError: unknown task, rate or split; the dataset is not built under
        ``data_dir``; or its contents are inconsistent.
    """
    if split is not None and split not in SPLITS:
        raise EcgDataError(f"unknown split {split!r}; expected one of {SPLITS} or None")
    name = config_name(task, sampling_rate)
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise EcgDataError(f"TFDS data_dir {folder} does not exist or is not a folder")
    builder = tfds_builder(folder, task, sampling_rate)
    if not is_prepared(builder):
        raise EcgDataError(
            f"TFDS dataset {DATASET_NAME}/{name} is not built under {folder} (no "
            f"{builder.data_path}/dataset_info.json); build it with "
            f"prepare_tfds_ptbxl(ptbxl_root, {os.fspath(folder)!r}, {task!r}, {sampling_rate})"
        )
    metadata = builder.info.metadata
    classes = tuple(metadata.get("classes", ()))
    if not classes:
        raise EcgDataError(f"{builder.data_path}/metadata.json lists no classes")
    splits = SPLITS if split is None else (split,)
    sources = {s: builder.as_data_source(split=s) for s in splits}
    total = sum(len(source) for source in sources.values())
    length = RECORD_SECONDS * sampling_rate
    # Preallocated and filled in place, so records are never held twice (as decoded dicts
    # and stacked): a 500 Hz PTB-XL is 5 GB of float32.
    columns = {
        "signal": np.empty((total, length, NUM_LEADS), np.float32),
        "labels": np.empty((total, len(classes)), np.float32),
        "ecg_id": np.empty(total, np.int64),
        "patient_id": np.empty(total, np.int64),
        "strat_fold": np.empty(total, np.int64),
        "age": np.empty(total, np.float32),
        "sex": np.empty(total, np.int8),
    }
    offset = 0
    for split_name, source in sources.items():
        _read_split(builder, split_name, source, columns, offset)
        offset += len(source)
    # Each split is stored in ecg_id order (disable_shuffling), but splits interleave in
    # ecg_id; load_ptbxl sorts by ecg_id. Reordering copies, so only when needed.
    if np.any(np.diff(columns["ecg_id"]) <= 0):
        order = np.argsort(columns["ecg_id"], kind="stable")
        columns = {key: value[order] for key, value in columns.items()}
    if len(np.unique(columns["ecg_id"])) != total:
        raise EcgDataError(f"{builder.data_path}: an ecg_id occurs more than once")
    return EcgDataset(
        signals=columns["signal"],
        labels=columns["labels"],
        classes=classes,
        ecg_ids=columns["ecg_id"],
        patient_ids=columns["patient_id"],
        folds=columns["strat_fold"],
        age=columns["age"],
        sex=columns["sex"],
        sampling_rate=sampling_rate,
        task=task,
        skipped=tuple(int(i) for i in metadata.get("skipped", ())),
    )


def _read_split(
    builder: PtbxlBuilder, split: str, source, columns: dict[str, np.ndarray], offset: int
) -> None:
    """Decode every example of ``split`` into rows ``offset:offset + len(source)`` of ``columns``.

    ``columns`` maps each feature name to its preallocated array (``signal`` ``(N, L, 12)``,
    ``labels`` ``(N, K)``, the others ``(N,)``).
    """
    n = len(source)
    num_classes = columns["labels"].shape[1]
    for start in range(0, n, _READ_CHUNK):
        indices = list(range(start, min(start + _READ_CHUNK, n)))
        # __getitems__ reads a batch of records in one ArrayRecord call and decodes each
        # into a dict of NumPy values.
        for index, example in zip(indices, source.__getitems__(indices)):
            if np.shape(example["labels"]) != (num_classes,):
                raise EcgDataError(
                    f"{builder.data_path}: example {index} of split {split!r} (ecg_id "
                    f"{example['ecg_id']}) has {np.shape(example['labels'])} labels; "
                    f"metadata.json lists {num_classes} classes"
                )
            for key, column in columns.items():
                column[offset + index] = example[key]
    # The split was chosen by fold at build time; a mismatch means a foreign or stale folder.
    folds = columns["strat_fold"][offset:offset + n]
    allowed = DEFAULT_SPLITS.folds(split)
    if not np.isin(folds, allowed).all():
        bad = np.unique(folds[~np.isin(folds, allowed)])
        raise EcgDataError(
            f"{builder.data_path}: split {split!r} holds records of folds {bad.tolist()}; "
            f"expected only {list(allowed)}"
        )


__all__ = [
    "DATASET_NAME",
    "DATASET_VERSION",
    "SPLITS",
    "PtbxlBuilder",
    "PtbxlConfig",
    "config_name",
    "is_prepared",
    "load_tfds_ptbxl",
    "prepare_tfds_ptbxl",
    "tfds_builder",
]
