"""Models: ECG-IMN, IMN-direct, and a name -> constructor registry (baselines included)."""

from imn.models.imn import ECGIMN, IMNDirect, IMNOutput
from imn.models.registry import MODEL_NAMES, count_params, create_model

__all__ = ["ECGIMN", "IMNDirect", "IMNOutput", "MODEL_NAMES", "count_params", "create_model"]
