"""Libraries a server loads with dlopen() while it runs (Apache's modules,
CPython's extension modules, uvloop) are profiled like the rest of it:
their functions named, in their module, and stacks walked through them to
the server's own frames. cpuserver loads test/servers/burnplugin.c (built
-O2 without frame pointers, like a distribution's library) and burns CPU
in it."""
import time

from helpers import (BUILD, CPUSERVER, Collector, Server, dump_json,
                     free_port, keepalive, shim_env)

PLUGIN = BUILD / "test" / "libburnplugin.so"


def start(servers, collectors, tmp_path, *extra):
    port = free_port()
    srv = Server([CPUSERVER, port, PLUGIN, *extra],
                 shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                          PROFILING_HZ="499"), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    return srv, col


def burn_in_plugin(srv, col):
    """20 requests of 25 ms of CPU in the plugin; the profile."""
    reqs = [("GET", "/plugin?ms=25", None, None)] * 20
    assert keepalive(srv.port, reqs) == [200] * len(reqs)
    srv.stop()
    return col.finish()


def assert_plugin_profiled(prof):
    paths = [m["path"] for m in prof["modules"]]
    assert any(p.endswith("libburnplugin.so") for p in paths), paths
    ep = prof["data"]["GET /plugin"]
    assert ep["calls"] == 20 and ep["sampled_calls"] == 20, dump_json(ep)
    # Half a second of CPU in the plugin: dozens of samples even where the
    # CPU clock's timer fires less often than asked (a busy machine).
    assert ep["samples"] >= 20, dump_json(ep)
    top = ep["top_functions"][0]
    assert top["function"] == "burn_plugin", dump_json(ep)
    assert top["module"] == "libburnplugin.so", dump_json(top)
    assert top["self_samples"] >= 0.8 * ep["samples"], dump_json(ep)
    # The walk goes on through the plugin's frame (found by its unwind
    # tables: no frame pointers) to the server's own frames (handle() is
    # inlined into serve()) and the thread's start.
    callers = {f["function"] for f in ep["top_functions"]}
    assert {"serve", "start_thread"} <= callers, dump_json(ep)
    deep = [s for s in prof["stacks"] if s["endpoint"] == "GET /plugin"
            and len(s["frames"]) > 2]
    assert sum(s["samples"] for s in deep) >= 0.8 * ep["samples"], \
        dump_json([s for s in prof["stacks"]
                   if s["endpoint"] == "GET /plugin"][:5])


def test_library_loaded_after_the_first_request(servers, collectors,
                                                tmp_path):
    srv, col = start(servers, collectors, tmp_path)
    # The first request creates the ring and its module map; the plugin is
    # not loaded yet.
    assert srv.get("/fast")[0] == 200
    assert srv.get("/load")[0] == 200
    # New objects reach the module map at the next request a second after
    # the last look at most.
    time.sleep(1.2)
    assert srv.get("/fast")[0] == 200
    assert_plugin_profiled(burn_in_plugin(srv, col))


def test_library_loaded_before_the_first_request(servers, collectors,
                                                 tmp_path):
    # Loaded after the shim's constructor but before the ring exists: the
    # ring's module map, made at the first request, has it from the start.
    srv, col = start(servers, collectors, tmp_path, "--plugin-early")
    assert_plugin_profiled(burn_in_plugin(srv, col))


def test_library_loaded_while_serving(servers, collectors, tmp_path):
    """Burned in at once after the load, as a server that imports an
    extension module in its first request's handler does: the first
    request's samples meet code in no object the shim knew, and the next
    request looks for new objects (10 ms on, not a second), so the walks
    of the other 19 go through the plugin's frames."""
    srv, col = start(servers, collectors, tmp_path)
    assert srv.get("/fast")[0] == 200
    assert srv.get("/load")[0] == 200
    assert_plugin_profiled(burn_in_plugin(srv, col))
