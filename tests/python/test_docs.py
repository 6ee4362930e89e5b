"""Docs that cannot drift (issue 23 item 8): read the docs and the binaries at test time.

- Every `--flag` on a command line that a doc writes (a code block line or a code span that
  starts with `las`, `lasd` or `las-bench`, including `cargo run ... -p las-bench -- ...`,
  and the flags in code spans of a table row whose first cell is such a command) exists in
  that command's `--help`, asked of the real binary (its subcommands found the same way).
- Every repository path a doc names (in a code span, a code block or a relative link)
  exists: a path from the top (`crates/...`, `docs/...`, `scripts/...`) exactly, a shorter
  one (`sim/tests.rs`, `hardening.rs`) as the end of some file of the repository.
- The README's layout lists every crate, and its documentation list links every docs/*.md.

Nothing here is a list frozen when it was written: other changes add flags and docs, and
this test reads whatever is there.
"""
from __future__ import annotations

import functools
import pathlib
import re
import shlex
import subprocess

import pytest

from conftest import REPO

BINARIES = ("las", "lasd", "las-bench")
TOP_DIRS = ("crates/", "docs/", "scripts/", "charts/", "tests/", "fuzz/", "docker/", ".ci/")
PATH_EXT = (".rs", ".md", ".py", ".yaml", ".yml", ".toml", ".json", ".sh", ".tpl", ".txt", ".cddl", ".manifest", ".template")
# Named from the top of the repository: must exist exactly there. (`tests/` and `fuzz/` may
# also be a crate's own folder, e.g. `tests/hw_emulated.rs` of las-platform.)
STRICT_DIRS = ("crates/", "docs/", "scripts/", "charts/", "docker/", ".ci/")
# A bare file name is checked when it is one of ours (`hardening.rs`, `conftest.py`).
SOURCE_EXT = (".rs", ".py", ".md", ".sh")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def docs() -> list[pathlib.Path]:
    files = [REPO / "README.md", REPO / "charts" / "las" / "README.md"]
    files += sorted((REPO / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def rel(p: pathlib.Path) -> str:
    return str(p.relative_to(REPO))


@functools.lru_cache(maxsize=None)
def tracked() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return tuple(out.stdout.split("\n"))


@pytest.fixture(scope="module")
def bins(las_bin) -> dict[str, pathlib.Path]:
    folder = pathlib.Path(las_bin).resolve().parent
    found = {"las": pathlib.Path(las_bin)}
    for b in ("lasd", "las-bench"):
        p = folder / b
        assert p.exists(), f"{p} is missing: the test command builds every binary (cargo build --workspace --bins)"
        found[b] = p
    return found


@functools.lru_cache(maxsize=None)
def help_text(binary: str, path: tuple[str, ...]) -> str | None:
    """`binary PATH... --help` on stdout, or None when that is not a command."""
    p = subprocess.run([binary, *path, "--help"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return p.stdout if p.returncode == 0 else None


def command_of(words: list[str], bins: dict) -> tuple[str, tuple[str, ...], list[str]] | None:
    """(binary name, subcommand path, the remaining words) of a command line, or None."""
    if words[:2] == ["cargo", "run"] and "--" in words and "las-bench" in words:
        words = ["las-bench"] + words[words.index("--") + 1:]
    if not words or words[0] not in BINARIES:
        return None
    name, rest = words[0], words[1:]
    binary = str(bins[name])
    path: tuple[str, ...] = ()
    while rest and not rest[0].startswith("-") and re.fullmatch(r"[a-z][a-z0-9-]*", rest[0]):
        if help_text(binary, path + (rest[0],)) is None:
            break
        path += (rest[0],)
        rest = rest[1:]
    return name, path, rest


def split_words(line: str) -> list[str]:
    line = line.split(" #", 1)[0]
    try:
        return shlex.split(line, comments=False)
    except ValueError:
        return line.split()


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) for code-block lines and code spans in prose."""
    found = []
    in_block = False
    joined = ""
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip().startswith("```"):
            in_block = not in_block
            joined = ""
            continue
        if in_block:
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            full = (joined + line).strip()
            joined = ""
            for part in re.split(r"\s*(?:\||&&|\|\||;|\$\(|\))\s*", full):
                found.append((n, part.strip()))
        else:
            for span in re.findall(r"`([^`]+)`", line):
                found.append((n, span.strip()))
    return found


def table_rows(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, command in the first cell, code spans of the row) for table rows."""
    rows = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.startswith("| `"):
            continue
        cells = line.split(" | ")
        first = re.findall(r"`([^`]+)`", cells[0])
        if first:
            rows.append((n, first[0], re.findall(r"`([^`]+)`", line)))
    return rows


def test_every_flag_a_doc_writes_is_in_that_commands_help(bins):
    problems = []
    checked = 0
    for doc in docs():
        text = doc.read_text()
        items = [(n, cmd, None) for n, cmd in command_lines(text)]
        items += [(n, cmd, spans) for n, cmd, spans in table_rows(text)]
        for n, cmd, spans in items:
            c = command_of(split_words(cmd), bins)
            if c is None:
                continue
            name, path, rest = c
            # A command line: its own words after the command (not cargo's, not a comment).
            spans = spans if spans is not None else [" ".join(rest)]
            helptext = help_text(str(bins[name]), path)
            if helptext is None:
                problems.append(f"{rel(doc)}:{n}: `{name} {' '.join(path)}` has no --help")
                continue
            for span in spans:
                for flag in FLAG.findall(span):
                    checked += 1
                    if flag in ("--help", "--version"):
                        continue
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helptext):
                        problems.append(f"{rel(doc)}:{n}: `{name} {' '.join(path)}` has no {flag} (in `{span}`)")
    assert checked > 50, f"only {checked} flags found: the extraction broke"
    assert not problems, "flags the docs write that the commands do not have:\n" + "\n".join(sorted(set(problems)))


def path_candidates(text: str) -> list[tuple[int, str]]:
    out = []
    in_block = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        chunks = [line] if in_block else re.findall(r"`([^`]+)`", line)
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", line):
            if not re.match(r"[a-z]+:", link):
                out.append((n, "LINK:" + link))
        for chunk in chunks:
            for tok in re.split(r"[\s,;:()=\"'`<>\[\]]+", chunk):
                tok = tok.rstrip(".")
                if tok.startswith(TOP_DIRS) or (("/" in tok or tok.endswith(PATH_EXT)) and tok.endswith(PATH_EXT)):
                    out.append((n, tok))
    return out


def is_placeholder(tok: str) -> bool:
    if any(ch in tok for ch in "$*{}…~%|"):
        return True
    # An all-capitals component (TARGET, NAME, OUTDIR) or a <...> stands for a value.
    return any(re.fullmatch(r"[A-Z][A-Z0-9_]+", part) for part in tok.split("/") if part)


def test_every_repository_path_a_doc_names_exists():
    files = tracked()
    dirs = {str(pathlib.PurePosixPath(f).parent) for f in files}
    dir_names = {part for d in dirs for part in d.split("/")}
    problems = []
    checked = 0
    for doc in docs():
        for n, tok in path_candidates(doc.read_text()):
            if tok.startswith("LINK:"):
                target = (doc.parent / tok[5:]).resolve()
                checked += 1
                if not target.exists():
                    problems.append(f"{rel(doc)}:{n}: link to {tok[5:]} (no such file)")
                continue
            if is_placeholder(tok) or tok.startswith(("/", "./", "../", "http")):
                continue
            t = tok.rstrip("/")
            parts = t.split("/")
            if "target" in parts:
                continue  # build output, not part of the repository
            if len(parts) == 1 and not t.endswith(SOURCE_EXT):
                continue  # a file the reader makes (policy.yaml, measurement.json)
            if len(parts) > 1 and not t.startswith(STRICT_DIRS) and parts[0] not in dir_names:
                continue  # a path in another package (dcap-qvl's sample/...)
            checked += 1
            if t.startswith(STRICT_DIRS):
                ok = (REPO / t).exists()
            else:
                ok = any(f == t or f.endswith("/" + t) for f in files) or any(d == t or d.endswith("/" + t) for d in dirs)
            if not ok:
                problems.append(f"{rel(doc)}:{n}: {tok}")
    assert checked > 50, f"only {checked} paths found: the extraction broke"
    assert not problems, "paths the docs name that do not exist:\n" + "\n".join(sorted(set(problems)))


def test_the_readme_layout_lists_every_crate_and_every_doc():
    text = (REPO / "README.md").read_text()
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    crates = sorted(p.name for p in (REPO / "crates").iterdir() if (p / "Cargo.toml").exists())
    missing = [c for c in crates if not re.search(rf"^crates/{re.escape(c)}\s", layout, re.M)]
    assert not missing, f"README layout omits crates: {missing}"
    listed = re.findall(r"^crates/([\w-]+)\s", layout, re.M)
    assert sorted(set(listed)) == crates, f"README layout lists crates that do not exist: {set(listed) - set(crates)}"
    docs_section = text.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    missing_docs = [d.name for d in sorted((REPO / "docs").glob("*.md")) if f"(docs/{d.name}" not in docs_section]
    assert not missing_docs, f"README's documentation list omits {missing_docs}"
