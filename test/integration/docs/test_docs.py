"""The documentation matches the code it describes.

The man pages are the reference for what a user can set and type, so they
are checked against the sources of truth:

  - every environment variable the shim reads (shim/env.c) is described in
    the man page of the shim's environment, profshim(7); every variable the
    collector and the wrapper read is described in their man pages;
  - every long option that `profshim-collector COMMAND --help` and
    `profshim --help` print appears in profshim-collector(1) / profshim(1);
  - every document a comment or a document names (doc/... paths, Markdown
    links, upper-case NAME.md files, README, man pages) exists;
  - README.md stays an entrance: at most 250 lines, and every page in doc/
    can be reached from it or from doc/design.md;
  - the fleet drop-in in doc/fleet.md is the one README.md shows (which
    test_install.py runs through systemd-analyze).

The built programs are looked for in $PROFSHIM_BUILD (default ROOT/build).
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers import BUILD, ROOT
from helpers.markdown import indented_block

README_MAX_LINES = 250

# Variables of the machine rather than of profshim, which a program may read
# without its man page explaining them.
GENERAL_VARS = {"PATH", "TMPDIR", "HOME", "LD_PRELOAD"}

# Files people write (not generated output such as demo-profile.json or
# bench-results.md, whose contents are not the repository's words).
TEXT_SUFFIXES = {".c", ".h", ".py", ".sh", ".md", ".build", ".in", ".js",
                 ".1", ".7", ".conf", ".service"}
GENERATED = {"bench-results.md"}
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".pytest_cache",
             "artifacts"}


# ---- helpers ----------------------------------------------------------------

def man_page(name):
    """doc/NAME (wherever under doc/ the man pages live)."""
    found = sorted((ROOT / "doc").rglob(name))
    assert found, f"man page {name} not found under {ROOT / 'doc'}"
    return found[0]


def man_text(path):
    """A man page's words as a reader sees them: roff font escapes gone,
    \\- read as -, so "\\fB\\-\\-out\\fR" reads "--out"."""
    t = path.read_text()
    t = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", t)   # \fB \fR \f(CW \f[B]
    t = t.replace("\\-", "-").replace("\\(en", "-").replace("\\(em", "-")
    t = t.replace("\\&", "").replace("\\ ", " ")
    return t


def strip_c_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", src, flags=re.S)


def call_args(src, start):
    """The text between the parenthesis that opens at src[start] and the
    one that closes it (string literals taken into account)."""
    depth, i, n = 0, start, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return src[start + 1:i]
        i += 1
    return src[start + 1:]


def env_names_read(src):
    """Names of environment variables a C source reads: string literals
    shaped like a variable name passed to any function whose name has
    "get" or "find" in it. That covers getenv("X"), secure_getenv("X"),
    env.c's get("X") (getenv handed in as a pointer) and its helpers
    env_get_uint(get, warn, "X", ...), and profshim run's
    run_find_named(..., "PROFSHIM_LIB", ...), which reads the variable it
    is given."""
    src = strip_c_comments(src)
    names = set()
    for m in re.finditer(r"\b[A-Za-z_]*(?:get|find)[A-Za-z_]*\s*(?=\()",
                         src):
        args = call_args(src, m.end())
        names.update(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{4,})"',
                                args))
    return names


def find_program(name):
    """The executable `name` in the build tree (its folder may change as
    the code moves; meson's private *.p folders are not it)."""
    if not BUILD.is_dir():
        pytest.fail(f"no build in {BUILD}: run scripts/build.sh, or set "
                    "PROFSHIM_BUILD")
    for depth in range(0, 4):
        for p in sorted(BUILD.glob("/".join(["*"] * depth + [name]))):
            if p.is_file() and os.access(p, os.X_OK) and \
                    not any(part.endswith(".p") for part in p.parts):
                return p
    pytest.fail(f"{name} not found in {BUILD}: run scripts/build.sh")


def help_text(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (argv, r.returncode, r.stderr)
    return r.stdout


def long_flags(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def is_build_dir(d):
    return (d / "build.ninja").exists() or (d / "meson-info").is_dir()


def repo_text_files():
    """Every text file of the repository: sources, scripts, tests, docs;
    not build trees, fuzz corpora, installed JavaScript packages or this
    file (whose patterns would name documents of their own)."""
    me = Path(__file__).resolve()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        d = Path(dirpath)
        dirnames[:] = sorted(
            n for n in dirnames
            if n not in SKIP_DIRS and not n.startswith(("corpus_", "regress_"))
            and not is_build_dir(d / n))
        for f in sorted(filenames):
            p = d / f
            if p.resolve() == me or f == me.name or f in GENERATED:
                continue
            if p.suffix in TEXT_SUFFIXES or d.name in ("scripts", ".ci", "bench"):
                try:
                    yield p, p.read_text()
                except (UnicodeDecodeError, OSError):
                    continue


def documents_named(path, text):
    """(what the text says, the file it must be) for every document `text`
    names: doc/... paths, NAME.md files (relative to the root), README,
    man pages as name(N) or `man N name`, and Markdown links."""
    out = []
    for m in re.finditer(r"(?<![\w/.-])doc/[\w@./-]*\w", text):
        out.append((m.group(0), ROOT / m.group(0)))
    for m in re.finditer(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b", text):
        out.append((m.group(1), ROOT / m.group(1)))
    for m in re.finditer(r"\bREADME\b(?!\.)", text):
        out.append((m.group(0), ROOT / "README.md"))
    for m in re.finditer(r"\b(profshim(?:-[a-z]+)?)\s?\(([1-8])\)", text):
        name = f"{m.group(1)}.{m.group(2)}"
        out.append((m.group(0), next(iter(sorted(
            (ROOT / "doc").rglob(name))), ROOT / "doc" / name)))
    for m in re.finditer(r"\bman ([1-8]) (profshim[\w-]*)", text):
        name = f"{m.group(2)}.{m.group(1)}"
        out.append((m.group(0), next(iter(sorted(
            (ROOT / "doc").rglob(name))), ROOT / "doc" / name)))
    if path.suffix == ".md":
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1).split("#")[0]
            if not target or re.match(r"[a-z]+:", target):
                continue                     # an anchor, a URL, mailto:
            out.append((m.group(0), (path.parent / target)))
    return out


# ---- (a) environment variables ---------------------------------------------

def test_every_shim_variable_is_in_profshim_7():
    src = (ROOT / "shim" / "env.c").read_text()
    names = env_names_read(src)
    # The parser must see what env.c reads, or this test checks nothing.
    assert {"ENABLE_PROFILING", "PROFILING_SAMPLE_RATE",
            "PROFILING_RING_SIZE"} <= names, names
    page = man_text(man_page("profshim.7"))
    # Each is an entry of ENVIRONMENT, not a passing mention.
    env_section = page.split(".SH ENVIRONMENT", 1)[1].split("\n.SH ", 1)[0]
    not_entries = sorted(n for n in names
                         if not re.search(r"(?m)^\.TP\n\.B " + n + "$",
                                          env_section))
    assert not not_entries, \
        f"not an entry of profshim(7)'s ENVIRONMENT: {not_entries}"


def _c_sources(*folders):
    for folder in folders:
        base = ROOT / folder
        if base.is_dir():
            yield from sorted(base.rglob("*.c"))


def test_every_collector_and_wrapper_variable_is_in_their_man_pages():
    want = {"profshim-collector.1": set(), "profshim.1": set()}
    for p in _c_sources("collector", "wrapper"):
        page = ("profshim.1" if "wrapper" in p.relative_to(ROOT).parts
                else "profshim-collector.1")
        want[page] |= env_names_read(p.read_text()) - GENERAL_VARS
    assert "PROFSHIM_SOCKET" in want["profshim-collector.1"], want
    assert "PROFSHIM_LIB" in want["profshim.1"], want
    for page, names in want.items():
        text = man_text(man_page(page))
        missing = sorted(n for n in names if n not in text)
        assert not missing, f"read by the code, not in {page}: {missing}"


# ---- (b) long options -------------------------------------------------------

def collector_commands(top_help):
    """The commands the collector's --help lists under "commands:"."""
    section = top_help.split("commands:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"(?m)^  ([a-z]+)\b", section)


def assert_flags_in_page(flags, page_name):
    """Every flag --help printed is a whole word of the man page."""
    page = man_text(man_page(page_name))
    missing = sorted(f for f in flags if not re.search(
        re.escape(f) + r"(?![\w-])", page))
    assert not missing, \
        f"printed by --help, not in {page_name}: {missing}"


def test_every_collector_flag_is_in_profshim_collector_1():
    exe = str(find_program("profshim-collector"))
    top = help_text([exe, "--help"])
    commands = collector_commands(top)
    assert {"record", "report", "diff", "top", "dump", "reset", "save",
            "gc"} <= set(commands), commands
    flags = long_flags(top)
    for cmd in commands:
        flags |= long_flags(help_text([exe, cmd, "--help"]))
    assert_flags_in_page(flags, "profshim-collector.1")


def test_every_profshim_flag_is_in_profshim_1():
    exe = str(find_program("profshim"))
    flags = long_flags(help_text([exe, "--help"]))
    flags |= long_flags(help_text([exe, "run", "--help"]))
    assert {"--rate", "--out"} <= flags, flags
    assert_flags_in_page(flags, "profshim.1")


# ---- (c) documents named ----------------------------------------------------

def test_every_document_named_exists():
    dangling = []
    for path, text in repo_text_files():
        for said, target in documents_named(path, text):
            if not target.exists():
                dangling.append(f"{path.relative_to(ROOT)}: {said}")
    assert not dangling, "documents named but missing:\n" + \
        "\n".join(sorted(set(dangling)))


def test_the_checker_sees_a_dangling_name(tmp_path):
    """The patterns of the test above do find what they look for."""
    said = {s for s, t in documents_named(
        tmp_path / "x.md",
        "see DESIGN.md, doc/nothing.md, profshim(5), man 7 profshim, "
        "[a](nowhere.md) and [b](https://example.org/x.md)")}
    assert said == {"DESIGN.md", "doc/nothing.md", "profshim(5)",
                    "man 7 profshim", "](nowhere.md)"}, said


# ---- (d) the README is an entrance ------------------------------------------

def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, \
        f"README.md has {n} lines; at most {README_MAX_LINES}: move " \
        "reference and detail into doc/ and link to it"


def test_every_doc_page_is_linked():
    linked = set()
    for src in (ROOT / "README.md", ROOT / "doc" / "design.md"):
        for said, target in documents_named(src, src.read_text()):
            linked.add(target.resolve())
    pages = sorted((ROOT / "doc").rglob("*.md"))
    assert pages, "no Markdown pages in doc/"
    unlinked = [str(p.relative_to(ROOT)) for p in pages
                if p.resolve() not in linked]
    assert not unlinked, \
        f"not linked from README.md or doc/design.md: {unlinked}"


def test_fleet_drop_in_is_the_readmes():
    first = ("# /etc/systemd/system/profshim-collector@www-data.service.d/"
             "fleet.conf")
    assert indented_block(ROOT / "doc" / "fleet.md", first) == \
        indented_block(ROOT / "README.md", first)
