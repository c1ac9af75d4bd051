"""The seeded stack shared by the modules of one test process is handed on only while it is still as seeded.

A module that breaks the stack and repairs it badly must not leave its breakage to the next module's verdicts:
``SeededStacks.unlike_seeded`` names each difference, and ``get`` then starts a fresh stack.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from metro_e2e.stack.gateway import Fault
from metro_e2e.storage import Storage

from .conftest import SeededStacks, _require_nginx, proc_stat


def test_a_stack_is_handed_on_only_while_it_is_as_seeded(tmp_path_factory):
    _require_nginx()
    stacks = SeededStacks(tmp_path_factory)
    try:
        stack = stacks.get()
        assert stacks.unlike_seeded() is None
        assert stacks.get() is stack

        storage = Storage(stack.config())
        saved = storage.get_bytes("ml-models", "latest/MLmodel")
        storage.put_bytes("ml-models", "latest/MLmodel", saved + b"\n# changed\n")
        assert stacks.unlike_seeded() == "latest/ differs from what seeding left"
        storage.put_bytes("ml-models", "latest/MLmodel", saved)
        assert stacks.unlike_seeded() is None

        storage.put_bytes("ml-models", ".metro-e2e-staging/left-behind.journal.json", b"{}")
        assert stacks.unlike_seeded() == "ml-models/.metro-e2e-staging/ differs from what seeding left"
        storage.delete_prefix("ml-models", ".metro-e2e-staging/")
        assert stacks.unlike_seeded() is None

        stack.reconfigure_gateway(faults=(Fault(path="^/ml-data/", status=500, why="test"),))
        assert stacks.unlike_seeded() == "the gateway is configured otherwise"
        stack.reconfigure_gateway(faults=())
        assert stacks.unlike_seeded() is None

        pgid = os.getpgid(stack.services["mlflow"].pid)
        os.killpg(pgid, signal.SIGSTOP)
        try:
            # SIGSTOP lands asynchronously: wait (bounded) until the kernel shows the process stopped
            deadline = time.monotonic() + 10
            while proc_stat(stack.services["mlflow"].pid)[0] not in ("T", "t") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert stacks.unlike_seeded() == "mlflow is stopped"
        finally:
            os.killpg(pgid, signal.SIGCONT)
        assert stacks.unlike_seeded() is None

        (stack.serving.model_dir / "MLmodel").write_bytes(b"not what latest/ holds")
        assert stacks.unlike_seeded() == "the model server serves other files than the seeded model"

        with pytest.warns(UserWarning, match="seeded stack replaced: the model server serves other files"):
            replacement = stacks.get()
        assert replacement is not stack and stacks.replaced == [
            "the model server serves other files than the seeded model"
        ]
        assert not stack.services["mlflow"].running() and stacks.unlike_seeded() is None
    finally:
        stacks.close()
