import pytest

from imn.bench import bench_train


@pytest.mark.parametrize("model", ["imn", "inception1d"])
def test_bench_train_times_the_real_steps(model):
    result = bench_train(model, batch=4, sampling_rate=100, seconds=2.0, steps=1)
    assert result["input_length"] == 200
    assert result["train_samples_per_s"] > 0 and result["inference_samples_per_s"] > 0
    # Inference skips the backward pass and the update, so it must be faster per sample.
    assert result["inference_samples_per_s"] > result["train_samples_per_s"]
    assert result["params"] > 10_000
