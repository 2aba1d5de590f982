"""ECG data: PTB-XL and synthetic readers, normalisation, batching and sharding.

Import the submodules directly (``imn.data.ptbxl``, ``imn.data.synthetic``,
``imn.data.pipeline``); this package only re-exports the shared types, so importing it
stays cheap and does not pull in wfdb or JAX.
"""

from imn.data.dataset import (
    DEFAULT_SPLITS,
    LEADS,
    NUM_LEADS,
    EcgDataError,
    EcgDataset,
    Splits,
)

__all__ = ["DEFAULT_SPLITS", "LEADS", "NUM_LEADS", "EcgDataError", "EcgDataset", "Splits"]
