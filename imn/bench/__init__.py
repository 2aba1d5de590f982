"""Benchmarks of the real jitted code paths, one module per job.

* :mod:`imn.bench.train` -- training and inference steps (``imn bench train``).
* :mod:`imn.bench.explain` -- explanation methods and faithfulness metrics
  (``imn bench explain``, ``imn bench faithfulness``).
* :mod:`imn.bench.profile` -- per-operation time of a training step (``imn bench profile``).
"""

from imn.bench.train import bench_train, median_seconds, real_step_callables

__all__ = ["bench_train", "median_seconds", "real_step_callables"]
