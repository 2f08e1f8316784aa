"""`report --format speedscope`: the file validates against speedscope's
own schema, and speedscope's own viewer (the npm package's release build,
in headless Chromium) imports it and shows its profiles and functions."""
import json
import re
import subprocess

from helpers import COLLECTOR, ROOT, record_cpuserver

JS = ROOT / "test" / "js"
CHECK = JS / "speedscope_check.js"
SCHEMA = JS / "node_modules" / "speedscope" / "dist" / "release" / \
    "file-format-schema.json"

HOSTILE_EP = 'GET /q"uo\\te\n<b>&amp;</b> é✓'
HOSTILE_FN = 'op<int>::"x"\\y\n&z'
PERIOD = 10_000_000  # ns, 100 Hz


def fixture_profile():
    """A profile with known stacks: GET /alpha 35 samples (30 in
    burn_alpha at two lines, 5 in serve), GET /beta 7, the hostile
    endpoint 2, GET /idle none; one kept request with a timeline."""
    return {
        "version": 1,
        "sample": {"clock": "cpu", "period_ns": PERIOD},
        "modules": [
            {"name": "cpuserver", "path": "/srv/cpuserver", "build_id": ""},
            {"name": "libc.so.6", "path": "/lib/libc.so.6", "build_id": "ab"},
        ],
        "frames": [
            {"function": "start_thread", "module": 1},                # 0
            {"function": "serve", "module": 0, "file": "cpuserver.c",
             "line": 110},                                            # 1
            {"function": "burn_alpha", "module": 0, "file": "cpuserver.c",
             "line": 42},                                             # 2
            {"function": "burn_alpha", "module": 0, "file": "cpuserver.c",
             "line": 40},                                             # 3
            {"function": "burn_beta", "module": 0, "file": "cpuserver.c",
             "line": 50},                                             # 4
            {"function": HOSTILE_FN, "module": -1},                   # 5
        ],
        "stacks": [
            {"endpoint": "GET /alpha", "frames": [0, 1, 2], "samples": 20},
            {"endpoint": "GET /alpha", "frames": [0, 1, 3], "samples": 10},
            {"endpoint": "GET /alpha", "frames": [0, 1], "samples": 5},
            {"endpoint": "GET /beta", "frames": [0, 1, 4], "samples": 7},
            {"endpoint": HOSTILE_EP, "frames": [0, 5], "samples": 2},
        ],
        "data": {
            "GET /alpha": {"calls": 10, "total_time": 0.35, "samples": 35,
                           "status": {"2xx": 10},
                           "histogram": [[0.03, 8], [0.05, 2]]},
            "GET /beta": {"calls": 4, "total_time": 0.07, "samples": 7,
                          "status": {"2xx": 4}, "histogram": [[0.02, 4]]},
            HOSTILE_EP: {"calls": 1, "total_time": 0.02, "samples": 2,
                         "status": {"2xx": 1}, "histogram": [[0.02, 1]]},
            "GET /idle": {"calls": 3, "total_time": 0.001, "samples": 0,
                          "status": {"2xx": 3}, "histogram": [[0.0004, 3]]},
        },
        "requests": [{
            "id": "9-1-1", "endpoint": "GET /alpha", "pid": 9, "tid": 10,
            "start": 1.0, "duration": 0.04, "status": 200, "sampled": True,
            "manual": True, "samples": 4,
            "stacks": [{"frames": [0, 1, 2], "samples": 3},
                       {"frames": [0, 1], "samples": 1}],
            "timeline": [[0.005, 0], [0.015, 1], [0.025, 0], [0.035, 0]],
        }],
        "dropped": {"samples": 0, "events": 0, "requests": 0},
    }


def report(src, out, *args):
    r = subprocess.run([str(COLLECTOR), "report", "--input", str(src),
                        "--format", "speedscope", "--output", str(out),
                        *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def fixture_report(tmp_path, *args):
    src = tmp_path / "profile.json"
    src.write_text(json.dumps(fixture_profile()))
    out = tmp_path / "out.speedscope.json"
    return out, report(src, out, *args)


def view(path):
    """What speedscope's viewer shows for the file (speedscope_check.js)."""
    r = subprocess.run(["node", str(CHECK), str(path)], capture_output=True,
                       text=True, timeout=120, cwd=JS)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---- the schema ---------------------------------------------------------

def schema_errors(value, schema, root, where="$"):
    """Errors of value against the draft-07 keywords speedscope's schema
    uses ($ref, anyOf, type, const, enum, properties, required, items)."""
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return schema_errors(value, node, root, where)
    if "anyOf" in schema:
        alts = [schema_errors(value, s, root, where) for s in schema["anyOf"]]
        if all(alts):
            return [f"{where}: matches no alternative: {alts}"]
        return []
    types = {"object": dict, "array": list, "string": str}
    t = schema.get("type")
    if t == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{where}: not a number"]
    elif t and not isinstance(value, types[t]):
        return [f"{where}: not {t}"]
    errs = []
    if "const" in schema and value != schema["const"]:
        errs.append(f"{where}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errs.append(f"{where}: no {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errs += schema_errors(value[key], sub, root, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += schema_errors(v, schema["items"], root, f"{where}[{i}]")
    return errs


def check_file(doc):
    """Schema, plus what the schema cannot say and speedscope's importer
    relies on: frame indices in range, one weight per sample, endValue
    the sum of the weights."""
    schema = json.loads(SCHEMA.read_text())
    assert schema_errors(doc, schema, schema) == []
    nframes = len(doc["shared"]["frames"])
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
        assert len(p["samples"]) == len(p["weights"])
        assert all(0 <= f < nframes for s in p["samples"] for f in s)
        assert all(w > 0 for w in p["weights"])
        assert p["startValue"] == 0
        assert p["endValue"] == sum(p["weights"])


def weighted_stacks(doc, profile):
    """{(function, ...) root first: nanoseconds} of one profile."""
    names = [f["name"] for f in doc["shared"]["frames"]]
    out = {}
    for s, w in zip(profile["samples"], profile["weights"]):
        key = tuple(names[f] for f in s)
        out[key] = out.get(key, 0) + w
    return out


def test_schema_checker_rejects_broken_files():
    """The checker the other tests rely on does catch a bad file."""
    schema = json.loads(SCHEMA.read_text())
    good = {"$schema": "https://www.speedscope.app/file-format-schema.json",
            "shared": {"frames": [{"name": "f"}]},
            "profiles": [{"type": "sampled", "name": "p",
                          "unit": "nanoseconds", "startValue": 0,
                          "endValue": 1, "samples": [[0]], "weights": [1]}]}
    assert schema_errors(good, schema, schema) == []
    for broken in ({**good, "$schema": "x"},
                   {**good, "shared": {"frames": [{"file": "a.c"}]}},
                   {**good, "profiles": [{**good["profiles"][0],
                                          "unit": "ns"}]},
                   {**good, "profiles": [{**good["profiles"][0],
                                          "samples": [["0"]]}]}):
        assert schema_errors(broken, schema, schema) != []


def test_speedscope_file_is_the_profile(tmp_path):
    _, doc = fixture_report(tmp_path)
    check_file(doc)
    assert doc["$schema"] == \
        "https://www.speedscope.app/file-format-schema.json"
    assert doc["exporter"] == "profshim-collector"
    assert doc["activeProfileIndex"] == 0
    assert doc["name"] == "profshim cpu profile"
    # One profile per endpoint with samples, heaviest first.
    assert [p["name"] for p in doc["profiles"]] == \
        ["GET /alpha", "GET /beta", HOSTILE_EP]
    alpha, beta, hostile = doc["profiles"]
    assert alpha["endValue"] == 35 * PERIOD
    # A function is one frame, whichever of its lines was sampled.
    assert weighted_stacks(doc, alpha) == {
        ("start_thread", "serve", "burn_alpha"): 30 * PERIOD,
        ("start_thread", "serve"): 5 * PERIOD}
    assert weighted_stacks(doc, beta) == {
        ("start_thread", "serve", "burn_beta"): 7 * PERIOD}
    assert weighted_stacks(doc, hostile) == {
        ("start_thread", HOSTILE_FN): 2 * PERIOD}
    frames = {f["name"]: f for f in doc["shared"]["frames"]}
    assert len(frames) == len(doc["shared"]["frames"]) == 5
    # Source file and the lowest line seen; the module without sources.
    assert frames["burn_alpha"] == {"name": "burn_alpha",
                                    "file": "cpuserver.c", "line": 40}
    assert frames["start_thread"] == {"name": "start_thread",
                                      "file": "/lib/libc.so.6"}
    assert frames[HOSTILE_FN] == {"name": HOSTILE_FN}


def test_speedscope_selections(tmp_path):
    _, doc = fixture_report(tmp_path, "--endpoint", "GET /beta")
    check_file(doc)
    assert doc["name"] == "profshim cpu profile: GET /beta"
    assert [p["name"] for p in doc["profiles"]] == ["GET /beta"]

    _, doc = fixture_report(tmp_path, "--function", "burn_alpha")
    check_file(doc)
    assert [p["name"] for p in doc["profiles"]] == ["GET /alpha"]
    assert weighted_stacks(doc, doc["profiles"][0]) == {
        ("start_thread", "serve", "burn_alpha"): 30 * PERIOD}

    # One request: its samples in the order they were taken.
    _, doc = fixture_report(tmp_path, "--request", "9-1-1")
    check_file(doc)
    assert doc["name"] == "profshim cpu profile: GET /alpha request 9-1-1"
    (p,) = doc["profiles"]
    assert p["name"] == "GET /alpha request 9-1-1"
    names = [f["name"] for f in doc["shared"]["frames"]]
    assert [names[s[-1]] for s in p["samples"]] == \
        ["burn_alpha", "serve", "burn_alpha", "burn_alpha"]
    assert p["weights"] == [PERIOD] * 4

    # Nothing selected still gives a file speedscope opens.
    _, doc = fixture_report(tmp_path, "--endpoint", "GET /idle")
    check_file(doc)
    assert len(doc["profiles"]) == 1
    assert doc["profiles"][0]["samples"] == []


def test_speedscope_viewer_shows_every_profile(tmp_path):
    out, doc = fixture_report(tmp_path)
    seen = view(out)
    assert seen["pageErrors"] == [] and seen["dialogs"] == []
    assert not seen["failed"] and seen["loaded"], seen
    assert seen["title"] == "profshim cpu profile - speedscope"
    # The profile switcher lists them with their exact names and weights.
    assert seen["profiles"] == [
        {"name": "GET /alpha", "weight": "350.00ms"},
        {"name": "GET /beta", "weight": "70.00ms"},
        {"name": HOSTILE_EP, "weight": "20.00ms"}]
    assert [v["toolbar"] for v in seen["views"]] == [
        "GET /alpha (1/3)", "GET /beta (2/3)", f"{HOSTILE_EP} (3/3)"]
    rows = [{r["name"]: r for r in v["rows"]} for v in seen["views"]]
    assert set(rows[0]) == {"start_thread", "serve", "burn_alpha"}
    assert rows[0]["burn_alpha"]["self"] == "300.00ms (86%)"
    assert rows[0]["serve"]["total"] == "350.00ms (100%)"
    assert rows[0]["serve"]["self"] == "50.00ms (14%)"
    assert rows[0]["burn_alpha"]["file"].startswith("cpuserver.c")
    assert set(rows[1]) == {"start_thread", "serve", "burn_beta"}
    assert rows[2][HOSTILE_FN]["self"] == "20.00ms (100%)"


def test_speedscope_viewer_shows_one_request(tmp_path):
    out, _ = fixture_report(tmp_path, "--request", "9-1-1")
    seen = view(out)
    assert seen["pageErrors"] == [] and seen["dialogs"] == []
    assert not seen["failed"] and seen["loaded"], seen
    assert seen["title"] == \
        "profshim cpu profile: GET /alpha request 9-1-1 - speedscope"
    (v,) = seen["views"]
    assert v["toolbar"] == "GET /alpha request 9-1-1"
    rows = {r["name"]: r for r in v["rows"]}
    assert rows["burn_alpha"]["self"] == "30.00ms (75%)"


def test_speedscope_viewer_check_notices_a_broken_file(tmp_path):
    """The viewer check fails for a file speedscope cannot import."""
    out, doc = fixture_report(tmp_path)
    doc["profiles"][0]["weights"].pop()
    out.write_text(json.dumps(doc))
    seen = view(out)
    assert not seen["loaded"] and seen["failed"]


def test_speedscope_of_a_recording(servers, collectors, tmp_path):
    reqs = [("GET", "/alpha?ms=20", None, None)] * 10
    reqs += [("GET", "/beta?ms=20", None, None)] * 4
    statuses, prof, col = record_cpuserver(servers, collectors, tmp_path,
                                           reqs)
    assert statuses == [200] * 14
    out = tmp_path / "rec.speedscope.json"
    doc = report(col.out, out)
    check_file(doc)
    names = [p["name"] for p in doc["profiles"]]
    assert names[0] == "GET /alpha" and "GET /beta" in names
    period = prof["sample"]["period_ns"]
    alpha = doc["profiles"][0]
    assert abs(alpha["endValue"] - prof["data"]["GET /alpha"]["samples"] *
               period) <= len(alpha["weights"])
    seen = view(out)
    assert seen["pageErrors"] == [] and seen["dialogs"] == []
    assert seen["loaded"], seen
    assert seen["views"][0]["toolbar"].startswith("GET /alpha (1/")
    rows = {r["name"]: r for r in seen["views"][0]["rows"]}
    # cpuserver's /alpha spends its time in burn_alpha: most of the self
    # time ("1.01s (>99%)" or so) in the viewer's table.
    assert percent(rows["burn_alpha"]["self"]) >= 80, rows


def percent(cell):
    """The share in a sandwich cell: "300.00ms (86%)" -> 86."""
    m = re.search(r"\(([<>]?)([\d.]+)%\)$", cell)
    assert m, cell
    return float(m.group(2))
