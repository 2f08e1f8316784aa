"""Code the integration tests share, importable from every sub-folder of
test/integration as `helpers` (conftest.py puts test/integration on
sys.path):

- env: where the build is (ROOT, BUILD, SHIM, COLLECTOR, CPUSERVER) and the
  environments processes start in (clean_env, shim_env, user_env);
- net: ports and clients (free_port, wait_port, keepalive, raw_exchange...);
- processes: Server, Collector, start_cpuserver, record_cpuserver, calls...;
- nginx, apache, pprof: nginx and Apache as servers under test, `go tool
  pprof`;
- rings: the ring layout as ctypes structures, real rings to corrupt, and
  the sanitizer build of the collector (the hostile-input tests).

The names most tests use are exported here; nginx, apache, pprof and rings
are imported by the tests that need them.
"""
from .env import (ASAN, BUILD, COLLECTOR, CPUSERVER, PRELOAD,
                  PROFILING_VARS, PYTHON, ROOT, SHIM, clean_env, shim_env,
                  user_env)
from .net import (free_port, in_threads, keepalive, open_connections,
                  parallel_keepalive, process_tree, raw_exchange,
                  wait_connections_closed, wait_port)
from .processes import (Collector, Server, calls, dump_json,
                        record_cpuserver, remove_rings, shm_listing, sigcgt,
                        start_cpuserver)

__all__ = [
    "ASAN",
    "BUILD",
    "COLLECTOR",
    "CPUSERVER",
    "PRELOAD",
    "PROFILING_VARS",
    "PYTHON",
    "ROOT",
    "SHIM",
    "clean_env",
    "shim_env",
    "user_env",
    "free_port",
    "in_threads",
    "keepalive",
    "open_connections",
    "parallel_keepalive",
    "process_tree",
    "raw_exchange",
    "wait_connections_closed",
    "wait_port",
    "Collector",
    "Server",
    "calls",
    "dump_json",
    "record_cpuserver",
    "remove_rings",
    "shm_listing",
    "sigcgt",
    "start_cpuserver",
]
