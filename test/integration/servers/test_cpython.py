"""A peer's own test suite under the shim: CPython's regression tests for
signals, EINTR, selectors, sockets, subprocesses, threads and HTTP servers
pass under continuous wall-clock sampling at 1000 Hz exactly as without it,
both with PYTHONUNBUFFERED=1 as container images set it
(scripts/cpython-tests.sh runs both and compares, two test modules at a
time; about 3.5 minutes). Of test_signal only test_siginterrupt_off runs
here: test_cpython_signal.py runs the rest twenty times each way."""
import subprocess

from helpers import BUILD, ROOT


def test_cpython_suite_same_with_and_without_shim():
    r = subprocess.run([str(ROOT / "scripts" / "cpython-tests.sh"),
                        "--signal-once", "--jobs", "2", str(BUILD)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "same results with and without profshim" in r.stdout
