"""Shared fixtures for profshim's integration tests.

Every test starts real processes on 127.0.0.1: a server with libprofshim.so
preloaded, and a real profshim-collector recording that server's process
tree into a file under the test's tmp_path, with a control socket of its own
so tests never see each other's collectors.
"""
import sys
from pathlib import Path

import pytest

# The shared code is the `helpers` package next to this file: put this
# directory on sys.path whatever pytest's import mode, so that every test,
# in whatever sub-folder, imports it as `helpers`.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from helpers import remove_rings  # noqa: E402

# Tests written before helpers/ existed (on branches not merged yet) import
# these names from conftest: they still find them here. New tests import
# them from helpers.
from helpers import *  # noqa: E402,F401,F403


@pytest.fixture
def servers():
    """Servers started by a test, stopped at its end whatever happens."""
    started = []
    yield started
    for s in started:
        s.stop()
        # Rings no collector drained (the test ran none, or it failed):
        # the server's and its workers'.
        for pid in s.tree:
            remove_rings(pid)


@pytest.fixture
def collectors():
    started = []
    yield started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()

