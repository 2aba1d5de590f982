"""Does the placement of xECGNet's coarse maps explain their chance-level localisation?

    python scripts/xecgnet_placement_check.py --workdir results/synthetic/runs/synthetic/xecgnet \
        [--n 50]

Reads a trained xECGNet run folder (its checkpoint must be there: checkpoints are not
committed, so this needs the machine that trained it or a re-run) and, on the first ``--n``
test ECGs explained for a planted local finding (as the reproduction picks them,
``targets="evidence"``), scores its attention map placed two ways: by the uniform rule
(each of the ``T'`` steps covers ``L / T'`` samples) and at the centres of the windows its
'SAME' pools read (``baselines.gradcam.window_centres``, what ``imn.explain`` now uses), plus
Grad-CAM as placed now. Prints mean mask AUROC and pointing game of each; writes nothing into
the run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from baselines.gradcam import upsample_time  # noqa: E402
from imn.explain import attribute  # noqa: E402
from imn.explain.run import localisation_scores, open_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a trained xecgnet run folder")
    parser.add_argument("--n", type=int, default=50, help="explained test ECGs")
    args = parser.parse_args(argv)

    explained = open_run(args.workdir, "test", args.n, targets="evidence")
    model = explained.model
    model.eval()
    coarse = nnx.jit(lambda m, x: m.attention_map(x))(model, jnp.asarray(explained.x))  # (n, T')
    uniform = np.asarray(upsample_time(coarse, explained.x.shape[1]))
    maps = {
        "attention, uniform placement": np.repeat(uniform[:, :, None], explained.x.shape[2], axis=2),
        "attention, window centres": attribute("attention", model, explained.x, explained.targets),
        "gradcam, window centres": attribute("gradcam", model, explained.x, explained.targets),
    }
    for name, attribution in maps.items():
        scores = localisation_scores(np.asarray(attribution), explained.evidence)
        print(f"{name}: mask AUROC {np.nanmean(scores['mask_auroc']):.3f}, pointing game "
              f"{np.nanmean(scores['pointing_game']):.3f} "
              f"({int(np.isfinite(scores['mask_auroc']).sum())} ECGs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
