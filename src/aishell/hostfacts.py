"""Gather, once, the facts about the host user that a launch needs."""

from __future__ import annotations

import os
import sys

from aishell import hostgit, paths
from aishell.engine.run_args import HostFacts


def _user_name(uid: int, environ: dict[str, str]) -> str:
    name = environ.get("USER") or environ.get("LOGNAME")
    if name:
        return name
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return "developer"


def logical_cwd(environ: dict[str, str]) -> str:
    """The working directory as the user typed it ($PWD), when it is the real one."""
    real = os.getcwd()
    logical = environ.get("PWD", "")
    if logical and os.path.isabs(logical) and logical != real:
        try:
            if os.path.samefile(logical, real):
                return os.path.normpath(logical)
        except OSError:
            pass
    return real


def gather(*, cwd: str | None = None, want_git: bool = True) -> HostFacts:
    environ = dict(os.environ)
    uid, gid = os.getuid(), os.getgid()
    here = cwd or logical_cwd(environ)
    name, email = hostgit.identity(here) if want_git else (None, None)
    return HostFacts(
        uid=uid,
        gid=gid,
        user=_user_name(uid, environ),
        home=str(paths.user_home(environ)),
        cwd=here,
        stdin_tty=sys.stdin.isatty(),
        stdout_tty=sys.stdout.isatty(),
        term=environ.get("TERM"),
        colorterm=environ.get("COLORTERM"),
        git_name=name,
        git_email=email,
        env=environ,
    )
