"""``imn reproduce``: train, evaluate, explain and score every model of a plan, then write the
tables and figures. Resumable: killed and restarted with the same command, it skips every
finished run (``metrics.json``) and every finished explanation (``faithfulness_test.json``
with the same settings), and an unfinished training run resumes from its last checkpoint.
A preset whose epoch cap was raised continues the runs that hit the old cap from their last
checkpoint, exactly as a fresh run would have gone on (:mod:`imn.train.continuation`), and
explains them again; any other change to a trained run's config is refused.

Output folder layout::

    OUT/reproduce.json           plan, command, wall time per stage (summed over invocations),
                                 device, git commit; ``invocations``: when, at which commit and
                                 with which command each invocation ran
    OUT/table_*.{csv,md}         tables (imn.reproduce.tables)
    OUT/figures/*.{pdf,png}      figures (imn.reproduce.figures)
    OUT/report.html              the interactive viewer of the explained ECGs (imn.view)
    OUT/runs/TASK/MODEL/         one training run each (config.json, provenance.json,
                                 metrics.jsonl, metrics.json, predictions_*.npz,
                                 checkpoints/ (not committed), faithfulness_test.* for the
                                 explained task)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imn import atomic, provenance
from imn.reproduce import tables
from imn.reproduce.figures import figures_stage
from imn.reproduce.plan import FINETUNED, Plan, run_dir
from imn.report import write_table
from imn.train.progress import format_seconds

logger = logging.getLogger("imn")

# Test ECGs whose attributions are kept for the figures (8, so that the localisation figure
# usually finds one ECG per synthetic finding among them).
_FIGURE_ECGS = 8


# Plan fields that only the explanation stage reads. Changing them (a new budget or target
# policy) re-explains on the next invocation, because the stage's marker no longer matches,
# and keeps every trained run.
_EXPLANATION_FIELDS = ("faithfulness", "n_explain", "methods", "explained_models")


def _training_part(plan: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in plan.items() if key not in _EXPLANATION_FIELDS}


def _explanation_part(plan: dict[str, Any]) -> dict[str, Any]:
    return {key: plan.get(key) for key in _EXPLANATION_FIELDS}


class Ledger:
    """``reproduce.json``: the plan, and wall seconds per stage summed over restarts."""

    def __init__(self, out: Path, plan: Plan):
        self.path = out / "reproduce.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        stored = self.data.get("plan")
        current = json.loads(json.dumps(plan.to_dict()))
        if stored is not None and _training_part(stored) != _training_part(current):
            # Each trained run was checked against its new config (check_runs, before this):
            # a raised epoch cap continues the runs it can continue exactly; anything else that
            # changes a trained run was refused there, naming the run.
            logger.info("%s: the training plan changed; every trained run is checked against "
                        "its new config", out)
            self.data.setdefault("training_plans_replaced", []).append(_training_part(stored))
        if stored is not None and _explanation_part(stored) != _explanation_part(current):
            logger.info("%s: the explanation settings changed; the trained runs are kept and "
                        "the models are explained again", out)
            self.data.setdefault("explanation_plans_replaced", []).append(_explanation_part(stored))
        self.data["plan"] = plan.to_dict()
        # Set again when this invocation finishes; until then the outputs are not the plan's.
        self.data.pop("finished", None)
        self.data.pop("outputs", None)
        self.data.setdefault("stage_seconds", {})
        self.data["command"] = " ".join(["imn", *sys.argv[1:]]) if sys.argv else "imn reproduce"

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = self.data["stage_seconds"].get(name, 0.0) + time.perf_counter() - start
            self.data["stage_seconds"][name] = round(seconds, 1)
            self.save()

    def save(self) -> None:
        atomic.write_json(self.path, self.data, default=str)


def _run_config(plan: Plan, out: Path, task: str, model: str):
    """The training config of ``model`` on ``task`` in ``out`` (a fine-tuned run starts from
    its stage-1 run's folder there)."""
    stage_one = FINETUNED.get(model)
    return plan.config(model, task, str(run_dir(out, task, stage_one)) if stage_one else None)


def check_runs(plan: Plan, out: Path, allow_data_move: bool = False) -> dict[tuple[str, str], Any]:
    """Check every trained run in ``out`` against its config in ``plan`` before anything is
    changed (imn.train.continuation.check_change): a refusal leaves the folder as it was.
    Returns ``{(task, model): CapChange}``; no entry for a fine-tuned run whose stage-1 run
    continues (it is trained again)."""
    from baselines.tabular import is_tabular
    from imn.train.continuation import check_change
    from imn.train.run_folder import check_recorded_source

    changes: dict[tuple[str, str], Any] = {}
    for task in plan.tasks:
        for model in plan.models:
            stage_one = FINETUNED.get(model)
            if stage_one and getattr(changes.get((task, stage_one)), "action", None) == "continues":
                continue
            workdir = run_dir(out, task, model)
            config = _run_config(plan, out, task, model)
            if (workdir / "config.json").exists():
                # A trained run on other data must not enter the tables as if it were this plan's.
                check_recorded_source(workdir, config, allow_data_move=allow_data_move)
            changes[(task, model)] = check_change(workdir, config, epoch_free=is_tabular(model))
    return changes


def _drop_fine_tuned_runs(out: Path, task: str, stage_one: str) -> None:
    """Delete the runs fine-tuned from ``stage_one``'s run, before that run continues: they
    started from its old best checkpoint (a fresh reproduction fine-tunes the continued run's),
    and deleting them first means no later kill can leave one behind."""
    for fine_tuned, source in FINETUNED.items():
        folder = run_dir(out, task, fine_tuned)
        if source == stage_one and folder.exists():
            logger.info("%s on %s: fine-tuned from %s, which continues; it will be trained again",
                        fine_tuned, task, stage_one)
            shutil.rmtree(folder)


def train_stage(plan: Plan, out: Path, allow_data_move: bool = False,
                changes: dict[tuple[str, str], Any] | None = None) -> None:
    """Train every run of ``plan`` not finished in ``out``, after applying ``changes``
    (:func:`check_runs`; checked here when not given)."""
    from baselines.tabular import is_tabular
    from baselines.tabular import train_and_evaluate as train_tabular
    from imn.train.continuation import apply_change
    from imn.train.trainer import train_and_evaluate

    if changes is None:
        changes = check_runs(plan, out, allow_data_move)
    pairs = [(task, model) for task in plan.tasks for model in plan.models]
    for index, (task, model) in enumerate(pairs, 1):
        workdir = run_dir(out, task, model)
        config = _run_config(plan, out, task, model)
        change = changes.get((task, model))
        if change is not None:
            if change.action == "continues":
                _drop_fine_tuned_runs(out, task, model)
            apply_change(change)
        if (workdir / "metrics.json").exists():
            logger.info("[%d/%d] %s on %s: done, skipped", index, len(pairs), model, task)
            continue
        logger.info("[%d/%d] training %s on %s -> %s", index, len(pairs), model, task, workdir)
        if is_tabular(model):
            summary = train_tabular(config, workdir)
        else:
            summary = train_and_evaluate(config, workdir, allow_data_move=allow_data_move)
        logger.info("[%d/%d] %s on %s: test macro AUROC %.3f", index, len(pairs), model, task,
                    summary["test"]["macro_auroc"])


def _settings_record(plan: Plan, model: str) -> dict[str, Any]:
    record = json.loads(json.dumps(dataclasses.asdict(plan.faithfulness), default=str))
    return {**record, "methods": list(plan.methods_for(model)), "n": plan.n_explain}


def explain_stage(plan: Plan, out: Path, allow_data_move: bool = False) -> None:
    from imn.explain.run import faithfulness_run

    models = plan.models_explained
    for index, model in enumerate(models, 1):
        workdir = run_dir(out, plan.explain_task, model)
        marker = workdir / "faithfulness_settings.json"
        wanted = _settings_record(plan, model)
        if marker.exists() and json.loads(marker.read_text()) == wanted:
            logger.info("[%d/%d] explaining %s: done, skipped", index, len(models), model)
            continue
        logger.info("[%d/%d] explaining %s on %d test ECGs with %s", index, len(models),
                    model, plan.n_explain, ", ".join(plan.methods_for(model)))
        faithfulness_run(workdir, list(plan.methods_for(model)), "test", plan.n_explain,
                         settings=plan.faithfulness, keep_attributions=_FIGURE_ECGS,
                         allow_data_move=allow_data_move)
        # Written last: its presence means the whole explanation stage of this model finished.
        atomic.write_json(marker, wanted)
    for model in plan.models_explained_by_tree_shap:
        _explain_tree_shap(plan, run_dir(out, plan.explain_task, model))


def _explain_tree_shap(plan: Plan, workdir: Path) -> None:
    """Tree SHAP of a feature model on the networks' explained ECGs, scored for faithfulness
    and localisation with the networks' budget (baselines.tree_shap_run)."""
    from baselines.tree_shap_run import METHODS, score_tree_shap

    marker = workdir / "faithfulness_settings.json"
    wanted = {**_settings_record(plan, "xgboost"), "methods": list(METHODS)}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        logger.info("tree SHAP of %s: done, skipped", workdir.name)
        return
    logger.info("tree SHAP of %s on %d test ECGs with planted evidence", workdir.name, plan.n_explain)
    score_tree_shap(workdir, plan.faithfulness, "test", plan.n_explain)
    atomic.write_json(marker, wanted)


def evaluation_counts(plan: Plan) -> dict[tuple[str, str], tuple[float, str]]:
    """(model, method) -> (model evaluations per ECG, 'forward' | 'gradient')."""
    from imn.bench.explain import evaluations_per_ecg

    return {(model, method): evaluations_per_ecg(method, plan.faithfulness.method_options.get(method, {}))
            for model in plan.models_explained for method in plan.methods_for(model)}


def tables_stage(plan: Plan, out: Path, device: str) -> list[Path]:
    runs = {(task, model): run_dir(out, task, model) for task in plan.tasks for model in plan.models}
    # The feature route's tree SHAP (synthetic data only) is scored as the networks' methods are.
    explained = {model: run_dir(out, plan.explain_task, model)
                 for model in plan.models_explained + plan.models_explained_by_tree_shap}
    task, targets = plan.explain_task, plan.faithfulness.targets
    rows = tables.classification_rows(runs)
    bootstrap = plan.config(plan.models[0], plan.tasks[0]).bootstrap_samples
    written = write_table(rows, out / "table_classification", tables.CLASSIFICATION_COLUMNS,
                          caption=tables.classification_caption(rows, bootstrap),
                          one_format_per_column=True)
    per_class = tables.per_class_rows(runs)
    if per_class:
        written += write_table(per_class, out / "table_per_class", tables.PER_CLASS_COLUMNS,
                               one_format_per_column=True)
    rows = tables.faithfulness_rows(explained)
    written += write_table(rows, out / "table_faithfulness",
                           tables.metric_columns(tables.FAITHFULNESS_METRICS),
                           caption=tables.faithfulness_caption(task, explained, targets, rows),
                           footnotes=tables.footnotes(rows), one_format_per_column=True)
    if plan.source == "synthetic":
        rows = tables.localisation_rows(explained)
        written += write_table(rows, out / "table_localisation",
                               tables.metric_columns(tables.LOCALISATION_METRICS),
                               caption=tables.localisation_caption(task, targets, rows),
                               one_format_per_column=True)
        rows = tables.localisation_by_finding_rows(explained)
        written += write_table(rows, out / "table_localisation_by_finding",
                               tables.metric_columns(tables.LOCALISATION_METRICS, by_finding=True),
                               caption=tables.localisation_caption(task, targets, rows),
                               one_format_per_column=True)
    trained = {model: run_dir(out, plan.explain_task, model) for model in plan.models}
    written += write_table(tables.cost_rows(trained, evaluation_counts(plan), device),
                           out / "table_cost", tables.COST_COLUMNS,
                           caption=tables.cost_caption(task, device))
    return written


def reproduce(plan: Plan, out: str | Path, *, figures: bool = True, allow_data_move: bool = False) -> dict[str, Any]:
    """Run every stage of ``plan`` into ``out`` (resuming); return the ``reproduce.json`` data.

    Runs already in ``out`` must have been trained on the plan's data
    (:mod:`imn.train.run_folder`); ``allow_data_move`` accepts the same data in a new folder.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Every trained run is checked before the ledger takes the new plan or any run changes.
    changes = check_runs(plan, out, allow_data_move)
    ledger = Ledger(out, plan)
    record = provenance.collect()
    ledger.data["provenance"] = record  # this invocation's; every one is listed below
    ledger.data.setdefault("invocations", []).append(
        {"created": record["created"], "git": record["git"], "command": ledger.data["command"]})
    device = _recorded_device({"provenance": record})
    ledger.save()
    start = time.perf_counter()
    with ledger.stage("train"):
        train_stage(plan, out, allow_data_move, changes)
    with ledger.stage("explain"):
        explain_stage(plan, out, allow_data_move)
    with ledger.stage("tables"):
        written = tables_stage(plan, out, device)
    if figures:
        from imn.view import write_report

        with ledger.stage("figures"):
            written += figures_stage(plan, out, device)
            written.append(write_report(out, out / "report.html",
                                        title=f"ECG explanations: {plan.source}, {plan.preset} preset"))
    ledger.data["outputs"] = sorted(str(path.relative_to(out)) for path in written)
    ledger.data["wall_seconds_total"] = round(sum(ledger.data["stage_seconds"].values()), 1)
    ledger.data["finished"] = True
    ledger.save()
    logger.info("reproduction finished in %s (this invocation); %s total over all invocations",
                format_seconds(time.perf_counter() - start), format_seconds(ledger.data["wall_seconds_total"]))
    return ledger.data


def _recorded_device(data: dict[str, Any]) -> str:
    """The device of a reproduction's runs, as :func:`reproduce` words it for its tables."""
    device = data.get("provenance", {}).get("device", {})
    return f"{device.get('platform', '?')}: {device.get('device_kind', '?')}"


def rebuild_tables(plan: Plan, out: str | Path) -> dict[str, Any]:
    """Write the tables of the finished reproduction in ``out`` again from its run folders,
    training, explaining and drawing nothing (``imn reproduce ... --tables-only``): for a
    change in how runs are scored or tabled, without CPU hours of re-running.

    The plan must be the one the folder was reproduced with (its training and explanation
    parts); the cost table keeps the device the runs were measured on. ``reproduce.json``
    records the invocation (``tables_only``) and adds its seconds to the tables stage.
    """
    from imn.errors import UserError

    out = Path(out)
    path = out / "reproduce.json"
    if not path.exists():
        raise UserError(f"{out} has no reproduce.json; run `imn reproduce` without --tables-only first")
    data = json.loads(path.read_text())
    if not data.get("finished"):
        raise UserError(f"the reproduction in {out} has not finished; run `imn reproduce` "
                        "without --tables-only to finish it")
    current = json.loads(json.dumps(plan.to_dict()))
    for part, name in ((_training_part, "training"), (_explanation_part, "explanation")):
        if part(data["plan"]) != part(current):
            raise UserError(f"the {name} settings asked for differ from those {out} was reproduced "
                            "with; its tables can only be rebuilt with the same command")
    record = provenance.collect()
    start = time.perf_counter()
    written = tables_stage(plan, out, _recorded_device(data))
    seconds = data.setdefault("stage_seconds", {}).get("tables", 0.0) + time.perf_counter() - start
    data["stage_seconds"]["tables"] = round(seconds, 1)
    data["wall_seconds_total"] = round(sum(data["stage_seconds"].values()), 1)
    data.setdefault("invocations", []).append(
        {"created": record["created"], "git": record["git"], "tables_only": True,
         "command": " ".join(["imn", *sys.argv[1:]]) if sys.argv else "imn reproduce --tables-only"})
    data["outputs"] = sorted(set(data.get("outputs", [])) | {str(p.relative_to(out)) for p in written})
    atomic.write_json(path, data, default=str)
    logger.info("%d tables of %s rebuilt", len(written), out)
    return data

