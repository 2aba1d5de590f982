"""Black-box Flax baselines and the post-hoc explainers compared against ECG-IMN."""
