"""Apache 2.4 with the event MPM (Debian's default) and mod_deflate, as
Debian deploys it: the parent runs as root, its children serve as
www-data from event MPM worker threads, and mod_deflate (enabled on a
fresh install, with Debian's deflate.conf) gzips text/html for clients
that accept it. A user profiling such a server relies on:

- every request counted exactly, as Apache's access log counts it, and
  answered as without profshim (the gzip'd body decompresses to the page);
- where the time goes: stack samples of the requests, with the
  compression in them (frames of mod_deflate.so calling into libz.so.*),
  both for the share of requests sampled at the defaults and for one asked
  for with `?profile=1`.

Issue 17: the event MPM blocks SIGPROF in every thread of a child, and
profshim sampled with SIGPROF: these requests had no samples at all (0
of 60 both ways, measured before the fix).

The page is an HTML listing of about 280 KB, served gzip'd to clients
sending `Accept-Encoding: gzip`, 60 requests from 3 keep-alive clients at
once. Measured here (2 shared cores): a request costs its worker about 4.3
ms of CPU without the shim (4.8-5.0 ms with it), 4.4-5.2 ms of wall time.

What the defaults can give:

- sampled by rate (PROFILING_SAMPLE_RATE 0.1, the CPU clock at 99 Hz, of
  user time: the workers run as www-data and perf_event_paranoid is 2 on
  Debian): 60 x 0.1 x 4.3 ms x 99/s = 2.6 samples expected. 20 samples
  are 0.2 s of sampled CPU time, 47 of these requests: the defaults cannot
  reach 20 from 60 requests (that would take a rate of 0.8), and even one
  sample is not sure (none in 12% of runs: (0.9 + 0.1 x e^-0.43)^60). So
  at the defaults the test sends 1,500 requests (500 a client) and
  asserts 20 samples: 900 requests gave 27, 27 and 28 samples here (user
  time only, fewer than the arithmetic's 39), so about 45 are expected and
  fewer than 20 come in well under 0.1% of runs. The 60 requests issue 17
  names are the `?profile=1` case.
- `?profile=1`: a manual request is sampled on the wall clock at 997 Hz,
  at most 10 a second a process (PROFILING_MANUAL_MAX_PER_SEC, per
  calendar second). The 60 requests take about 0.3 s, and the 3
  connections land in one or both children: 10 to 40 are forced, 10 x 4.4
  ms x 997/s = 44 samples expected at the least.

Checks of the checks (not deployments), with the shim before issue 17's
fix: the event MPM with a library preloaded in front of the shim that
drops SIGPROF from every mask the program sets: `?profile=1` passed with
64 and 133 samples (10 and 20 requests forced), 81-83% of them through
mod_deflate into libz; at the defaults 1, 2, 2 and 4 samples (4 runs),
failing only the count of 20. The prefork MPM (which leaves SIGPROF
alone; 4 children, so 30 requests forced): `?profile=1` passed with
241-268 samples, 84-87% through mod_deflate into libz (3 runs), and at
the defaults 1-4 samples again.

Requires root, as CI runs: only root starts a server whose workers
switch user. The collector runs as root and reads the www-data workers'
rings (test_privileges.py).
"""
import gzip
import http.client
import os
import pwd
import threading

import pytest

from helpers import Collector, dump_json, shim_env
from helpers.apache import access_counts, start_apache
from helpers.nginx import worker_pids
from helpers.processes import uids

PATH = "/page.html"
ENDPOINT = f"GET {PATH}"
CLIENTS = 3
PER_CLIENT = 20
MIN_SAMPLES = 20
# At the default rate: 10 times as many for 20 samples (module docstring).
DEFAULTS_PER_CLIENT = 500


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("Apache's workers switch to www-data only when it is "
                    "started as root; run as root (CI does)")


def page():
    """A server-rendered listing of about 280 KB: table rows that differ
    in their numbers, links and names, which deflate (level 6, Debian's)
    takes to 15%."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
             "golf", "hotel", "india", "juliet", "kilo", "lima"]
    rows = []
    for i in range(2600):
        name = (words[(i * 7) % len(words)] + "-" +
                words[(i * 5 + 3) % len(words)])
        rows.append(
            f'<tr class="r{i % 2}"><td>{i}</td>'
            f'<td><a href="/items/{i * 7919 % 100003}">{name}</a></td>'
            f'<td>{(i * 37) % 1000 / 10:.1f}</td>'
            f'<td>{(i * 2654435761) % 4294967296:08x}</td></tr>\n')
    return ("<!DOCTYPE html>\n<html><head><title>Items</title></head>"
            "<body>\n<table>\n" + "".join(rows) +
            "</table>\n</body></html>\n").encode()


PAGE = page()


def fetch_gzipped(port, target, n):
    """`n` requests for `target` on one keep-alive connection, accepting
    gzip; every answer 200, gzip'd, and the page once decompressed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(n):
            conn.request("GET", target,
                         headers={"Accept-Encoding": "gzip, deflate"})
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (r.status, body[:200])
            assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
            assert r.getheader("Content-Type", "").startswith("text/html")
            assert "Accept-Encoding" in r.getheader("Vary", "")
            assert len(body) < len(PAGE) // 4, len(body)
            assert gzip.decompress(body) == PAGE
    finally:
        conn.close()


def serve(servers, collectors, tmp_path, target, per_client=PER_CLIENT):
    """Apache (event MPM, mod_deflate) under the shim at the defaults,
    recorded by a root collector; CLIENTS x per_client requests for
    `target`. Returns the profile, Apache's log counts, its stderr, its
    children when it started, its pid and the collector."""
    assert len(PAGE) > 250_000
    srv = start_apache(tmp_path, shim_env(ENABLE_PROFILING="true"),
                       "event", deflate=True, files={PATH: PAGE})
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    # As Debian deploys it: the children serve as www-data.
    www = pwd.getpwnam("www-data").pw_uid
    assert workers and all(uids(w) == [www] * 4 for w in workers), workers
    errors = []

    def client():
        try:
            fetch_gzipped(srv.port, target, per_client)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    stderr = srv.stop()
    prof = col.finish()
    return (prof, access_counts(srv.access_log), stderr, workers, srv.pid,
            col)


def deflate_samples(prof, endpoint):
    """(samples of `endpoint`, those whose stack has a frame of
    mod_deflate.so with a frame of libz.so.* above it)."""
    frames, modules = prof["frames"], prof["modules"]
    total = through = 0
    for s in prof["stacks"]:
        if s["endpoint"] != endpoint:
            continue
        total += s["samples"]
        mods = [modules[frames[i]["module"]]["name"] for i in s["frames"]]
        if "mod_deflate.so" in mods:
            below = mods[mods.index("mod_deflate.so") + 1:]
            if any(m.startswith("libz.so") for m in below):
                through += s["samples"]
    return total, through


def check_counted(prof, logged, stderr, workers, master_pid,
                  per_client=PER_CLIENT):
    """Counted exactly, as Apache logged it, in its www-data children."""
    n = CLIENTS * per_client
    assert logged == {ENDPOINT: n}, logged
    ep = prof["data"].get(ENDPOINT)
    assert ep and ep["calls"] == n and ep["status"] == {"2xx": n}, \
        dump_json(prof["data"])
    assert set(prof["data"]) == {ENDPOINT}, dump_json(prof["data"])
    assert prof["dropped"]["samples"] == 0, prof["dropped"]
    procs = prof["processes"]
    assert procs and all(p["ppid"] == master_pid and p["pid"] in workers
                         for p in procs), (workers, dump_json(procs))
    assert "profshim" not in stderr, stderr
    return ep


def check_samples(prof, ep, want, col):
    """At least `want` samples, at least half of them through mod_deflate
    into libz. The share is checked on whatever samples there are first,
    the count last."""
    total, through = deflate_samples(prof, ENDPOINT)
    what = (f"{ep['samples']} samples, {through} through mod_deflate into "
            f"libz; {ep['sampled_calls']} of {ep['calls']} requests "
            f"sampled; processes {dump_json(prof['processes'])}; "
            f"top {dump_json(ep['top_functions'][:5])}; collector: "
            f"{col.stderr[-1500:]}")
    assert total == ep["samples"], what
    assert ep["samples"] > 0, what
    assert through * 2 >= total, what
    assert ep["samples"] >= want, what


def test_event_mpm_deflate_sampled_at_defaults(servers, collectors,
                                               tmp_path):
    """1,500 gzip'd requests at the defaults: counted exactly; at least 20
    samples (about 45 expected: see the module's docstring), most through
    mod_deflate into libz (0 samples before issue 17's fix, whatever the
    rate)."""
    prof, logged, stderr, workers, master, col = serve(
        servers, collectors, tmp_path, PATH, DEFAULTS_PER_CLIENT)
    ep = check_counted(prof, logged, stderr, workers, master,
                       DEFAULTS_PER_CLIENT)
    check_samples(prof, ep, MIN_SAMPLES, col)


def test_event_mpm_deflate_profile_one(servers, collectors, tmp_path):
    """The same 60 requests with `?profile=1`: 10 or more forced (the cap
    of 10 a second a process), each sampled on the wall clock at 997 Hz
    and kept in the profile's requests; at least 20 samples (44 expected
    at the least), most through mod_deflate into libz."""
    prof, logged, stderr, workers, master, col = serve(
        servers, collectors, tmp_path, PATH + "?profile=1")
    ep = check_counted(prof, logged, stderr, workers, master)
    manual = [r for r in prof["requests"] if r["manual"]]
    assert 10 <= len(manual) <= 20 * len(prof["processes"]), \
        dump_json(manual)
    assert all(r["endpoint"] == ENDPOINT and r["status"] == 200
               for r in manual), dump_json(manual)
    assert ep["sampled_calls"] >= len(manual), dump_json(ep)
    check_samples(prof, ep, MIN_SAMPLES, col)
