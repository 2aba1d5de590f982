"""ECG-IMN: an interpretable hypernetwork for 12-lead ECG classification, in JAX/Flax NNX."""

__version__ = "0.1.0"
