"""Per-operation time of a model's real training step (``imn bench profile``).

The trainer's jitted ``train_step`` (:func:`imn.bench.train.build_step_harness`) is run under
``jax.profiler`` with a Perfetto trace; every XLA operation's time is summed over the traced
steps and labelled from the compiled HLO with its kind (convolution, fusion, copy, ...) and
the JAX operation it came from (``op_name`` metadata, e.g. ``transpose(jvp())/conv_general_dilated``
is a convolution's gradient). The summary groups the time by the JAX primitive and by
forward / backward, which is what says where to optimise.

    imn bench profile --model imn --batch 64 --sampling-rate 100 [--dtype bfloat16] [--top 30]
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax

from imn.bench.train import build_step_harness, random_batch

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w-]+)\(")
_OP_NAME = re.compile(r'op_name="([^"]+)"')


def hlo_instructions(hlo_text: str) -> dict[str, dict[str, str]]:
    """``name -> {kind, shape, source}`` for every instruction of a compiled HLO module.

    ``source`` is the JAX ``op_name`` of the instruction (for a fusion, of its root).
    """
    instructions = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, kind = match.groups()
        op_name = _OP_NAME.search(line)
        instructions[name] = {
            "kind": kind,
            "shape": shape.split("{")[0],
            "source": op_name.group(1) if op_name else "",
        }
    return instructions


def _phase(source: str) -> str:
    if "transpose(" in source:
        return "backward"
    if "/jvp(" in source:
        return "forward"
    return "update" if source else "other"


def _primitive(source: str) -> str:
    return source.rsplit("/", 1)[-1] if source else "(layout copy)"


def _trace_durations(trace_dir: Path) -> collections.Counter:
    """Total microseconds per event name in the newest Perfetto trace under ``trace_dir``."""
    traces = sorted(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
    if not traces:
        raise RuntimeError(f"jax.profiler wrote no Perfetto trace under {trace_dir}")
    with gzip.open(traces[-1]) as handle:
        events = json.load(handle)["traceEvents"]
    totals: collections.Counter = collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            totals[event["name"]] += event.get("dur", 0)
    return totals


def profile_step(model_name: str, *, batch: int = 64, sampling_rate: int = 100, num_classes: int = 1,
                 seconds: float = 10.0, compute_dtype: str = "float32", steps: int = 2) -> dict:
    """Profile ``steps`` training steps of ``model_name`` on random data.

    Returns ``{"model", "step_ms", "op_ms_total", "ops": [{name, kind, shape, source, phase,
    ms}], "by_primitive": {primitive: ms}, "by_phase": {phase: ms}}`` with milliseconds per
    step, operations sorted by time.
    """
    length = int(round(seconds * sampling_rate))
    length -= length % 4
    x, y = random_batch(batch, length, 1 if model_name == "imn_softmax" else num_classes)
    harness = build_step_harness(model_name, x, y, sampling_rate=sampling_rate,
                                 compute_dtype=compute_dtype)
    compiled = harness.steps.train_step.lower(harness.state, harness.batch).compile()
    instructions = hlo_instructions(compiled.as_text())
    harness.train_once()  # compile and warm up
    harness.train_once()
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp, create_perfetto_trace=True)
        start = time.perf_counter()
        for _ in range(steps):
            harness.train_once()
        wall = (time.perf_counter() - start) / steps
        jax.profiler.stop_trace()
        totals = _trace_durations(Path(tmp))
    ops = []
    for name, micros in totals.items():
        if name not in instructions:
            continue  # runtime events (executor, Python frames), not XLA operations
        info = instructions[name]
        ops.append({"name": name, **info, "phase": _phase(info["source"]),
                    "ms": micros / steps / 1e3})
    ops.sort(key=lambda op: -op["ms"])
    by_primitive: collections.Counter = collections.Counter()
    by_phase: collections.Counter = collections.Counter()
    for op in ops:
        by_primitive[f"{op['phase']}: {_primitive(op['source'])}"] += op["ms"]
        by_phase[op["phase"]] += op["ms"]
    return {
        "model": model_name,
        "batch": batch,
        "sampling_rate": sampling_rate,
        "compute_dtype": compute_dtype,
        "step_ms": wall * 1e3,
        "op_ms_total": sum(op["ms"] for op in ops),
        "ops": ops,
        "by_primitive": dict(by_primitive.most_common()),
        "by_phase": dict(by_phase.most_common()),
    }


def format_profile(result: dict, top: int = 25) -> str:
    """A plain-text report: the grouped totals, then the ``top`` slowest operations."""
    total = result["op_ms_total"] or 1.0
    lines = [
        f"{result['model']}, batch {result['batch']}, {result['sampling_rate']} Hz, "
        f"{result['compute_dtype']}: {result['step_ms']:.0f} ms per step "
        f"({result['op_ms_total']:.0f} ms in XLA operations)",
        "",
        "by phase and JAX primitive:",
    ]
    for key, ms in result["by_primitive"].items():
        if ms / total >= 0.005:
            lines.append(f"  {ms:9.1f} ms {100 * ms / total:5.1f}%  {key}")
    lines += ["", f"slowest {top} operations:"]
    for op in result["ops"][:top]:
        lines.append(f"  {op['ms']:9.1f} ms {100 * op['ms'] / total:5.1f}%  {op['phase']:8s} "
                     f"{op['kind']:12s} {op['shape']:28s} {_primitive(op['source'])}")
    return "\n".join(lines)
