"""``imn reproduce``: from data to the tables and figures of the paper in one resumable command.

:mod:`.plan` says what each preset trains and explains, :mod:`.runner` runs it into an output
folder, :mod:`.tables` and :mod:`.figures` turn the run folders into tables and figures.
"""

from imn.reproduce.plan import MODELS, PTBXL_TASKS, Plan, applicable_methods, make_plan
from imn.reproduce.runner import reproduce

__all__ = ["MODELS", "PTBXL_TASKS", "Plan", "applicable_methods", "make_plan", "reproduce"]
