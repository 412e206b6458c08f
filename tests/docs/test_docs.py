"""The README and docs/ say only what exists: their paths, commands, flags and links, checked.

Every repository path they name exists; every `bsim` command they show has a working --help and
every flag on it is in that command's --help; every flag they name on its own belongs to some bsim
command or bench script; every relative link (and its #anchor) resolves; the README stays short;
the commands the README gives for setup and tests are the ones CI runs (.ci/run); nothing points
to a design file outside the repository.
"""

from __future__ import annotations

import contextlib
import glob
import io
import re
import shlex
from functools import cache

import pytest
from support import ROOT

from bsim.cli import main

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: the top-level entries of the repository a page may name as a path
REPO_ROOTS = ("bsim/", "tests/", "bench/", "scenarios/", "screenshots/", "docs/", ".ci/")
REPO_FILES = ("pyproject.toml", "LICENSE", "README.md")
#: flags the pages name that belong to other programs (Slurm's, in the Ray-on-Slurm job)
FOREIGN_FLAGS = {"--cpus-per-task"}
README_MAX_LINES = 260

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")     # [text](target), ![alt](target)
FLAG = re.compile(r"^--[a-z][a-z0-9-]*")


def text(page):
    return page.read_text(encoding="utf-8")


def split_page(page):
    """(the fenced code blocks' lines, the inline code spans outside them)."""
    body = text(page)
    blocks = [line for m in FENCE.finditer(body) for line in join_continued(m[1].splitlines())]
    prose = FENCE.sub("", body)
    return blocks, [m[1] for m in INLINE.finditer(prose)]


def join_continued(lines):
    out, cur = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
        else:
            out.append(cur + line)
            cur = ""
    return out


def words(snippet):
    """A command's words: its comment, leading `VAR=value` words and the brackets of optional parts dropped."""
    try:
        w = shlex.split(snippet, comments=True)
    except ValueError:          # an unbalanced quote in prose: plain split
        w = snippet.split("#")[0].split()
    while w and re.fullmatch(r"[A-Z_]+=\S*", w[0]):
        w = w[1:]
    return [a.strip("[]") for a in w]


def bsim_commands(page):
    """Every `bsim ...` command a page shows, in code blocks and in inline code."""
    blocks, spans = split_page(page)
    found = []
    for snippet in blocks + spans:
        w = words(snippet)
        if w and w[0] == "bsim":
            found.append(w[1:])
    return found


@cache
def help_of(command: str | None) -> str:
    """What `bsim [command] --help` prints (in this process); it must exit 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        main(([command] if command else []) + ["--help"])
    assert stop.value.code == 0, f"bsim {command} --help exited {stop.value.code}"
    return out.getvalue()


def subcommands():
    usage = help_of(None)
    return re.search(r"\{([a-z,]+)\}", usage)[1].split(",")


@cache
def all_bsim_help() -> str:
    return help_of(None) + "".join(help_of(c) for c in subcommands())


def script_source(path: str) -> str:
    """A bench script's (or module's) source, and the sources of the bench scripts it names."""
    src = (ROOT / path).read_text(encoding="utf-8")
    for other in set(re.findall(r"bench/\w+\.py", src)) - {path}:
        if (ROOT / other).is_file():
            src += (ROOT / other).read_text(encoding="utf-8")
    return src


def python_scripts(page):
    """(script path, its words) for every `python bench/X.py ...` or `python -m bsim.X ...` shown."""
    blocks, spans = split_page(page)
    found = []
    for snippet in blocks + spans:
        w = words(snippet)
        if len(w) >= 2 and w[0] in ("python", "python3"):
            if w[1].startswith("bench/"):
                found.append((w[1], w[2:]))
            elif w[1] == "-m" and len(w) > 2 and w[2].startswith("bsim"):
                found.append((w[2].replace(".", "/") + ".py", w[3:]))
    return found


def named_paths(page):
    blocks, spans = split_page(page)
    links = [m[1].split("#")[0] for m in LINK.finditer(text(page))]
    for token in (t for s in blocks + spans for t in s.split()):
        token = token.strip("()[],;:.'\"")
        if token.startswith(REPO_ROOTS) or token in REPO_FILES:
            yield token
    for target in links:
        if target and not re.match(r"[a-z]+:", target):
            resolved = (page.parent / target).resolve()
            yield str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else target


def slugs(page) -> set[str]:
    """GitHub's anchors of a page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text(page)), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


ids = [p.relative_to(ROOT).as_posix() for p in PAGES]


def test_the_pages_exist_and_the_readme_links_them():
    names = {p.name for p in PAGES}
    assert {"README.md", "usage.md", "science.md", "benchmarks.md", "development.md"} <= names
    readme = text(ROOT / "README.md")
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"the README does not point to docs/{page.name}"


def test_the_readme_is_short():
    lines = text(ROOT / "README.md").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_every_path_named_exists(page):
    missing = []
    for path in named_paths(page):
        hits = glob.glob(str(ROOT / path)) if "*" in path else [p for p in [ROOT / path] if p.exists()]
        if not hits:
            missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_every_relative_link_and_anchor_resolves(page):
    bad = []
    for target in (m[1] for m in LINK.finditer(text(page))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path) if path else page
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest):
            bad.append(target)
    assert not bad, f"{page.name}: links that do not resolve: {bad}"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_every_bsim_command_shown_has_its_help_and_flags(page):
    commands = subcommands()
    problems = []
    for argv in bsim_commands(page):
        first = next((a for a in argv if not a.startswith("-")), None)
        if first in commands:
            helptext = help_of(first)
        elif first is None or first.isupper() or first.startswith(("[", "SCENARIO")):
            helptext = all_bsim_help()      # `bsim --version`, `bsim COMMAND --help`: any command's
        else:
            # a positional that is not a command: only `bsim` alone may take none
            problems.append(f"bsim {' '.join(argv)}: no command {first!r}")
            continue
        for arg in argv:
            flag = FLAG.match(arg)
            if flag and flag[0] not in helptext:
                problems.append(f"bsim {first}: {flag[0]} is not in its --help")
    assert not problems, f"{page.name}: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_every_script_shown_exists_and_takes_its_flags(page):
    problems = []
    for path, argv in python_scripts(page):
        if not (ROOT / path).is_file():
            problems.append(f"{path} does not exist")
            continue
        src = script_source(path)
        problems += [f"{path}: {a}" for a in argv if FLAG.match(a) and f'"{FLAG.match(a)[0]}"' not in src]
    assert not problems, f"{page.name}: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_every_flag_named_in_prose_exists(page):
    """A flag named on its own (`--every K`) belongs to a bsim command or to a bench script."""
    bench = "".join(script_source(f"bench/{p.name}") for p in sorted((ROOT / "bench").glob("*.py")))
    known = all_bsim_help() + bench + (ROOT / "bsim/app/export.py").read_text(encoding="utf-8")
    _, spans = split_page(page)
    unknown = {FLAG.match(s)[0] for s in spans if FLAG.match(s)} - FOREIGN_FLAGS
    unknown = {f for f in unknown if f not in known}
    assert not unknown, f"{page.name} names flags no command has: {sorted(unknown)}"


def test_the_readme_setup_and_test_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    marked = [ci[i + 1].strip() for i, line in enumerate(ci) if line.startswith("# --- README:")]
    assert marked, ".ci/run marks no README command"
    readme_lines = [line.split("#")[0].strip() for line in split_page(ROOT / "README.md")[0]]
    for command in marked:
        assert command in readme_lines, f"the README no longer shows {command!r}, which .ci/run runs"
    ci_lines = {line.strip() for line in ci}
    for line in readme_lines:
        if line.startswith(("pip install", "python -m pytest")):
            assert line in ci_lines, f"the README shows {line!r}, which .ci/run does not run"


def test_nothing_points_outside_the_repository():
    design = "DESIGN" + ".md"
    this = ROOT / "tests/docs/test_docs.py"
    files = [*PAGES, ROOT / "pyproject.toml"]
    for folder in ("bsim", "tests", "bench", "scenarios"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".toml", ".md", ".c") and p != this]
    hits = [p.relative_to(ROOT).as_posix() for p in files if design in p.read_text(encoding="utf-8", errors="replace")]
    assert not hits, f"{design} is not in the repository, yet these files refer to it: {hits}"


def test_every_csv_column_is_documented():
    """A column added to the metrics CSV or the sweep's CSV is described in docs/ (readers select by name)."""
    from bsim.frame import CHAINS_COLUMNS, CSV_COLUMNS
    from bsim.sweep.state import COLUMNS as SWEEP_COLUMNS
    for page, columns in (("usage.md", CSV_COLUMNS + CHAINS_COLUMNS), ("sweep.md", SWEEP_COLUMNS)):
        body = text(ROOT / "docs" / page)
        missing = [c for c in columns if f"`{c}`" not in body]
        assert not missing, f"docs/{page} does not describe the CSV columns {missing}"
