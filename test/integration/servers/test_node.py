"""profshim in node's http server (Debian's nodejs) whose endpoint runs a
CPU-heavy JavaScript function (test/servers/jsburn.js): the CPU goes to
code V8 compiled at run time, in anonymous memory no object covers, with
no unwind tables. The shim's walker follows that code's frame pointers
until it meets code with tables again, so a sample in JavaScript is a
stack that goes on through V8's frames to node's own C++ frames (the
event loop, the HTTP parser's callback, V8's entry) and the thread's
start, where it used to be the JIT address alone.

The frames' names are the collector's business (demangled C++, perf-map
names for JIT code, both may change): these tests read only each frame's
module and each stack's depth."""
import shutil

from helpers import (ROOT, Collector, Server, dump_json, free_port,
                     keepalive, shim_env)

NODE = shutil.which("node") or "/usr/bin/node"
JSBURN = ROOT / "test" / "servers" / "jsburn.js"


def is_node(module):
    """The node binary, or libnode where node is built as a shared
    library."""
    return module == "node" or module.startswith("libnode.so")


def endpoint_stacks(prof, endpoint):
    """[(samples, [module name or None for each frame, root first])] of
    the endpoint's stacks in the profile."""
    mods = prof["modules"]
    out = []
    for s in prof["stacks"]:
        if s["endpoint"] != endpoint:
            continue
        names = []
        for i in s["frames"]:
            m = prof["frames"][i].get("module", -1)
            names.append(mods[m]["name"] if m is not None and m >= 0
                         else None)
        out.append((s["samples"], names))
    return out


def test_node_javascript_samples_reach_node_frames(servers, collectors,
                                                   tmp_path):
    port = free_port()
    # Every request sampled (the default samples one in ten); the CPU
    # clock at its default rate.
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1")
    srv = Server([NODE, JSBURN, port], env, port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)

    # 300 requests of about 5 ms of JavaScript each: some 150 samples.
    n = 300
    assert keepalive(port, [("GET", "/report", None, None)] * n) == [200] * n
    srv.stop()
    prof = col.finish()
    ep = prof["data"]["GET /report"]
    assert ep["calls"] == n and ep["sampled_calls"] == n, dump_json(ep)
    stacks = endpoint_stacks(prof, "GET /report")
    total = sum(k for k, _ in stacks)
    assert total == ep["samples"] and total >= 50, dump_json(ep)

    # Deeper than 4 frames, through node's own frames: at least 80% of the
    # samples (138 of 138 on the project's machine, 11 of 128 before the
    # walker followed frame pointers).
    deep = sum(k for k, mods in stacks
               if len(mods) > 4 and any(m and is_node(m) for m in mods))
    assert deep >= 0.8 * total, \
        (deep, total, dump_json(sorted(stacks, key=len)[:5]))

    # The samples whose interrupted pc is JIT code (in no object): the
    # walk left it. Most of the endpoint's time is there.
    in_jit = [(k, mods) for k, mods in stacks if mods[-1] is None]
    jit_total = sum(k for k, _ in in_jit)
    assert jit_total >= 0.3 * total, (jit_total, total)
    jit_deep = sum(k for k, mods in in_jit
                   if len(mods) > 4 and is_node(mods[0] or "")
                   and any(m and is_node(m) for m in mods[1:-1]))
    assert jit_deep >= 0.8 * jit_total, \
        (jit_deep, jit_total, dump_json(in_jit[:5]))
    assert prof["dropped"]["samples"] == 0

    # node's C++ frames read as C++ (v8::…, node::…), never mangled.
    fns = {prof["frames"][i]["function"]
           for s in prof["stacks"] if s["endpoint"] == "GET /report"
           for i in s["frames"]}
    assert any(f.startswith("v8::") for f in fns), sorted(fns)[:40]
    assert any(f.startswith("node::") for f in fns), sorted(fns)[:40]
    assert not [f for f in fns if f.startswith("_Z")], sorted(fns)
