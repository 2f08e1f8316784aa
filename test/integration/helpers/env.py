"""Where profshim's build is, and the environments the tests start
processes in: without any profiling setting, with the shim preloaded, or as
a new user of `profshim run` would have it."""
import os
import subprocess
from pathlib import Path

# helpers/ is test/integration/helpers: the repository is three levels up.
ROOT = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("PROFSHIM_BUILD", ROOT / "build"))
SHIM = BUILD / "shim" / "libprofshim.so"
COLLECTOR = BUILD / "collector" / "profshim-collector"
CPUSERVER = BUILD / "test" / "cpuserver"
# The real interpreter binary, not a wrapper script: its symbols are what
# the profile must show.
PYTHON = os.path.realpath("/usr/bin/python3")

PROFILING_VARS = [
    "ENABLE_PROFILING", "PROFILING_SAMPLE_RATE", "PROFILING_MAX_DEPTH",
    "PROFILING_HZ", "PROFILING_CLOCK", "PROFILING_MODE", "PROFILING_MANUAL",
    "PROFILING_MANUAL_HZ", "PROFILING_MANUAL_MAX_PER_SEC",
    "PROFILING_MAX_ENDPOINTS", "PROFILING_RING_SIZE", "PROFILING_CPU_ENGINE",
    "LD_PRELOAD",
]


def clean_env(**extra):
    """The test's environment without any profiling setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILING_VARS}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _preload():
    """LD_PRELOAD for the shim. A shim built with AddressSanitizer
    (-Db_sanitize=address,undefined, the sanitizer pass of scripts/test.sh)
    needs the ASan runtime loaded before anything else in the process; the
    servers' own leaks are theirs, so leak checking is off in them."""
    try:
        sanitized = b"libasan.so" in SHIM.read_bytes()
    except OSError:
        sanitized = False
    if not sanitized:
        return {"LD_PRELOAD": str(SHIM)}
    asan = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                          capture_output=True, text=True).stdout.strip()
    return {"LD_PRELOAD": f"{os.path.realpath(asan)} {SHIM}",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


PRELOAD = _preload()


def shim_env(**settings):
    """Environment that preloads the shim with the given settings."""
    return clean_env(**PRELOAD, **settings)

# With a shim built with AddressSanitizer (the sanitizer pass), the ASan
# runtime must be preloaded first: the user's LD_PRELOAD, which profshim
# keeps in front of the shim.
ASAN = {k: v for k, v in PRELOAD.items() if k != "LD_PRELOAD"}
if " " in PRELOAD["LD_PRELOAD"]:
    ASAN["LD_PRELOAD"] = PRELOAD["LD_PRELOAD"].split()[0]


def user_env(**extra):
    """A new user's environment: no profiling variables (but the ASan
    runtime when the shim needs it)."""
    env = clean_env(**ASAN)
    if "LD_PRELOAD" in extra and "LD_PRELOAD" in ASAN:
        extra["LD_PRELOAD"] = ASAN["LD_PRELOAD"] + " " + extra["LD_PRELOAD"]
    env.update(extra)
    return env
