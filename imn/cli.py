"""The ``imn`` command: a thin argument parser over the library's entry points.

Each subcommand only parses its arguments and calls one library function, so everything it
does is also reachable (and tested) from Python. A mistake the user can fix (a path, a method
name, a config field, data that does not match a run) ends in one line ``imn: error: ...``
and exit status 2 (:mod:`imn.errors`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from imn.data.dataset import SUPPORTED_SAMPLING_RATES, EcgDataError
from imn.data.synthetic import LEVELS as SYNTHETIC_LEVELS
from imn.errors import UserError

USAGE_DESCRIPTION = """Train ECG-IMN (an interpretable hypernetwork for 12-lead ECG classification) and black-box
baselines, explain their predictions, and score every explanation with the same
faithfulness metrics.

typical use:
  imn data info /data/ptb-xl                                   what a data folder holds
  imn train --config configs/imn.py:quick --workdir runs/imn    train (resumes if killed)
  imn explain --workdir runs/imn --method imn                  attributions of the test ECGs
  imn faithfulness --workdir runs/imn --methods imn,saliency   faithfulness table
  imn reproduce --preset quick                                 everything, tables and figures

'imn COMMAND --help' describes each command."""

PRESET_HELP = ("tiny: seconds per model, for tests; quick: about 15 min on a 2-core CPU, a smoke "
               "test of the whole pipeline at toy size, not a result; cpu: the full task list at "
               "100 Hz, about an hour on a 2-core CPU for 500 records; paper / paper500: the "
               "paper's recipe (up to 100 epochs) at 100 / 500 Hz, for a GPU")
ALLOW_MOVE_HELP = ("accept the run's data in a folder other than the one it was trained on "
                   "(its contents, classes and record counts must still match)")


def _available_rates(root: Path) -> list[int]:
    return [rate for rate in SUPPORTED_SAMPLING_RATES if (root / f"records{rate}").is_dir()]


DATA_HELP = ("the data: KIND:DIR with KIND ptbxl, cinc, cpsc2018, mimic, tfds or synthetic "
             "(a bare DIR is PTB-XL, or the synthetic benchmark if 'imn data synth' wrote it); "
             "'synthetic' alone generates it")


def cmd_data_info(args: argparse.Namespace) -> int:
    from imn.data.sources import default_task, load_source, parse_data_spec

    kind, root = parse_data_spec(args.root)
    rate = args.sampling_rate
    if kind in ("ptbxl", "synthetic") and root is not None:
        rates = _available_rates(Path(root))
        if not rates:
            raise EcgDataError(f"{root}: no records100/ or records500/ folder; is this a PTB-XL-layout folder?")
        rate = rate or rates[0]
        print(f"{root}: {'synthetic benchmark' if kind == 'synthetic' else 'PTB-XL layout'}; "
              f"sampling rates present: {', '.join(f'{r} Hz' for r in rates)}")
    else:
        rate = rate or 100
        print(f"{root or 'generated'}: {kind} data, read at {rate} Hz")
    if kind == "ptbxl" and not args.task:
        from imn.data.ptbxl import TASKS

        tasks = list(TASKS)
    else:
        tasks = args.task or [default_task(kind)]
    for task in tasks:
        started = time.perf_counter()
        dataset = load_source(kind, root, task, rate, progress=True, strict=args.strict)
        print(dataset.summary())
        print(f"  (loaded in {time.perf_counter() - started:.1f} s)")
    return 0


def cmd_data_tfds(args: argparse.Namespace) -> int:
    from imn.data.tfds_ptbxl import load_tfds_ptbxl, prepare_tfds_ptbxl

    for task in args.task or ["superdiagnostic"]:
        started = time.perf_counter()
        folder = prepare_tfds_ptbxl(args.ptbxl, args.out, task, args.sampling_rate)
        dataset = load_tfds_ptbxl(args.out, task, args.sampling_rate)
        print(f"{folder}: {len(dataset)} records, ready in {time.perf_counter() - started:.1f} s "
              f"(train with --data tfds:{args.out} --set data.task={task})")
    return 0


def cmd_data_verify(args: argparse.Namespace) -> int:
    from imn.data.verify import verify_tree

    report = verify_tree(args.root, args.checksums, progress=True)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_data_synth(args: argparse.Namespace) -> int:
    from imn.data.synthetic import make_synthetic, write_synthetic

    started = time.perf_counter()
    dataset = make_synthetic(args.n, sampling_rate=args.sampling_rate, seed=args.seed,
                             difficulty=args.level)
    generated = time.perf_counter() - started
    out = write_synthetic(dataset, args.out)
    print(f"generated {len(dataset)} synthetic ECGs in {generated:.1f} s; wrote {out}")
    print(dataset.summary())
    return 0


def cmd_data_plot(args: argparse.Namespace) -> int:
    from imn.data.sources import default_task, load_source, parse_data_spec
    from imn.plots.ecg import plot_ecg

    kind, root = parse_data_spec(args.root)
    dataset = load_source(kind, root, args.task or default_task(kind), args.sampling_rate)
    if not 0 <= args.index < len(dataset):
        raise EcgDataError(f"{root}: index {args.index} is outside 0..{len(dataset) - 1}")
    record = dataset.subset([args.index])
    present = [name for name, flag in zip(dataset.classes, record.labels[0]) if flag > 0]
    overlay = None
    if record.evidence is not None:
        # Classes whose evidence is the whole record (NORM, a rhythm) would shade everything
        # and hide the localised evidence; shade only classes with localised masks.
        local = [k for k in range(dataset.num_classes) if record.evidence[0, k].mean() < 0.5]
        overlay = record.evidence[0, local].any(axis=0)
        shaded = [dataset.classes[k] for k in local if record.evidence[0, k].any()]
        if not overlay.any():
            overlay = None
    title = f"ecg_id {int(record.ecg_ids[0])}: {', '.join(present) or 'no label'}"
    label = f"planted evidence of {', '.join(shaded)}" if overlay is not None else ""
    plot_ecg(record.signals[0], dataset.sampling_rate, overlay=overlay,
             overlay_label=label, title=title, out=args.out, layout=args.layout)
    print(f"wrote {args.out}")
    return 0


def _setup_logging() -> None:
    import logging

    # The project's own logger gets its own handler: absl (imported by Orbax) puts a handler
    # on the root logger first, which would make logging.basicConfig a silent no-op.
    logger = logging.getLogger("imn")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def cmd_train(args: argparse.Namespace) -> int:
    from imn.train.config import load_config
    from imn.train.trainer import train_and_evaluate

    _setup_logging()
    overrides = list(args.set)
    if args.data:
        overrides = _data_overrides(args.data, overrides)
    config = load_config(args.config, overrides)
    from baselines.tabular import is_tabular

    if is_tabular(config.model.name):  # the clinical-feature route: features + classical model
        from baselines.tabular import train_and_evaluate as train_tabular

        summary = train_tabular(config, args.workdir)
    else:
        summary = train_and_evaluate(config, args.workdir, allow_data_move=args.allow_data_move)
    test = summary["test"]
    print(json.dumps({"workdir": args.workdir, "protocol": summary["protocol"],
                      "best_epoch": summary["best_epoch"],
                      "val_macro_auroc": summary["best_val_macro_auroc"],
                      "test_macro_auroc": test["macro_auroc"],
                      "test_macro_auroc_ci": [test["macro_auroc_ci_low"], test["macro_auroc_ci_high"]]},
                     indent=2))
    return 0


def _data_overrides(spec: str, overrides: list[str]) -> list[str]:
    """``--data KIND:DIR`` as config overrides. The recipe's task (a PTB-XL task) gives way
    to the source's default task unless ``--set data.task=...`` names one."""
    from imn.data.sources import default_task, parse_data_spec

    kind, root = parse_data_spec(spec)
    extra = [f"data.source={kind}"] + ([f"data.root={root}"] if root else [])
    if kind not in ("ptbxl", "tfds", "synthetic") and not any(o.startswith("data.task=") for o in overrides):
        extra.append(f"data.task={default_task(kind)}")
    return extra + overrides


def _seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``; anything else is the user's to fix."""
    try:
        return tuple(int(seed) for seed in text.split(","))
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from None


def cmd_trainability(args: argparse.Namespace) -> int:
    from imn.data.sources import parse_data_spec
    from imn.reproduce.trainability import make_study, run_study

    _setup_logging()
    root = None
    if args.data:
        kind, root = parse_data_spec(args.data)
        if kind != "ptbxl":
            raise UserError(f"imn trainability: --data must be ptbxl:DIR, got {args.data!r}")
    seeds = _seeds(args.seeds) if args.seeds else (0, 1, 2)
    variants = tuple(args.variants.split(",")) if args.variants else None
    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    study = make_study(args.preset, root, seeds=seeds, variants=variants, overrides=tuple(args.set),
                       tasks=tasks)
    result = run_study(study, args.out, figures=not args.no_figures, train=not args.no_train)
    print(json.dumps({"out": args.out, "written": result["written"],
                      "total_seconds": result["total_seconds"]}, indent=2))
    return 0


def cmd_paper_recipe(args: argparse.Namespace) -> int:
    from imn.data.sources import parse_data_spec
    from imn.reproduce.paper_recipe import make_plan, run_paper_recipe

    _setup_logging()
    kind, root = parse_data_spec(args.data)
    if kind != "ptbxl":
        raise UserError(f"imn paper-recipe: --data must be ptbxl:DIR, got {args.data!r}")
    plan = make_plan(args.preset, root, seeds=_seeds(args.seeds),
                     models=tuple(args.models.split(",")) if args.models else None,
                     protocols=tuple(args.protocols.split(",")) if args.protocols else None,
                     overrides=tuple(args.set))
    result = run_paper_recipe(plan, args.out, figures=not args.no_figures)
    print(json.dumps({"out": args.out, "written": result["written"],
                      "total_seconds": result["total_seconds"]}, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imn.train.trainer import evaluate_workdir

    _setup_logging()
    result = evaluate_workdir(args.workdir, args.split, data=args.data, allow_data_move=args.allow_data_move)
    print(json.dumps(result[args.split], indent=2))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from imn.explain.run import explain_run

    _setup_logging()
    print(explain_run(args.workdir, args.method, args.split, args.n, targets=args.targets, data=args.data,
                      allow_data_move=args.allow_data_move))
    return 0


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(name.strip() for name in text.split(",") if name.strip()) if text else None


def cmd_faithfulness(args: argparse.Namespace) -> int:
    from imn.explain.run import faithfulness_run

    _setup_logging()
    faithfulness_run(args.workdir, list(_names(args.methods) or ()), args.split, args.n,
                     data=args.data, steps=args.steps, unit=args.unit, segments=args.segments,
                     targets=args.targets, allow_data_move=args.allow_data_move)
    print((Path(args.workdir) / f"faithfulness_{args.split}.md").read_text())
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from imn.view import write_report

    _setup_logging()
    path = write_report(args.workdir, args.out, split=args.split, data=args.data)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    import os

    from imn.reproduce import make_plan, reproduce

    _setup_logging()
    from imn.data.sources import parse_data_spec

    kind, root = (None, None) if args.synthetic else parse_data_spec(
        args.data or os.environ.get("IMN_PTBXL") or "synthetic")
    plan = make_plan(args.preset, root=root, source=kind, synthetic=args.synthetic,
                     models=_names(args.models),
                     tasks=_names(args.tasks), methods=_names(args.methods), n_explain=args.n_explain)
    out = Path(args.out or f"results/{plan.source}-{plan.preset}")
    if args.tables_only:
        from imn.reproduce.runner import rebuild_tables

        summary = rebuild_tables(plan, out)
    else:
        summary = reproduce(plan, out, figures=not args.no_figures, allow_data_move=args.allow_data_move)
    for table in ("table_classification", "table_per_class", "table_faithfulness", "table_localisation",
                  "table_localisation_by_finding", "table_cost"):
        path = out / f"{table}.md"
        if path.exists():
            print(f"\n## {table}\n\n{path.read_text()}")
    print(f"{len(summary['outputs'])} files in {out}; wall time {summary['wall_seconds_total']:.0f} s")
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    from imn.bench.train import COMPUTE_DTYPES, bench_train
    from imn.models import MODEL_NAMES

    models = MODEL_NAMES if args.model == "all" else _names(args.model)
    dtypes = _names(args.dtype)
    for name in models:
        if name not in MODEL_NAMES:
            raise UserError(f"unknown model {name!r}; registered: {', '.join(MODEL_NAMES)}")
    for dtype in dtypes:
        if dtype not in COMPUTE_DTYPES:
            raise UserError(f"unknown --dtype {dtype!r}; choose from {', '.join(COMPUTE_DTYPES)}")
    for name in models:
        for dtype in dtypes:
            result = bench_train(name, batch=args.batch, sampling_rate=args.sampling_rate,
                                 num_classes=args.num_classes, steps=args.steps, compute_dtype=dtype,
                                 seconds=args.seconds)
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{result['model']} ({result['params']:,} parameters), {dtype}, batch "
                      f"{result['batch']}, {result['sampling_rate']} Hz on {result['device']}: "
                      f"train {result['train_samples_per_s']} samples/s ({result['train_step_ms']} ms/step), "
                      f"inference {result['inference_samples_per_s']} samples/s", flush=True)
    return 0


def cmd_bench_profile(args: argparse.Namespace) -> int:
    from imn.bench.profile import format_profile, profile_step

    result = profile_step(args.model, batch=args.batch, sampling_rate=args.sampling_rate,
                          compute_dtype=args.dtype, steps=args.steps, seconds=args.seconds)
    print(json.dumps(result) if args.json else format_profile(result, top=args.top))
    return 0


RUN_DATA_HELP = ("where the run's data is now, as KIND:DIR of the kind it was trained on "
                 "(default: the folder recorded in its config.json)")
TARGETS_HELP = ("which records and classes are explained: 'predicted' (the class, or for a binary "
                "task the side, the model predicts) or 'evidence' (synthetic data: the first records "
                "with a planted local finding, for that class)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imn", description=USAGE_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect, generate and plot ECG data").add_subparsers(
        dest="data_command", required=True
    )
    info = data.add_parser("info", help="records, rates and label counts per task and split")
    info.add_argument("root", metavar="DATA", help=DATA_HELP)
    info.add_argument("--task", action="append",
                      help="only this task (repeatable); default: every PTB-XL task, else the source's default")
    info.add_argument("--sampling-rate", type=int, choices=SUPPORTED_SAMPLING_RATES)
    info.add_argument("--strict", action="store_true",
                      help="fail on any record that would need resampling, cropping, padding or an "
                           "assumed rate or lead order (otherwise counted and reported)")
    info.set_defaults(func=cmd_data_info)

    verify = data.add_parser("verify", help="check a PTB-XL folder against PhysioNet's SHA256SUMS.txt "
                                            "(exit 1 if a listed file differs or is missing)")
    verify.add_argument("root", metavar="DIR", help="the PTB-XL folder")
    verify.add_argument("--checksums", help="the checksum list (default: DIR/SHA256SUMS.txt)")
    verify.set_defaults(func=cmd_data_verify)

    synth = data.add_parser("synth", help="write a synthetic benchmark with ground-truth evidence")
    synth.add_argument("--out", required=True, help="output folder (PTB-XL layout)")
    synth.add_argument("--n", type=int, default=1000, help="number of records")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--level", default="default", choices=tuple(SYNTHETIC_LEVELS),
                       help="difficulty level (effect sizes, noise, look-alikes; README.md)")
    synth.add_argument("--sampling-rate", type=int, default=100, choices=SUPPORTED_SAMPLING_RATES)
    synth.set_defaults(func=cmd_data_synth)

    plot = data.add_parser("plot", help="plot one record on clinical ECG paper")
    plot.add_argument("root", metavar="DATA", help=DATA_HELP)
    plot.add_argument("--index", type=int, default=0, help="row of the loaded dataset")
    plot.add_argument("--task", help="default: the source's default task (PTB-XL: superdiagnostic)")
    plot.add_argument("--sampling-rate", type=int, default=100, choices=SUPPORTED_SAMPLING_RATES)
    plot.add_argument("--layout", default="6x2", choices=("6x2", "12x1"))
    plot.add_argument("--out", required=True, help="image path (.png or .pdf)")
    plot.set_defaults(func=cmd_data_plot)

    tfds = data.add_parser("tfds", help="write PTB-XL as a TFDS dataset (ArrayRecord; read with --data tfds:DIR)")
    tfds.add_argument("--ptbxl", required=True, help="the PTB-XL folder to convert")
    tfds.add_argument("--out", required=True, help="the TFDS data_dir")
    tfds.add_argument("--task", action="append", help="a task to build (repeatable; default superdiagnostic)")
    tfds.add_argument("--sampling-rate", type=int, default=100, choices=SUPPORTED_SAMPLING_RATES)
    tfds.set_defaults(func=cmd_data_tfds)

    from imn.data.download import add_download_parser

    add_download_parser(data)

    train = commands.add_parser("train", help="train a model (resumes an interrupted run)")
    train.add_argument("--config", required=True, help="configs/NAME.py:PRESET; presets: " + PRESET_HELP)
    train.add_argument("--workdir", required=True, help="run folder (checkpoints, metrics, predictions)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. data.task=norm_vs_mi (repeatable)")
    train.add_argument("--data", help=DATA_HELP + " (default: the config's data.source and data.root)")
    train.add_argument("--allow-data-move", action="store_true", help=ALLOW_MOVE_HELP + " (when resuming)")
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a run's best checkpoint")
    evaluate.add_argument("--workdir", required=True)
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--data", help=RUN_DATA_HELP)
    evaluate.add_argument("--allow-data-move", action="store_true", help=ALLOW_MOVE_HELP)
    evaluate.set_defaults(func=cmd_evaluate)

    explain = commands.add_parser("explain", help="attributions of a trained run (.npz)")
    explain.add_argument("--workdir", required=True)
    explain.add_argument("--method", required=True, help="imn, gradcam, saliency, integrated_gradients, ...")
    explain.add_argument("--split", default="test", choices=("train", "validation", "test"))
    explain.add_argument("--n", type=int, help="only the first N records of the split")
    explain.add_argument("--targets", default="predicted", choices=("predicted", "evidence"),
                         help=TARGETS_HELP)
    explain.add_argument("--data", help=RUN_DATA_HELP)
    explain.add_argument("--allow-data-move", action="store_true", help=ALLOW_MOVE_HELP)
    explain.set_defaults(func=cmd_explain)

    faith = commands.add_parser("faithfulness", help="faithfulness (and localisation) table of several methods")
    faith.add_argument("--workdir", required=True)
    faith.add_argument("--methods", default="imn,random", help="comma-separated method names")
    faith.add_argument("--split", default="test", choices=("train", "validation", "test"))
    faith.add_argument("--n", type=int, help="only the first N records of the split")
    faith.add_argument("--steps", type=int, default=50, help="perturbation steps of the curves")
    faith.add_argument("--unit", default="patch", choices=("sample", "patch"))
    faith.add_argument("--segments", type=int, default=20, help="time segments per lead (patch unit)")
    faith.add_argument("--targets", default="predicted", choices=("predicted", "evidence"),
                       help=TARGETS_HELP)
    faith.add_argument("--data", help=RUN_DATA_HELP)
    faith.add_argument("--allow-data-move", action="store_true", help=ALLOW_MOVE_HELP)
    faith.set_defaults(func=cmd_faithfulness)

    view = commands.add_parser(
        "view", help="one self-contained HTML page to browse a run's explanations offline")
    view.add_argument("--workdir", required=True,
                      help="a run folder, or a folder of runs (e.g. a reproduction under results/)")
    view.add_argument("--out", help="HTML file to write (default WORKDIR/report.html)")
    view.add_argument("--split", default="test", choices=("train", "validation", "test"))
    view.add_argument("--data", help=RUN_DATA_HELP + "; used to show the signals in mV")
    view.set_defaults(func=cmd_view)

    repro = commands.add_parser(
        "reproduce", help="train, evaluate, explain and score every model; write tables and figures (resumable)")
    repro.add_argument("--preset", default="quick", choices=("tiny", "quick", "cpu", "paper", "paper500"),
                       help=PRESET_HELP)
    source = repro.add_mutually_exclusive_group()
    source.add_argument("--data", help=DATA_HELP + " (default: $IMN_PTBXL, else synthetic data)")
    source.add_argument("--synthetic", action="store_true", help="use the synthetic benchmark")
    repro.add_argument("--out", help="output folder (default results/SOURCE-PRESET)")
    repro.add_argument("--models", help="comma-separated subset of the preset's models, or feature-route models "
                       "(xgboost, random_forest, ...: trained and tabled, not explained)")
    repro.add_argument("--tasks", help="comma-separated subset of the preset's tasks")
    repro.add_argument("--methods", help="comma-separated subset of the explanation methods")
    repro.add_argument("--n-explain", type=int, help="test ECGs explained per model")
    repro.add_argument("--no-figures", action="store_true", help="tables only")
    repro.add_argument("--tables-only", action="store_true",
                       help="rebuild the tables of a finished reproduction in --out from its run folders "
                            "(same command otherwise); trains, explains and draws nothing")
    repro.add_argument("--allow-data-move", action="store_true", help=ALLOW_MOVE_HELP + " (runs already in --out)")
    repro.set_defaults(func=cmd_reproduce)

    study = commands.add_parser(
        "trainability", help="the IMN trainability study: 4 models x seeds x tasks, curves and table (resumable)")
    study.add_argument("--data", help="ptbxl:DIR for norm_vs_mi and superdiagnostic (else synthetic only)")
    study.add_argument("--out", default="results/imn-trainability")
    study.add_argument("--preset", default="cpu", choices=("tiny", "quick", "cpu", "paper", "paper500"))
    study.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    study.add_argument("--variants", help="comma-separated subset of imn,imn_flax_init,imn_stable,cnn2d")
    study.add_argument("--tasks", help="comma-separated subset of norm_vs_mi,superdiagnostic,synthetic")
    study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="config override for every run (e.g. epochs=30)")
    study.add_argument("--no-figures", action="store_true")
    study.add_argument("--no-train", action="store_true",
                       help="train nothing: tables and figures of the runs finished so far")
    study.set_defaults(func=cmd_trainability)

    recipe = commands.add_parser(
        "paper-recipe",
        help="the paper's IMN (imn_softmax) and cnn2d with the paper's recipe on NORM vs MI under "
             "both selection protocols, beside the paper's numbers (resumable)")
    recipe.add_argument("--data", required=True, help="ptbxl:DIR")
    recipe.add_argument("--out", default="results/paper-recipe")
    recipe.add_argument("--preset", default="paper", choices=("tiny", "quick", "cpu", "paper", "paper500"),
                        help="paper: 100 Hz (a CPU will do on the slice); paper500: the paper's 500 Hz (a GPU)")
    recipe.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    recipe.add_argument("--models", help="comma-separated subset of imn_softmax,cnn2d")
    recipe.add_argument("--protocols", help="comma-separated subset of separate,merged_9_10")
    recipe.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run")
    recipe.add_argument("--no-figures", action="store_true")
    recipe.set_defaults(func=cmd_paper_recipe)

    bench = commands.add_parser("bench", help="speed benchmarks").add_subparsers(dest="bench_command", required=True)
    bench_train = bench.add_parser("train", help="training and inference samples/s of a model's jitted steps")
    bench_train.add_argument("--model", default="imn",
                             help="registered model names, comma-separated, or 'all'")
    bench_train.add_argument("--batch", type=int, default=64)
    bench_train.add_argument("--sampling-rate", type=int, default=100)
    bench_train.add_argument("--seconds", type=float, default=10.0, help="ECG duration")
    bench_train.add_argument("--num-classes", type=int, default=1)
    bench_train.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    bench_train.add_argument("--dtype", default="float32",
                             help="compute precision(s), comma-separated: float32, bfloat16")
    bench_train.add_argument("--json", action="store_true", help="one JSON object per line")
    bench_train.set_defaults(func=cmd_bench_train)

    profile = bench.add_parser(
        "profile", help="per-operation time of a model's training step (jax.profiler trace)")
    profile.add_argument("--model", default="imn", help="a registered model name")
    profile.add_argument("--batch", type=int, default=64)
    profile.add_argument("--sampling-rate", type=int, default=100)
    profile.add_argument("--seconds", type=float, default=10.0, help="ECG duration")
    profile.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    profile.add_argument("--steps", type=int, default=2, help="traced steps (times are per step)")
    profile.add_argument("--top", type=int, default=25, help="slowest operations listed")
    profile.add_argument("--json", action="store_true")
    profile.set_defaults(func=cmd_bench_profile)

    from imn.bench.explain import add_bench_parsers

    add_bench_parsers(bench)
    return parser


def _enable_compilation_cache() -> None:
    """Keep XLA programs between runs: a resumed or repeated command skips recompiling."""
    import os

    default = Path(os.environ.get("IMN_CACHE_DIR", Path.home() / ".cache" / "imn")) / "jax"
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(default))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a batch scheduler's stop) into ``SystemExit(143)`` while the
    command runs, so ``finally`` blocks and context managers still run: a reproduction records
    the seconds of the stage it was in, checkpoint managers close. Only where SIGTERM still
    has its default action (a host's own handler is left alone), and only in the main thread;
    the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _enable_compilation_cache()
    try:
        with terminate_as_exit():
            return args.func(args)
    except UserError as error:
        # Bad input is the user's to fix: say what is wrong, in one line, without a traceback.
        print(f"imn: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
