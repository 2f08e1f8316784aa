"""`profshim-collector report --format pprof`, read back by the real
consumer, `go tool pprof` (-top, -traces, -tags, -raw): sample counts and
times, leaf-first stacks, endpoint and request labels, mappings with build
ids, hostile names, selections, and write errors."""
import json
import re
import shutil
import subprocess

import pytest

from helpers import COLLECTOR, CPUSERVER, record_cpuserver
from helpers.pprof import GO, pprof

HOSTILE_EP = 'POST /q"uo\\te/<b>&amp;\nnext é✓ 日本'
HOSTILE_FN = 'weird"fn\\&amp;\n<tmpl> ünï'
HOSTILE_ID = 'req-7"<x>&\\'


def fixture_profile(clock="cpu", period_ns=10000000):
    """70 samples with leaf burn_alpha, 30 with leaf burn_beta (under the
    hostile endpoint), 4 through a hostile function of a library, 1 of a
    frame without a module; one kept request."""
    return {
        "version": 1,
        "sample": {"clock": clock, "period_ns": period_ns},
        "modules": [
            # The library comes first: the executable must still be the
            # profile's main mapping.
            {"name": "libweird.so.1", "path": "/usr/lib/libweird.so.1",
             "build_id": "00112233445566778899aabbccddeeff00112233"},
            {"name": "server", "path": "/srv/app/server",
             "build_id": "9f2c5e0d1b7a3c4e5f60718293a4b5c6d7e8f901"},
        ],
        "frames": [
            {"function": "main", "module": 1, "file": "server.c",
             "line": 10},
            {"function": "handle", "module": 1, "file": "server.c",
             "line": 20},
            {"function": "burn_alpha", "module": 1, "file": "server.c",
             "line": 42},
            {"function": "burn_beta", "module": 1, "file": "server.c",
             "line": 52},
            {"function": HOSTILE_FN, "module": 0},
            {"function": "orphan", "module": -1},
            # Same function and file as frame 1, another line.
            {"function": "handle", "module": 1, "file": "server.c",
             "line": 21},
        ],
        "stacks": [
            {"endpoint": "GET /alpha", "frames": [0, 1, 2], "samples": 70},
            {"endpoint": HOSTILE_EP, "frames": [0, 6, 3], "samples": 30},
            {"endpoint": HOSTILE_EP, "frames": [0, 1, 4], "samples": 4},
            {"frames": [5], "samples": 1},
        ],
        "data": {"GET /alpha": {"calls": 10, "samples": 70},
                 HOSTILE_EP: {"calls": 5, "samples": 34}},
        "requests": [
            {"id": HOSTILE_ID, "pid": 1, "tid": 1, "endpoint": "GET /alpha",
             "start": 1700000000.0, "duration": 0.07, "status": 200,
             "sampled": True, "manual": False, "samples": 7,
             "stacks": [{"frames": [0, 1, 2], "samples": 7}],
             "timeline": [[0.01, 0]]},
        ],
        "dropped": {"samples": 0, "events": 0, "requests": 0},
    }


def write_fixture(tmp_path, **kw):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(fixture_profile(**kw)))
    return path


def report(tmp_path, profile, *args, name="out.pb.gz"):
    """Run `report --format pprof` on the profile file; returns the output
    path."""
    out = tmp_path / name
    r = subprocess.run([str(COLLECTOR), "report", "--input", str(profile),
                        "--format", "pprof", "--output", str(out), *args],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    return out


TOP_ROW = re.compile(r"^\s*(\S+)\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.+)$")


def top(tmp_path, path, *args):
    """-top as {function: (flat, cum)} strings, rows in order, and the
    total; names with newlines are left out."""
    out = pprof(tmp_path, "-top", "-nodecount=100", *args, path)
    rows = [m.groups() for m in map(TOP_ROW.match, out.splitlines())
            if m and m.group(1) != "flat"]
    total = re.search(r"of (\S+) total", out).group(1)
    return {fn: (flat, cum) for flat, cum, fn in rows}, rows, total, out


pytestmark = pytest.mark.skipif(GO is None, reason="go is not installed")


def test_top_counts_and_times(tmp_path):
    out = report(tmp_path, write_fixture(tmp_path))

    funcs, rows, total, text = top(tmp_path, out, "-sample_index=samples")
    assert total == "105", text
    assert rows[0][2] == "burn_alpha", text
    assert funcs["burn_alpha"] == ("70", "70")
    assert funcs["burn_beta"] == ("30", "30")
    assert funcs["orphan"] == ("1", "1")
    assert funcs["handle"] == ("0", "104")
    assert funcs["main"] == ("0", "104")

    # The default sample type is the time: samples x the period.
    funcs, rows, total, text = top(tmp_path, out, "-unit=ms")
    assert "Type: cpu" in text
    assert total == "1050ms", text
    assert funcs["burn_alpha"] == ("700ms", "700ms")
    assert funcs["burn_beta"] == ("300ms", "300ms")

    raw = pprof(tmp_path, "-raw", out)
    assert "PeriodType: cpu nanoseconds\nPeriod: 10000000\n" in raw
    assert "samples/count cpu/nanoseconds[dflt]" in raw
    assert re.search(r"^\s+70\s+700000000: ", raw, re.M), raw
    assert re.search(r"^\s+30\s+300000000: ", raw, re.M), raw


def test_stacks_are_leaf_first_with_labels(tmp_path):
    out = report(tmp_path, write_fixture(tmp_path))
    traces = pprof(tmp_path, "-traces", "-sample_index=samples", out)
    blocks = re.split(r"^-+\+-+\n", traces, flags=re.M)[1:]
    alpha = [b for b in blocks if "burn_alpha" in b]
    assert len(alpha) == 1, traces
    lines = [ln.split()[-1] for ln in alpha[0].splitlines()
             if not ln.lstrip().startswith("endpoint:")]
    assert lines == ["burn_alpha", "handle", "main"], alpha[0]
    assert re.search(r"^\s+70\s+burn_alpha$", alpha[0], re.M), alpha[0]
    assert "endpoint:  GET /alpha\n" in alpha[0]
    beta = [b for b in blocks if "burn_beta" in b][0]
    assert f"endpoint:  {HOSTILE_EP}\n" in beta
    assert re.search(r"^\s+30\s+burn_beta$", beta, re.M), beta
    orphan = [b for b in blocks if "orphan" in b][0]
    assert "endpoint" not in orphan


def test_tags_endpoint_and_request(tmp_path):
    prof = write_fixture(tmp_path)
    tags = pprof(tmp_path, "-tags", "-sample_index=samples",
                 report(tmp_path, prof))
    assert re.search(r"endpoint: Total 104\.0\n", tags), tags
    assert re.search(r"70\.0 \(\s*67\.31%\): GET /alpha\n", tags), tags
    assert re.search(r"34\.0 \(\s*32\.69%\): " + re.escape(HOSTILE_EP) +
                     "\n", tags), tags
    # The whole profile's stacks are not one request's.
    assert "request_id" not in tags

    one = report(tmp_path, prof, "--request", HOSTILE_ID, name="req.pb.gz")
    tags = pprof(tmp_path, "-tags", "-sample_index=samples", one)
    assert re.search(r"request_id: Total 7\.0\n\s+7\.0 \(\s*100%\): " +
                     re.escape(HOSTILE_ID) + "\n", tags), tags
    assert re.search(r"endpoint: Total 7\.0\n\s+7\.0 \(\s*100%\): "
                     r"GET /alpha\n", tags), tags


def test_mappings_locations_and_hostile_names(tmp_path):
    out = report(tmp_path, write_fixture(tmp_path))
    raw = pprof(tmp_path, "-raw", out)
    maps = raw.split("\nMappings\n", 1)[1].splitlines()
    # The executable first, then the library; build ids as given.
    assert re.fullmatch(r"1: 0x0/0x0/0x0 /srv/app/server "
                        r"9f2c5e0d1b7a3c4e5f60718293a4b5c6d7e8f901 "
                        r"\[FN\]\[FL\]\[LN\]", maps[0]), raw
    assert re.fullmatch(r"2: 0x0/0x0/0x0 /usr/lib/libweird\.so\.1 "
                        r"00112233445566778899aabbccddeeff00112233 \[FN\]",
                        maps[1]), raw
    assert len(maps) == 2, raw
    locs = raw.split("\nLocations\n", 1)[1].split("\nMappings\n")[0]
    assert re.search(r" M=1 burn_alpha server\.c:42 ", locs), locs
    assert re.search(r" M=1 handle server\.c:21 ", locs), locs
    assert re.search(r" M=1 handle server\.c:20 ", locs), locs
    # The exact bytes of the name survive (pprof prints it in full as the
    # system name); the moduleless frame has no mapping.
    assert f"({HOSTILE_FN})" in locs, locs
    assert re.search(r": 0x0 orphan :0 ", locs), locs
    head = pprof(tmp_path, "-top", out)
    assert "File: server\n" in head
    assert "Build ID: 9f2c5e0d1b7a3c4e5f60718293a4b5c6d7e8f901\n" in head


def test_wall_clock_and_fractional_period(tmp_path):
    out = report(tmp_path,
                 write_fixture(tmp_path, clock="wall", period_ns=5025125.6))
    raw = pprof(tmp_path, "-raw", out)
    assert "PeriodType: wall nanoseconds\nPeriod: 5025126\n" in raw
    assert "samples/count wall/nanoseconds[dflt]" in raw
    # 70 x 5025125.6 ns, rounded once per stack.
    assert re.search(r"^\s+70\s+351758792: ", raw, re.M), raw
    assert "Type: wall" in pprof(tmp_path, "-top", out)


def test_selections(tmp_path):
    prof = write_fixture(tmp_path)
    ep = report(tmp_path, prof, "--endpoint", HOSTILE_EP, name="ep.pb.gz")
    funcs, _, total, text = top(tmp_path, ep, "-sample_index=samples")
    assert total == "34", text
    assert funcs["burn_beta"] == ("30", "30")
    assert "burn_alpha" not in funcs and "orphan" not in funcs

    fn = report(tmp_path, prof, "--function", "burn_alpha", name="fn.pb.gz")
    funcs, _, total, text = top(tmp_path, fn, "-sample_index=samples")
    assert total == "70", text
    assert set(funcs) == {"burn_alpha", "handle", "main"}


def test_empty_profile(tmp_path):
    prof = tmp_path / "empty.json"
    prof.write_text(json.dumps({"version": 1, "data": {}}))
    funcs, _, total, text = top(tmp_path, report(tmp_path, prof))
    assert funcs == {} and total == "0", text


def test_write_error_is_reported(tmp_path):
    with open("/dev/full", "wb") as full:
        r = subprocess.run([str(COLLECTOR), "report", "--input",
                            str(write_fixture(tmp_path)), "--format",
                            "pprof"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    assert r.returncode == 1
    assert "No space left on device" in r.stderr, r.stderr


def readelf_build_id(path):
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf")
def test_recorded_cpuserver_profile(servers, collectors, tmp_path):
    reqs = [("GET", "/alpha?ms=20", None, None)] * 15
    reqs += [("GET", "/beta?ms=5", None, None)] * 5
    statuses, saved, col = record_cpuserver(servers, collectors, tmp_path,
                                            reqs)
    assert statuses == [200] * 20
    assert saved.get("stacks"), "record wrote no stacks"
    samples = sum(s["samples"] for s in saved["stacks"])

    out = report(tmp_path, col.out, "--endpoint", "GET /alpha")
    alpha = sum(s["samples"] for s in saved["stacks"]
                if s.get("endpoint") == "GET /alpha")
    assert alpha >= 20, saved["data"]["GET /alpha"]
    funcs, rows, total, text = top(tmp_path, out, "-sample_index=samples")
    assert total == str(alpha), text
    assert rows[0][2] == "burn_alpha", text
    assert "File: cpuserver\n" in text
    assert f"Build ID: {readelf_build_id(CPUSERVER)}\n" in text

    whole = report(tmp_path, col.out, name="whole.pb.gz")
    _, _, total, text = top(tmp_path, whole, "-sample_index=samples")
    assert total == str(samples), text
    tags = pprof(tmp_path, "-tags", "-sample_index=samples", whole)
    assert re.search(rf"\b{alpha}\.0 \(.*\): GET /alpha\n", tags), tags
    raw = pprof(tmp_path, "-raw", whole)
    mapped = {m["path"]: m["build_id"] for m in saved["modules"]}
    for path, build_id in mapped.items():
        assert f" {path} {build_id} " in raw, raw
