"""CPython's test_signal under load: 20 runs plainly and 20 under the shim
(continuous, wall clock, 1000 Hz, a collector recording), with a CPU-burning
process per core beside them, four pairs of runs at a time. No test may
fail under the shim unless it also failed in a plain run
(scripts/cpython-tests.sh --repeat-signal; about 4 minutes on 2 cores)."""
import subprocess

from helpers import BUILD, ROOT


def test_cpython_signal_under_load_no_failure_of_the_shims_own():
    r = subprocess.run([str(ROOT / "scripts" / "cpython-tests.sh"),
                        "--repeat-signal", "20", "--pairs", "4", str(BUILD)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "no test_signal failure under profshim" in r.stdout
