import pytest

from imn.bench import bench_train


@pytest.mark.parametrize("model", ["imn", "inception1d"])
def test_bench_train_times_the_real_steps(model):
    result = bench_train(model, batch=4, sampling_rate=100, seconds=2.0, steps=1)
    assert result["input_length"] == 200
    assert result["train_samples_per_s"] > 0 and result["inference_samples_per_s"] > 0
    # No timing comparison here: speed is judged by benchmarks on a quiet machine, and a
    # timed assertion fails whenever the CI machine is busy.
    assert result["compute_dtype"] == "float32"
    assert result["params"] > 10_000


def test_cli_bench_train_covers_models_and_precisions(capsys):
    import json

    from imn.cli import main

    assert main(["bench", "train", "--model", "imn,cnn2d", "--dtype", "float32,bfloat16",
                 "--batch", "4", "--seconds", "0.4", "--steps", "1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["compute_dtype"]) for r in rows] == [
        ("imn", "float32"), ("imn", "bfloat16"), ("cnn2d", "float32"), ("cnn2d", "bfloat16")]


def test_cli_bench_train_rejects_unknown_model_and_dtype(capsys):
    from imn.cli import main

    assert main(["bench", "train", "--model", "imn,nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["bench", "train", "--dtype", "float16"]) == 2
    assert "unknown --dtype 'float16'" in capsys.readouterr().err


def test_profile_step_attributes_time_to_the_model_operations():
    from imn.bench.profile import format_profile, profile_step

    result = profile_step("imn", batch=4, seconds=0.4, steps=1)
    assert result["ops"], "no XLA operation was matched to the trace"
    sources = " ".join(op["source"] for op in result["ops"])
    assert "conv_general_dilated" in sources
    # Forward and backward convolutions are told apart.
    assert {"forward", "backward"} <= set(result["by_phase"])
    assert any(key.startswith("backward: conv_general_dilated") for key in result["by_primitive"])
    assert abs(sum(result["by_phase"].values()) - result["op_ms_total"]) < 1e-6
    assert all(op["ms"] >= 0 for op in result["ops"])
    report = format_profile(result, top=5)
    assert "by phase and JAX primitive" in report and len(report.splitlines()) > 8


def test_hlo_instructions_reads_kind_shape_and_source():
    from imn.bench.profile import hlo_instructions

    text = ('  %fusion.3 = f32[2,3]{1,0} fusion(%p0), kind=kLoop, calls=%fc, '
            'metadata={op_name="jit(train_step)/transpose(jvp())/mul" stack_frame_id=1}\n'
            '  ROOT %copy.1 = f32[3,2]{1,0} copy(%fusion.3)\n')
    found = hlo_instructions(text)
    assert found["fusion.3"] == {"kind": "fusion", "shape": "f32[2,3]",
                                 "source": "jit(train_step)/transpose(jvp())/mul"}
    assert found["copy.1"]["kind"] == "copy" and found["copy.1"]["source"] == ""
