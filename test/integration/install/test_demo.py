"""The README's demo command works on a fresh clone of the repository."""
import json
import re
import shutil
import subprocess

import pytest

from helpers import ROOT


def test_demo_on_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.fail("the demo test needs the git checkout it clones")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    r = subprocess.run(["scripts/demo.sh", "1"], cwd=clone,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for ep in ("GET /alpha", "GET /beta", "GET /gamma", "GET /fast",
               "GET /users/:id"):
        assert re.search(rf"^{re.escape(ep)}\s+\d+", out, re.M), out
    assert re.search(r"GET /alpha .*burn_alpha", out), out
    assert "?profile=1 request" in out
    m = re.search(r"^profile JSON: (\S+)$", out, re.M)
    assert m, out
    prof = json.loads(open(m.group(1)).read())
    assert prof["data"]["GET /alpha"]["calls"] > 0
    shutil.rmtree(clone)
