"""What a launch imports: `aishell exec true` must stay within its start-up budget
(bench/startup.py), and most of what it costs beyond the engine is importing. These
tests lock in what the launch path leaves out, so it cannot creep back silently."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import aishell

SRC = Path(aishell.__file__).resolve().parent

# The modules `cli` imports to run `aishell exec` / an agent / a shell.
LAUNCH_PATH = ("aishell.cli", "aishell.commands.sandbox")

# Never imported by the launch path: each is used only on some other path, which
# imports it where it needs it.
NOT_ON_LAUNCH = (
    # stdlib
    "hashlib",  # loads OpenSSL (~2 ms): hashing.sha256 is the built-in one
    "_hashlib",
    "calendar",  # record ids are dated by arithmetic (records.days_from_civil)
    "datetime",  # update, setup, ps, freshness (gitleaks), containers' ages
    "difflib",  # suggestions for a mistake, trust's diff, guard diff
    "shlex",  # splitting a config string, quoting a message
    "csv",  # `--mount`-style docker_args values
    "socket",  # the engine API is spoken through _socket
    "yaml",  # only a config text not parsed before (launches read the JSON cache)
    "ctypes",  # builds and fills (PR_SET_PDEATHSIG)
    "tempfile",
    "shutil",
    "argparse",
    "inspect",
    "dataclasses",
    "textwrap",
    # aishell: other commands, and the parts of the launch only some launches need
    "aishell.commands.setup",
    "aishell.commands.update",
    "aishell.commands.run",
    "aishell.commands.check",
    "aishell.launch.headless",  # aishell run
    "aishell.engine.proxy",  # allowlist sessions
    "aishell.engine.leftovers",  # only when a killed aishell left something
    "aishell.security.freshness",  # gitleaks
    "aishell.security.scan",  # the sensitive-file scan: agent and shell runs
    "aishell.security.rules",
    "aishell.diagnose",  # failed builds and installs
    "aishell.changes",  # sessions with a git summary
    "aishell.discovery",
    "aishell.report_json",
    "aishell.completion",
)


def imported_by(*modules: str) -> set[str]:
    """sys.modules after importing `modules` in a fresh interpreter (without `site`,
    whose start-up files may import anything)."""
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(SRC.parent)!r})\n"
        f"for name in {list(modules)!r}: __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.fixture(scope="module")
def launch_modules() -> set[str]:
    return imported_by(*LAUNCH_PATH)


@pytest.mark.parametrize("module", NOT_ON_LAUNCH)
def test_not_imported_by_the_launch_path(launch_modules: set[str], module: str) -> None:
    assert module not in launch_modules, (
        f"{module} is imported on the launch path again: import it where it is needed"
    )


def test_the_list_names_real_modules() -> None:
    """(A renamed module would make its line above pass for ever.)"""
    for module in NOT_ON_LAUNCH:
        if module.startswith("aishell."):
            path = SRC.joinpath(*module.split(".")[1:])
            assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_the_launch_path_is_what_runs() -> None:
    """The modules above are the ones `cli` imports for a launch (its command table)."""
    from aishell import cli

    assert cli.COMMANDS["exec"].target.startswith("sandbox:")
    assert cli.COMMANDS["shell"].target.startswith("sandbox:")
    assert all(c.target.startswith("sandbox:") for c in cli.AGENTS.values())


def test_version_imports_no_launch_code() -> None:
    modules = imported_by("aishell.cli")
    assert not {m for m in modules if m.startswith(("aishell.launch", "aishell.engine"))}


def test_no_module_uses_typing_namedtuple() -> None:
    """Record types use aishell.tuples.NamedTuple: typing's compiles a ForwardRef for
    every field (~4 ms over a launch's ~80 classes)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "tuples.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = (
                isinstance(node, ast.ImportFrom)
                and node.module == "typing"
                and any(alias.name == "NamedTuple" for alias in node.names)
            )
            used = (
                isinstance(node, ast.Attribute)
                and node.attr == "NamedTuple"
                and isinstance(node.value, ast.Name)
                and node.value.id == "typing"
            )
            if imported or used:
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == [], "use `from aishell.tuples import NamedTuple`"
