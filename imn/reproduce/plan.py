"""What ``imn reproduce`` runs for each preset: tasks, models, training configs, explanations.

Every model of a reproduction is trained with the same recipe as ECG-IMN (the paper's:
per-record z-score, whole 10 s records, AdamW, x0.1 step schedule, early stopping on
validation macro AUROC), so that each explanation explains exactly the function whose
AUROC is reported. The PTB-XL benchmark's crop-and-window recipe for the 1-D baselines stays
available through ``configs/benchmark.py`` for classification-only runs.

Presets (sizes chosen for their machine; measured wall times are in ``results/``):

* ``tiny``: seconds per model; tests and smoke runs.
* ``quick``: the default reproduction on this project's 2-core CPU: on synthetic data the
  ``easy`` level (600 records, 480 of them for training), so that every model learns within
  4 epochs and the explanations explain models that work (measured, whole process per
  model on the 2-core CPU: test macro AUROC imn 0.915 in 159 s of CPU, cnn2d 0.936 in
  119 s, inception1d 0.952 in 104 s, resnet1d_wang 0.952 in 46 s); 8 explained ECGs with
  planted local findings (the explanation stage, not training, dominates this preset's wall
  time), small evaluation budgets, no max-sensitivity. A demonstration, not a result.
* ``cpu``: the full task list on whatever data is present at 100 Hz (batch 32, early
  stopping, patch-unit curves). On synthetic data the ``default`` level with 3000 records
  (300 in the test fold, about 135 of them with a planted local finding) and 50 explained
  ECGs per model, each for its planted QRSW, STE or TINV finding, so the localisation table
  (overall and per finding) rests on enough ECGs to rank methods.
* ``paper`` / ``paper500``: the paper's recipe at 100 / 500 Hz, all tasks, for a GPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from baselines.tabular import TABULAR_MODELS
from imn.errors import UserError
from imn.explain.run import FaithfulnessSettings
from imn.train.config import TrainConfig, apply_overrides
from imn.train.data import SYNTHETIC_TASK
from imn.train.presets import PRESETS, check_preset, imn_paper_recipe, tabular_recipe

def run_dir(out: Path, task: str, model: str) -> Path:
    """The run folder of ``model`` trained on ``task`` inside reproduction folder ``out``."""
    return Path(out) / "runs" / task / model


# Binary tasks first (the paper's), then the 5-class multi-label one.
PTBXL_TASKS = ("norm_vs_mi", "norm_vs_sttc", "norm_vs_cd", "norm_vs_hyp", "superdiagnostic")
MODELS = ("imn", "cnn2d", "inception1d", "resnet1d_wang")
# Models a reproduction runs when asked (``--models``): the stabilised IMN (a deviation from
# the paper, imn.models.registry), the CPSC 2018 study's ResNet34-1D, and xECGNet before
# (``xecgnet``, stage 1) and after (``xecgnet_ft``, stage 2, fine-tuned from that task's
# ``xecgnet`` run) its attention-map fine-tuning.
EXTRA_MODELS = ("imn_stable", "resnet34_1d", "xecgnet", "xecgnet_ft")
FINETUNED = {"xecgnet_ft": "xecgnet"}  # run name -> the stage-1 run it fine-tunes

# The clinical-feature route (baselines.tabular), opt-in with --models: trained and tabled
# (classification, cost) next to the networks. On synthetic data XGBoost's exact tree SHAP,
# mapped onto the ECG, is explained on the networks' explained ECGs and scored with their
# metrics (baselines.tree_shap_run: every perturbed ECG is delineated again).
FEATURE_MODELS = TABULAR_MODELS
TREE_SHAP_MODELS = ("xgboost",)  # feature models with an exact tree SHAP

# Which explanation methods each kind of model gets. IMN's own explanation needs
# ``generate``; Grad-CAM needs a feature map (every baseline, not IMN).
COMMON_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "gradient_shap",
                  "kernel_shap", "random")
IMN_METHODS = ("imn",) + COMMON_METHODS
BASELINE_METHODS = ("gradcam", "gradcam_x_input") + COMMON_METHODS


ATTENTION_METHODS = ("attention",) + BASELINE_METHODS


def applicable_methods(model: str) -> tuple[str, ...]:
    if model.startswith("imn"):
        return IMN_METHODS
    return ATTENTION_METHODS if model.startswith("xecgnet") else BASELINE_METHODS


def registry_name(model: str) -> str:
    """The registered model a plan's run trains (``xecgnet_ft`` is a stage-2 xecgnet)."""
    return FINETUNED.get(model, model)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A reproduction: which runs to train and how to explain them."""

    preset: str
    source: str  # a data source kind (imn.data.sources.KINDS)
    root: str | None
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    explain_task: str  # the task whose runs are explained and scored
    n_explain: int  # test ECGs explained per model
    faithfulness: FaithfulnessSettings
    train_overrides: tuple[str, ...] = ()  # ``key=value`` applied to every training config
    methods: tuple[str, ...] | None = None  # restrict the explanation methods (None: all)
    explained_models: tuple[str, ...] | None = None  # models explained and scored (None: all)

    @property
    def models_explained(self) -> tuple[str, ...]:
        """The models whose ``explain_task`` runs are explained and scored."""
        models = self.models if self.explained_models is None else self.explained_models
        return tuple(m for m in models if m not in FEATURE_MODELS)

    @property
    def models_explained_by_tree_shap(self) -> tuple[str, ...]:
        """Feature models whose tree SHAP is explained and scored (synthetic data only)."""
        if self.source != "synthetic":
            return ()
        return tuple(m for m in self.models if m in TREE_SHAP_MODELS)

    def methods_for(self, model: str) -> tuple[str, ...]:
        """The explanation methods scored for ``model``: those that apply to it, in order."""
        return tuple(m for m in applicable_methods(model) if self.methods is None or m in self.methods)

    def config(self, model: str, task: str, stage_one_dir: str | None = None) -> TrainConfig:
        """The training config of one run; a fine-tuned run (``xecgnet_ft``) needs the
        folder of the stage-1 run it starts from."""
        if model in FEATURE_MODELS:
            config = tabular_recipe(self.preset, model=model, task=task)
        else:
            config = imn_paper_recipe(self.preset, model=registry_name(model), task=task)
        overrides = [f"data.source={self.source}", *self.train_overrides]
        if model in FINETUNED:
            if stage_one_dir is None:
                raise ValueError(f"{model} fine-tunes a {FINETUNED[model]} run; give its folder")
            overrides += ["attention.stage=2", f"attention.init_from={stage_one_dir}"]
        if self.root is not None:
            overrides.append(f"data.root={self.root}")
        return apply_overrides(config, overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Per preset: (explained ECGs, faithfulness budget, training overrides, synthetic records
# and difficulty level; the synthetic_* entries and synthetic_overrides apply to synthetic
# data only).
# ``quick`` and ``cpu`` use patch-unit curves (12 leads x 20 segments = 240 features) so a
# curve costs ``steps + 1`` model passes per ECG whatever the sampling rate. On a CPU every
# model evaluation costs its full price (about 20 ms per ECG for IMN at 100 Hz whatever the
# batch), so these budgets are counts of evaluations chosen to fit the preset's wall time.
# Max-sensitivity re-explains every ECG ``sensitivity_samples`` times: on CPU presets it is
# computed for the one-pass methods only (NaN for the path methods and Kernel SHAP).
_PATH_METHODS = ("integrated_gradients", "gradient_shap", "kernel_shap")
_BUDGETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        n_explain=4, synthetic_n=160, synthetic_level="default",
        faithfulness=FaithfulnessSettings(
            steps=5, correlation_runs=8, infidelity_perturbations=4, sensitivity_samples=2,
            method_options={"kernel_shap": {"n_samples": 32, "segments": 4},
                            "integrated_gradients": {"steps": 4},
                            "gradient_shap": {"n_samples": 4}}),
        overrides=(),
    ),
    # The easy level learns fast: resnet1d_wang reached test macro AUROC 0.99 after 4 epochs
    # of 640 easy records (tests/train/test_learns.py); IMN needs longer: 0.881 after 4 epochs,
    # 0.909 after 7 (one seed, 600 easy records), hence 7 epochs with patience 3. Explains IMN and cnn2d only (the same
    # encoder, so the paper's central comparison, and between them every method); the 1-D
    # baselines are trained and evaluated. xECGNet's two stages, when asked for (--models),
    # are explained too: their attention maps before and after fine-tuning are the point of
    # running them.
    "quick": dict(
        n_explain=8, synthetic_n=600, synthetic_level="easy",
        explained_models=("imn", "cnn2d", "xecgnet", "xecgnet_ft"),
        faithfulness=FaithfulnessSettings(
            steps=10, correlation_runs=20, infidelity_perturbations=8, sensitivity_samples=0,
            method_options={"kernel_shap": {"n_samples": 64, "segments": 4},
                            "integrated_gradients": {"steps": 8},
                            "gradient_shap": {"n_samples": 8}}),
        overrides=("epochs=7", "patience=3"),
    ),
    # Training ends by early stopping, not by the cap: on recorded data (the PTB-XL slice)
    # up to 25 epochs with patience 5 (the paper's x0.1 steps at epochs 10 and 20 fall
    # inside); ``real_data_overrides`` and ``synthetic_overrides`` are applied after the
    # base ``overrides`` and win over them. Synthetic data gets its own budget: the default
    # level needs thousands of records and ~10 epochs to be learnt (resnet1d_wang on 2400
    # training records, 10 epochs: 0.924); under a cap of 12 every network was still improving
    # at its last epoch, hence up to 30 with patience 4 (the learning rate is 1e-4 after epoch
    # 10 and 1e-5 after 20, where validation AUROC moves in the fourth decimal, so a new best
    # must beat the old by 1e-3: fourth-decimal noise does not carry a flat run to the cap; the
    # table's "training ended by" column says which runs the cap ended). 6000 records, not
    # 3000: on 2400 training records the paper's IMN plateaued at test 0.834 (validation 0.787,
    # patience, epoch 19); on 4800 it reached 0.860 (validation 0.872, one seed, 30 epochs).
    # 50 explained ECGs per model (each model's 9-10 methods cost seconds per ECG on the
    # 2-core CPU, so 50 is what the run can afford).
    "cpu": dict(
        n_explain=8, synthetic_n=6000, synthetic_level="default", synthetic_n_explain=50,
        synthetic_overrides=("epochs=30", "patience=4", "min_improvement=0.001"),
        real_data_overrides=("epochs=25", "patience=5"),
        faithfulness=FaithfulnessSettings(
            steps=15, correlation_runs=24, infidelity_perturbations=8, sensitivity_samples=3,
            sensitivity_skip=_PATH_METHODS,
            method_options={"kernel_shap": {"n_samples": 128, "segments": 6},
                            "integrated_gradients": {"steps": 12},
                            "gradient_shap": {"n_samples": 12}}),
        overrides=("epochs=5", "patience=2", "batch_size=32"),
    ),
    "paper": dict(
        n_explain=200, synthetic_n=20000, synthetic_level="default",
        faithfulness=FaithfulnessSettings(
            steps=50, infidelity_perturbations=64, sensitivity_samples=10,
            method_options={"kernel_shap": {"n_samples": 2048},
                            "integrated_gradients": {"steps": 50},
                            "gradient_shap": {"n_samples": 50}}),
        overrides=(),
    ),
}
_BUDGETS["paper500"] = _BUDGETS["paper"]


def make_plan(preset: str, *, root: str | None = None, synthetic: bool = False,
              source: str | None = None,
              models: tuple[str, ...] | None = None, tasks: tuple[str, ...] | None = None,
              methods: tuple[str, ...] | None = None, n_explain: int | None = None) -> Plan:
    """The plan of ``imn reproduce --preset PRESET`` on the data in ``root`` (of kind
    ``source``, default PTB-XL) or on synthetic data (``synthetic=True`` or no ``root``).

    ``models``/``tasks``/``methods`` restrict the preset's lists (an unknown name is an
    error); ``n_explain`` overrides the number of explained test ECGs.
    """
    check_preset(preset)
    if synthetic and root is not None:
        raise ValueError("give either a data folder or --synthetic, not both")
    budget = _BUDGETS[preset]
    if synthetic or (root is None and source in (None, "synthetic")):
        source = "synthetic"
    elif root is None:
        raise ValueError(f"data source {source!r} needs a folder")
    else:
        source = source or "ptbxl"
    all_tasks = _source_tasks(source, preset)
    if tasks and source not in ("ptbxl", "tfds", "synthetic"):
        from imn.data.sources import source_tasks

        chosen_tasks = _restrict("task", tasks, source_tasks(source))
    else:
        chosen_tasks = _restrict("task", tasks, all_tasks)
    chosen_models = _restrict("model", models, MODELS, also=EXTRA_MODELS + FEATURE_MODELS)
    for finetuned, stage_one in FINETUNED.items():
        if finetuned in chosen_models and (stage_one not in chosen_models or
                                           chosen_models.index(stage_one) > chosen_models.index(finetuned)):
            raise ValueError(f"model {finetuned!r} fine-tunes the {stage_one!r} run: list "
                             f"{stage_one!r} before it (e.g. --models {stage_one},{finetuned})")
    chosen_methods = None if not methods else _restrict("method", methods, tuple(dict.fromkeys(IMN_METHODS + ATTENTION_METHODS)))
    overrides = list(budget["overrides"])
    faithfulness = budget["faithfulness"]
    default_explained = budget["n_explain"]
    if source == "synthetic":
        overrides += [*budget.get("synthetic_overrides", ()), f"data.synthetic_n={budget['synthetic_n']}",
                      f"data.synthetic_level={budget['synthetic_level']}"]
        default_explained = budget.get("synthetic_n_explain", default_explained)
        # Explain planted findings, so that every explained ECG is scored for localisation.
        faithfulness = dataclasses.replace(faithfulness, targets="evidence")
    else:
        overrides += budget.get("real_data_overrides", ())
    n_explain = n_explain or default_explained
    explained = budget.get("explained_models")
    if explained is not None:
        # Restricting --models keeps the preset's choice where it can, else explains them all.
        explained = tuple(m for m in chosen_models if m in explained) or None
    return Plan(
        preset=preset, source=source, root=root, tasks=chosen_tasks, models=chosen_models,
        explained_models=explained,
        explain_task=chosen_tasks[0], n_explain=n_explain,
        faithfulness=faithfulness, train_overrides=tuple(overrides),
        methods=chosen_methods,
    )


def _source_tasks(source: str, preset: str) -> tuple[str, ...]:
    """The tasks a preset trains: PTB-XL's (also read through TFDS) grow with the preset;
    every other source has one default task (imn.data.sources)."""
    if source not in ("ptbxl", "tfds"):
        from imn.data.sources import default_task

        return (SYNTHETIC_TASK,) if source == "synthetic" else (default_task(source),)
    if preset == "tiny":
        return PTBXL_TASKS[:1]
    if preset == "quick":
        return ("norm_vs_mi", "superdiagnostic")
    return PTBXL_TASKS


def _restrict(kind: str, chosen: tuple[str, ...] | None, available: tuple[str, ...],
              also: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``chosen`` checked against ``available + also``; nothing chosen: ``available``."""
    if not chosen:
        return available
    available = available + also
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise UserError(f"unknown {kind}(s) {unknown} for this reproduction; expected some of {available}")
    return tuple(chosen)


__all__ = ["EXTRA_MODELS", "FEATURE_MODELS", "MODELS", "PRESETS", "PTBXL_TASKS", "Plan", "TREE_SHAP_MODELS",
           "applicable_methods", "make_plan", "registry_name"]
