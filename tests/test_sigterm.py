"""A killed command (SIGTERM) still runs its clean-up: the reproduction ledger keeps the
seconds of the stage it was in."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from imn.cli import terminate_as_exit
from imn.reproduce.plan import make_plan
from imn.reproduce.runner import Ledger


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises before this ends


def test_sigterm_exits_through_finally_and_restores_the_handler(tmp_path):
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")
    ledger = Ledger(tmp_path, make_plan("tiny"))
    with pytest.raises(SystemExit) as stopped:
        with terminate_as_exit():
            with ledger.stage("train"):
                _terminate_self()
    assert stopped.value.code == 143
    recorded = json.loads((tmp_path / "reproduce.json").read_text())
    assert recorded["stage_seconds"]["train"] >= 0.0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
