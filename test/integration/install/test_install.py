"""`meson install` puts a complete profshim in place: the library, both
programs, the three man pages and the systemd examples with the installed
paths; and the installed `profshim run` finds the installed library and
collector by itself and profiles a server."""
import http.client
import json
import re
import signal
import subprocess
import time

from helpers import BUILD, ROOT, calls, free_port, user_env, wait_port
from helpers.markdown import indented_block

PREFIX = "/usr/local"   # meson's default, which scripts/build.sh keeps


def _libdir():
    out = subprocess.run(["meson", "introspect", "--buildoptions", str(BUILD)],
                         capture_output=True, text=True, check=True).stdout
    opts = {o["name"]: o["value"] for o in json.loads(out)}
    assert opts["prefix"] == PREFIX, opts["prefix"]
    return opts["libdir"]


def _install(tmp_path):
    """meson install into tmp_path/dest; the installed prefix's path."""
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir",
                        str(dest), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return dest / PREFIX.lstrip("/")


def test_installed_tree_is_complete_and_runs(tmp_path):
    root = _install(tmp_path)
    libdir = _libdir()
    want = ["bin/profshim", "bin/profshim-collector",
            f"{libdir}/libprofshim.so",
            "share/man/man1/profshim.1", "share/man/man1/profshim-collector.1",
            "share/man/man7/profshim.7",
            "lib/systemd/system/profshim-collector@.service",
            "share/doc/profshim/examples/profshim-preload.conf"]
    for f in want:
        assert (root / f).is_file(), f
    # Man pages render without a single warning.
    for page in want[3:6]:
        r = subprocess.run(["man", "--warnings", "-l", str(root / page)],
                           capture_output=True, text=True,
                           env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        assert "profshim" in r.stdout
    # The systemd examples name the installed files.
    unit = (root / want[6]).read_text()
    assert (f"ExecStart={PREFIX}/bin/profshim-collector record --out "
            "/var/lib/profshim/%i/profshim.json") in unit
    assert "User=%i" in unit and "RuntimeDirectoryMode=0700" in unit
    dropin = (root / want[7]).read_text()
    assert f"Environment=LD_PRELOAD={PREFIX}/{libdir}/libprofshim.so" in dropin
    assert "Environment=ENABLE_PROFILING=true" in dropin

    # The installed profshim, with nothing but the installed tree.
    port = free_port()
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [str(root / "bin/profshim"), "run", "--rate", "1", "--",
         "/usr/bin/python3", "-m", "http.server", str(port), "--bind",
         "127.0.0.1"], cwd=work, env=user_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_port(port, proc, timeout=20)
        for _ in range(10):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/")
            assert c.getresponse().read() and True
            c.close()
        # The server (profshim's child that is not the collector) maps
        # the installed library, not the build tree's.
        kids = (f"/proc/{proc.pid}/task/{proc.pid}/children")
        maps = [open(f"/proc/{k}/maps").read()
                for k in open(kids).read().split()]
        lib = str(root / libdir / "libprofshim.so")
        assert any(lib in m for m in maps), lib
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    prof = json.loads((work / "profshim.json").read_text())
    assert calls(prof, "GET /") == 10
    assert prof["data"]["GET /"]["sampled_calls"] == 10
    assert (work / "profshim.html").is_file()


def test_systemd_unit_and_readme_drop_ins_verify(tmp_path):
    """systemd itself accepts the installed collector unit, the installed
    preload drop-in on a service, and the README's fleet drop-in
    (`systemd-analyze verify` prints nothing). The installed paths are
    moved into the DESTDIR so that the programs they name exist."""
    root = _install(tmp_path)
    units = tmp_path / "units"
    units.mkdir()

    def place(text, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(PREFIX + "/", str(root) + "/"))

    unit = (root / "lib/systemd/system/profshim-collector@.service").read_text()
    place(unit, units / "profshim-collector@www-data.service")
    fleet = "\n".join(indented_block(
        ROOT / "README.md",
        "# /etc/systemd/system/profshim-collector@www-data.service.d/"
        "fleet.conf")) + "\n"
    assert "--http" in fleet and "--push" in fleet
    place(fleet, units / "profshim-collector@www-data.service.d/fleet.conf")
    place("[Unit]\nDescription=a service to profile\n[Service]\n"
          "ExecStart=/usr/bin/python3 -m http.server 8000\n",
          units / "api.service")
    place((root / "share/doc/profshim/examples/profshim-preload.conf")
          .read_text(), units / "api.service.d/profshim-preload.conf")
    env = {"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_LEVEL": "notice",
           "MANPATH": str(root / "share/man") + ":"}
    for name in ("profshim-collector@www-data.service", "api.service"):
        r = subprocess.run(["systemd-analyze", "verify", str(units / name)],
                           capture_output=True, text=True, env=env,
                           timeout=60)
        assert r.returncode == 0 and r.stdout + r.stderr == "", \
            (name, r.stdout + r.stderr)
    # The fleet drop-in's command line is one the collector accepts: its
    # arguments (continuations joined, systemd's specifiers filled in),
    # with the files, port and store moved to this test's own, start a
    # collector that serves the API and checks its push options.
    start = [l for l in fleet.replace("\\\n", " ").splitlines()
             if l.startswith("ExecStart=/")][0]
    argv = re.sub(r"%[iH]", "x", start[len("ExecStart="):]) \
        .replace(PREFIX + "/", str(root) + "/").split()
    assert argv[argv.index("--api-key-file") + 1] == "/etc/profshim/x.key"
    key = tmp_path / "x.key"
    key.write_text("fleet-key\n")
    key.chmod(0o600)
    api = free_port()
    moved = {"--socket": tmp_path / "c.sock", "--out": tmp_path / "p.json",
             "--api-key-file": key, "--http": f"127.0.0.1:{api}",
             "--push": f"http://127.0.0.1:{free_port()}"}
    for opt, value in moved.items():
        argv[argv.index(opt) + 1] = str(value)
    r = subprocess.run(argv + ["--duration", "0.5"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"HTTP API on 127.0.0.1:{api}" in r.stderr
    assert json.loads((tmp_path / "p.json").read_text())["version"] == 1
