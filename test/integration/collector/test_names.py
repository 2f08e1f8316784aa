"""The names a profile shows for native code: C++ functions demangled in
every output, and stripped binaries named from their separate debug file
(found by build id or by .gnu_debuglink, as Debian's -dbgsym packages
install them) or from their MiniDebugInfo (.gnu_debugdata).

The programs are real: cpuserver loads a C++ plugin (test/servers/
cxxburn.cc) that the test builds with g++; the stripped binaries are copies
of cpuserver that the test strips with binutils, the way distributions do."""
import json
import re
import shutil
import subprocess

from helpers import (COLLECTOR, CPUSERVER, ROOT, Collector, Server,
                     dump_json, free_port, keepalive, shim_env)
from helpers.pprof import pprof

CXX_SOURCE = ROOT / "test" / "servers" / "cxxburn.cc"
# The leaf and its caller as the C++ demangler writes them, without
# parameter lists or clone suffixes (churn is a .constprop clone at -O2).
LEAF = "(anonymous namespace)::Table<int, std::pair<int, long> >::churn"
CALLER = "profshim_test::Burner<std::pair<int, long> >::spin"


def run(*argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True,
                       text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{argv}: {r.stderr}"
    return r.stdout


def profile_cpuserver(servers, collectors, tmp_path, argv, path,
                      requests=20, extra=()):
    """Run cpuserver (argv: the binary and its arguments after the port)
    under the shim, every request sampled, with a collector recording it
    (extra: its options); serve `requests` GETs of path and return the
    profile and the collector."""
    port = free_port()
    srv = Server([argv[0], port, *argv[1:]],
                 shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                          PROFILING_HZ="499"), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid, extra=extra)
    collectors.append(col)
    reqs = [("GET", path, None, None)] * requests
    assert keepalive(srv.port, reqs) == [200] * requests
    srv.stop()
    return col.finish(), col


def report(profile_path, fmt, out):
    run(COLLECTOR, "report", "--input", profile_path, "--format", fmt,
        "--output", out)
    return out


def test_cxx_names_demangled_in_every_output(servers, collectors, tmp_path):
    plugin = tmp_path / "libcxxburn.so"
    run("g++", "-O2", "-g", "-fno-omit-frame-pointer", "-shared", "-fPIC",
        "-o", plugin, CXX_SOURCE)
    prof, col = profile_cpuserver(servers, collectors, tmp_path,
                                  [CPUSERVER, plugin, "--plugin-early"],
                                  "/plugin?ms=25")

    # JSON: top_functions and the frames of the stacks.
    ep = prof["data"]["GET /plugin"]
    assert ep["samples"] >= 20, dump_json(ep)
    top = ep["top_functions"][0]
    assert top["function"] == LEAF, dump_json(ep)
    assert top["module"] == "libcxxburn.so"
    assert top["file"].endswith("cxxburn.cc") and top["line"] > 0, top
    assert CALLER in {f["function"] for f in ep["top_functions"]}, \
        dump_json(ep)
    frames = {f["function"]: f for f in prof["frames"]}
    # The symbol as in the file stays with the frame.
    assert frames[LEAF]["system_name"].startswith(
        "_ZN12_GLOBAL__N_15TableIiSt4pairIilEE5churn"), frames[LEAF]
    assert frames[CALLER]["system_name"] == \
        "_ZN13profshim_test6BurnerISt4pairIilEE4spinEd"
    # Not mangled, no second name.
    assert "system_name" not in frames["serve"]
    assert not any(f.startswith("_Z") for f in frames), sorted(frames)

    # Folded: names keep their spaces, the count follows the last one.
    folded = report(col.out, "folded", tmp_path / "p.folded").read_text()
    lines = [ln for ln in folded.splitlines() if LEAF in ln]
    assert lines, folded[:2000]
    leaf = 0
    for ln in lines:
        stack, count = ln.rsplit(" ", 1)
        assert int(count) > 0
        assert f";{CALLER};{LEAF}" in stack, ln
        if stack.split(";")[-1] == LEAF:
            leaf += int(count)
    assert leaf >= 0.5 * ep["samples"], folded[:2000]

    # pprof, as `go tool pprof` reads it: the readable name, and the
    # mangled one as the function's system name.
    pb = report(col.out, "pprof", tmp_path / "p.pb.gz")
    text = pprof(tmp_path, "-top", "-nodecount=200",
                 "-sample_index=samples", pb)
    assert LEAF in text and CALLER in text, text
    traces = pprof(tmp_path, "-traces", "-sample_index=samples", pb)
    assert f"{LEAF}\n" in traces and f"{CALLER}\n" in traces, traces[:3000]
    raw = pprof(tmp_path, "-raw", pb)
    assert "_ZN13profshim_test6BurnerISt4pairIilEE4spinEd" in raw, raw[:4000]

    # speedscope: the shared frame names.
    ss = json.loads(report(col.out, "speedscope",
                           tmp_path / "p.speedscope.json").read_text())
    names = {f["name"] for f in ss["shared"]["frames"]}
    assert LEAF in names and CALLER in names, sorted(names)

    # HTML: the data the page's script reads.
    page = report(col.out, "html", tmp_path / "p.html").read_text()
    m = re.search(r'<script type="application/json" id="profile-data">\n'
                  r'(.*?)\n</script>', page, re.S)
    assert m, page[:2000]
    assert LEAF in json.dumps(json.loads(m.group(1))), m.group(1)[:2000]

    # diff against itself: the function rows name it.
    out = run(COLLECTOR, "diff", col.out, col.out)
    assert LEAF in out, out


def stripped_copy(tmp_path, name):
    """A copy of cpuserver in its own directory, and where to strip it."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    shutil.copy(CPUSERVER, exe)
    return exe


def build_id(path):
    out = run("readelf", "-n", path)
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


def assert_named(prof, module, with_lines):
    """burn_alpha is the top function of /alpha, in module, and serve (a
    static function: a local symbol, gone with the symbol table) calls it."""
    ep = prof["data"]["GET /alpha"]
    assert ep["samples"] >= 20, dump_json(ep)
    top = ep["top_functions"][0]
    assert top["function"] == "burn_alpha", dump_json(ep)
    assert top["module"] == module
    assert "serve" in {f["function"] for f in ep["top_functions"]}, \
        dump_json(ep)
    if with_lines:
        assert top["file"].endswith("cpuserver.c") and top["line"] > 0, top


def test_stripped_binary_unnamed_without_debug_file(servers, collectors,
                                                    tmp_path):
    """What the three tests below repair: a stripped cpuserver's own
    functions have no name (only offsets in the module)."""
    exe = stripped_copy(tmp_path, "cpuserver-bare")
    run("strip", "--strip-all", exe)
    prof, _ = profile_cpuserver(servers, collectors, tmp_path, [exe],
                                "/alpha?ms=25")
    ep = prof["data"]["GET /alpha"]
    top = ep["top_functions"][0]
    assert top["function"].startswith("cpuserver-bare+0x"), dump_json(ep)


def test_separate_debug_file_by_build_id(servers, collectors, tmp_path):
    """The debug file where a -dbgsym package puts it,
    DEBUGDIR/.build-id/xx/yyyy.debug, with --debug-dir standing for
    /usr/lib/debug: names and source lines come back."""
    exe = stripped_copy(tmp_path, "cpuserver-dbgsym")
    bid = build_id(exe)
    debugdir = tmp_path / "debug"
    target = debugdir / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    target.parent.mkdir(parents=True)
    run("objcopy", "--only-keep-debug", exe, target)
    run("strip", "--strip-all", exe)
    prof, col = profile_cpuserver(servers, collectors, tmp_path, [exe],
                                  "/alpha?ms=25",
                                  extra=["--debug-dir", debugdir])
    assert_named(prof, "cpuserver-dbgsym", with_lines=True)


def test_separate_debug_file_by_debuglink(servers, collectors, tmp_path):
    """A .gnu_debuglink naming a debug file in the binary's .debug/
    directory (no debug directory given)."""
    exe = stripped_copy(tmp_path, "cpuserver-link")
    dotdebug = exe.parent / ".debug"
    dotdebug.mkdir()
    debug = dotdebug / "cpuserver-link.debug"
    run("objcopy", "--only-keep-debug", exe, debug)
    run("strip", "--strip-all", exe)
    # objcopy reads the debug file for its CRC from where it is now.
    run("objcopy", f"--add-gnu-debuglink={debug}", exe)
    # No .build-id tree anywhere holds it: only the link finds it.
    prof, _ = profile_cpuserver(servers, collectors, tmp_path, [exe],
                                "/alpha?ms=25")
    assert_named(prof, "cpuserver-link", with_lines=True)


def test_minidebuginfo(servers, collectors, tmp_path):
    """MiniDebugInfo, made with the recipe of gdb's manual: the symbols of
    functions not in .dynsym, xz-compressed into .gnu_debugdata of the
    stripped binary. Names come back (no source lines: no DWARF)."""
    exe = stripped_copy(tmp_path, "cpuserver-mini")
    work = tmp_path / "mini"
    work.mkdir()

    def symbols(*nm_args):
        out = run("nm", *nm_args, "--format=posix", "--defined-only", exe)
        return out.splitlines()

    dynsyms = {ln.split()[0] for ln in symbols("-D")}
    funcs = {ln.split()[0] for ln in symbols()
             if ln.split()[1] in ("T", "t", "D")}
    keep = work / "keep_symbols"
    keep.write_text("".join(f"{s}\n" for s in sorted(funcs - dynsyms)))
    assert {"burn_alpha", "serve"} <= funcs - dynsyms
    mini = work / "mini_debuginfo"
    run("objcopy", "--only-keep-debug", exe, mini)
    run("objcopy", "-S", "--remove-section", ".gdb_index",
        "--remove-section", ".comment", f"--keep-symbols={keep}", mini)
    run("strip", "--strip-all", "-R", ".comment", exe)
    run("xz", mini)
    run("objcopy", f"--add-section=.gnu_debugdata={mini}.xz", exe)
    sections = run("readelf", "-S", exe)
    assert ".gnu_debugdata" in sections and ".symtab" not in sections
    prof, _ = profile_cpuserver(servers, collectors, tmp_path, [exe],
                                "/alpha?ms=25")
    assert_named(prof, "cpuserver-mini", with_lines=False)
