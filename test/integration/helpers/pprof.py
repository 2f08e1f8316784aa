"""Go's `go tool pprof`, the real consumer of the pprof reports
(test_report_pprof.py, test_push.py)."""
import shutil
import subprocess

from .env import clean_env

GO = shutil.which("go")


def pprof(tmp_path, *args):
    """`go tool pprof ARGS`, with a home and temporary directory of the
    test's own; returns stdout."""
    assert GO, "go tool pprof is needed (golang-go: scripts/setup.sh)"
    home, tmp = tmp_path / "home", tmp_path / "pprof-tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = clean_env(HOME=str(home), PPROF_TMPDIR=str(tmp),
                    GOCACHE=str(tmp / "gocache"))
    r = subprocess.run([GO, "tool", "pprof", *map(str, args)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout
