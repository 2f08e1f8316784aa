"""The README's demo command works on a fresh clone of the repository, and
its table shows samples in proportion to each endpoint's CPU time."""
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
    # At its default length (5 s): enough samples of the 4 ms endpoint to
    # tell a proportion from noise.
    r = subprocess.run(["scripts/demo.sh"], cwd=clone,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for ep in ("GET /alpha", "GET /beta", "GET /gamma", "GET /fast",
               "GET /users/:id"):
        assert re.search(rf"^{re.escape(ep)}\s+\d+", out, re.M), out
    assert re.search(r"GET /alpha .*burn_alpha", out), out
    assert "?profile=1 request" in out
    # Each CPU-burning endpoint's samples, against the CPU time the server
    # measured for its requests sampled by rate, at the rate the profile
    # says. Before the CPU clock was set up once per thread, GET /gamma
    # (2 ms of CPU a request) got a tenth of its due.
    rate = float(re.search(r"at (\d+) samples a CPU second", out).group(1))
    for ep in ("GET /alpha", "GET /beta", "GET /gamma"):
        m = re.search(rf"^{re.escape(ep)}\s+(?:\S+\s+){{6}}(\S+)\s+(\d+)\s",
                      out, re.M)
        assert m, out
        due = float(m.group(1)) / 1000 * rate
        assert due >= 15, out
        assert 0.5 * due <= int(m.group(2)) <= 1.6 * due, (ep, out)
    m = re.search(r"^profile JSON: (\S+)$", out, re.M)
    assert m, out
    prof = json.loads(open(m.group(1)).read())
    assert prof["data"]["GET /alpha"]["calls"] > 0
    shutil.rmtree(clone)
