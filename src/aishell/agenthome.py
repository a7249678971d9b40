"""The agents' config inside a sandbox: per project, logins shared, host untouched.

For every enabled tool, `plan` (pure) says what a launch mounts; `prepare` (I/O)
makes it exist on the host. The layout (`harnesses.Tool`, docs/agents.md):

- `~/.aishell/projects/<key>/home/<rel>`: this project's copy of each config path
  (`config_dirs`, `config_files`), mounted read-write at `$HOME/<rel>`. A new copy of
  a config file starts from the keys `seed_keys` names, taken from the host's own file.
- `~/.aishell/agents/<tool>/store/<rel>`: the tool's shared logins (`logins`, when
  shared): bind-mounted onto `$HOME/<rel>` (`via="bind"`), or reached through a
  symlink `$HOME/<rel>` -> `LOGIN_STORE_MOUNT/<tool>/<rel>` with the store mounted
  there (`via="link"`). A login that is not shared is a plain file in the project's
  copy, seeded from the host's login the first time.
- `share_from_host`: host paths under the home mounted read-only at the same path.

The host's own agent config is never mounted. Everything below a mounted directory
is the agent's to write, so `prepare` works there through file descriptors and
never follows a symlink it finds (`_Dir`). The first launch with a tool copies its
login files from the host into the store once (`migrate`) and says so.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import TYPE_CHECKING, Final, Literal

from aishell import fileio, output, paths
from aishell.engine.run_args import Bind
from aishell.errors import AishellError
from aishell.harnesses import BY_NAME, LOGIN_STORE_MOUNT
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

MAX_LOGIN_BYTES: Final = 16 << 20
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

Kind = Literal["dir", "file"]


class ConfigPath(NamedTuple):
    """One per-project config path."""

    tool: str
    rel: str  # relative to the home
    kind: Kind


class LoginPlan(NamedTuple):
    tool: str
    rel: str
    via: Literal["bind", "link"]
    shared: bool
    seed: str | None


class Plan(NamedTuple):
    """What a launch mounts for the agents (pure data; `prepare` makes it exist)."""

    root: str  # ~/.aishell/projects/<key>/home
    home: str  # the host home (= the home path inside)
    config: tuple[ConfigPath, ...]
    logins: tuple[LoginPlan, ...]
    from_host: tuple[str, ...]  # absolute host paths, read-only at the same path
    stores: tuple[str, ...]  # tools whose store is mounted at LOGIN_STORE_MOUNT/<tool>

    def source(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def target(self, rel: str) -> str:
        return os.path.join(self.home, rel)

    def binds(self, agents_dir: str) -> list[Bind]:
        """The mounts, parents before children (the engine mounts them in order)."""
        binds = [Bind(self.source(p.rel), self.target(p.rel)) for p in self.config]
        for tool in self.stores:
            binds.append(Bind(store_dir(agents_dir, tool), f"{LOGIN_STORE_MOUNT}/{tool}"))
        for login in self.logins:
            if login.shared and login.via == "bind":
                source = os.path.join(store_dir(agents_dir, login.tool), login.rel)
                binds.append(Bind(source, self.target(login.rel)))
        binds += [Bind(p, p, readonly=True) for p in self.from_host]
        return binds

    @property
    def targets(self) -> list[str]:
        return [b.target for b in self.binds("/")]


def store_dir(agents_dir: str, tool: str) -> str:
    return os.path.join(agents_dir, tool, "store")


def link_target(tool: str, rel: str) -> str:
    return f"{LOGIN_STORE_MOUNT}/{tool}/{rel}"


def shares_logins(tool: str, share: Mapping[str, bool]) -> bool:
    return share.get(tool, BY_NAME[tool].share_logins)


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def plan(
    tools: Iterable[str],
    *,
    project_key: str,
    home: str,
    aishell_home: str,
    share: Mapping[str, bool] | None = None,
    from_host: Sequence[str] = (),
) -> Plan:
    """The agents' mounts for a launch of `tools` in the project `project_key`.
    `from_host` entries outside the enabled tools' config paths are left out."""
    share = share or {}
    names = sorted(tools)
    config: list[ConfigPath] = []
    logins: list[LoginPlan] = []
    stores: list[str] = []
    for name in names:
        tool = BY_NAME[name]
        config += [ConfigPath(name, rel, "dir") for rel in tool.config_dirs]
        config += [ConfigPath(name, rel, "file") for rel in tool.config_files]
        shared = shares_logins(name, share)
        for login in tool.logins:
            logins.append(LoginPlan(name, login.rel, login.via, shared, login.seed))
        if shared and any(login.via == "link" for login in tool.logins):
            stores.append(name)
    roots = [os.path.join(home, p.rel) for p in config]
    login_paths = {os.path.join(home, lg.rel) for lg in logins}
    wanted = []
    for entry in from_host:
        path = os.path.normpath(entry)
        if any(_under(path, r) for r in roots) and path not in roots and path not in login_paths:
            wanted.append(path)
    root = os.path.join(aishell_home, "projects", project_key, "home")
    return Plan(
        root, home, tuple(config), tuple(logins), tuple(dict.fromkeys(wanted)), tuple(stores)
    )


# ------------------------------------------------------------------------ I/O


def _error(path: str, exc: OSError) -> AishellError:
    return AishellError(
        f"cannot prepare {path}: {exc.strerror or exc}",
        hint="check the permissions of your aishell home (~/.aishell)",
    )


class _Dir:
    """A directory opened without following symlinks below a trusted root; what
    an agent left there (a symlink, a file where a directory belongs) is replaced."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, root: str, parts: Sequence[str]) -> _Dir:
        os.makedirs(root, mode=0o700, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | _O_DIRECTORY | os.O_CLOEXEC)
        here = cls(fd, root)
        for part in parts:
            nxt = here.subdir(part)
            here.close()
            here = nxt
        return here

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> _Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def remove(self, name: str) -> None:
        info = self.lstat(name)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            import shutil

            # rmtree with dir_fd never follows symlinks (it checks with fstat)
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            os.unlink(name, dir_fd=self.fd)

    def subdir(self, name: str) -> _Dir:
        info = self.lstat(name)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            self.remove(name)
            info = None
        if info is None:
            os.mkdir(name, 0o700, dir_fd=self.fd)
        fd = os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        return _Dir(fd, os.path.join(self.path, name))

    def ensure_file(self, name: str, content: bytes) -> bool:
        """A regular file `name` (created with `content` when missing or not a regular
        file); True when it was created."""
        info = self.lstat(name)
        if info is not None and stat.S_ISREG(info.st_mode):
            return False
        self.remove(name)
        self.write_new(name, content)
        return True

    def write_new(self, name: str, content: bytes) -> None:
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | os.O_CLOEXEC, 0o600,
            dir_fd=self.fd,
        )  # fmt: skip
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)

    def ensure_link(self, name: str, target: str) -> str:
        """`name` -> `target`. Returns what was there instead: "" (the link or nothing),
        "file" (a regular file, left to the caller: `adopt`), "other" (replaced)."""
        info = self.lstat(name)
        if info is not None and stat.S_ISLNK(info.st_mode):
            if os.readlink(name, dir_fd=self.fd) == target:
                return ""
            os.unlink(name, dir_fd=self.fd)
        elif info is not None and stat.S_ISREG(info.st_mode):
            return "file"
        elif info is not None:
            self.remove(name)
        os.symlink(target, name, dir_fd=self.fd)
        return "" if info is None or stat.S_ISLNK(info.st_mode) else "other"

    def read(self, name: str, limit: int = MAX_LOGIN_BYTES) -> bytes | None:
        try:
            fd = os.open(
                name, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd
            )
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
        return data if len(data) <= limit else None


def _read_host_file(path: str, limit: int = MAX_LOGIN_BYTES) -> bytes | None:
    """A file of the host user's own (symlinks followed: it is theirs), if regular and
    at most `limit` bytes."""
    data = fileio.read_regular(path, limit, follow_links=True)
    return data if data is not None and len(data) <= limit else None


def seed_content(tool: str, rel: str, host_file: bytes | None) -> bytes:
    """A new project's copy of config file `rel`: the `seed_keys` of the host's file
    (a JSON object), else `{}`."""
    keys = dict(BY_NAME[tool].seed_keys).get(rel, ())
    picked: dict[str, object] = {}
    if keys and host_file:
        try:
            data = json.loads(host_file)
        except ValueError:
            data = None
        if isinstance(data, dict):
            picked = {k: data[k] for k in keys if k in data}
    return (json.dumps(picked, indent=2) + "\n").encode() if picked else b"{}\n"


def _split(rel: str) -> tuple[list[str], str]:
    parts = rel.split("/")
    return parts[:-1], parts[-1]


def migrate(tool: str, home: str, agents_dir: str) -> list[str]:
    """The first time a tool's logins are shared: copy the host's login files into the
    store (once; never over a login the store already has). Returns what was copied."""
    base = os.path.join(agents_dir, tool)
    marker = os.path.join(base, "migrated.json")
    if os.path.exists(marker):
        return []
    copied: list[str] = []
    store = store_dir(agents_dir, tool)
    for login in BY_NAME[tool].logins:
        parents, name = _split(login.rel)
        with _Dir.open(store, parents) as d:
            if d.lstat(name) is not None:
                continue
            data = _read_host_file(os.path.join(home, login.rel))
            if data is not None:
                d.write_new(name, data)
                copied.append(login.rel)
            elif login.via == "bind" and login.seed is not None:
                d.write_new(name, login.seed.encode())
    payload = {"copied": copied, "at": _now()}
    tmp = f"{marker}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, marker)
    return copied


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def prepare(p: Plan, *, agents_dir: str | None = None) -> list[Bind]:
    """Make `p` exist on the host and return its binds."""
    agents = agents_dir or str(paths.agents_dir())
    try:
        _prepare(p, agents)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            # A read-only aishell home still runs what it set up; nothing the agents
            # write can be kept, so none of their config is mounted this time.
            output.warn(
                f"the aishell home is read-only ({exc.filename or p.root}): the agents' "
                "config and logins are not mounted and nothing they write is kept"
            )
            return []
        raise _error(getattr(exc, "filename", None) or p.root, exc) from exc
    return p.binds(agents)


def _tools_of(p: Plan) -> list[str]:
    return list(dict.fromkeys([c.tool for c in p.config] + [lg.tool for lg in p.logins]))


def _prepare(p: Plan, agents: str) -> None:
    for tool in _tools_of(p):
        shared = any(lg.tool == tool and lg.shared for lg in p.logins)
        copied = migrate(tool, p.home, agents) if shared else []
        _notice_once(tool, agents, shared=shared, copied=copied)
    for item in p.config:
        parents, name = _split(item.rel)
        with _Dir.open(p.root, parents) as d:
            if item.kind == "dir":
                d.subdir(name).close()
            else:
                host = _read_host_file(p.target(item.rel)) if BY_NAME[item.tool].seed_keys else None
                d.ensure_file(name, seed_content(item.tool, item.rel, host))
    for login in p.logins:
        _prepare_login(p, login, agents)
    for path in p.from_host:
        _mount_point(p, path)


def _prepare_login(p: Plan, login: LoginPlan, agents: str) -> None:
    parents, name = _split(login.rel)
    with _Dir.open(p.root, parents) as d:
        if not login.shared:
            # per project: a file of its own, the host's login the first time
            if d.lstat(name) is None:
                data = _read_host_file(p.target(login.rel))
                if data is not None:
                    d.write_new(name, data)
            elif (info := d.lstat(name)) is not None and stat.S_ISLNK(info.st_mode):
                os.unlink(name, dir_fd=d.fd)  # a link left from sharing: the store's copy
                data = _read_host_file(os.path.join(store_dir(agents, login.tool), login.rel))
                if data is not None:
                    d.write_new(name, data)
            return
        if login.via == "bind":
            # the mount point, a regular file of the user's (the engine would make a
            # root-owned one, and would follow a symlink the agent left there)
            d.ensure_file(name, b"")
            with _Dir.open(store_dir(agents, login.tool), parents) as s:
                s.ensure_file(name, (login.seed or "").encode())
            return
        found = d.ensure_link(name, link_target(login.tool, login.rel))
        if found == "file":
            adopt(d, name, login, agents)


def adopt(d: _Dir, name: str, login: LoginPlan, agents: str) -> None:
    """A regular file where the link to the shared login belongs (the agent replaced
    the link, e.g. by writing a new file and renaming it over): it is newer than the
    store's login, or the store has none, so it becomes the shared login; then the
    link goes back."""
    parents, _ = _split(login.rel)
    data = d.read(name)
    info = d.lstat(name)
    with _Dir.open(store_dir(agents, login.tool), parents) as s:
        current = s.lstat(name)
        if data is not None and (current is None or (info and info.st_mtime > current.st_mtime)):
            tmp = f".{name}.{os.getpid()}.tmp"
            s.remove(tmp)
            s.write_new(tmp, data)
            os.replace(tmp, name, src_dir_fd=s.fd, dst_dir_fd=s.fd)
    os.unlink(name, dir_fd=d.fd)
    os.symlink(link_target(login.tool, login.rel), name, dir_fd=d.fd)


def _notice_once(tool: str, agents: str, *, shared: bool, copied: Sequence[str]) -> None:
    """Say once per tool what changed for it (the first launch with this layout)."""
    marker = os.path.join(agents, tool, "layout-1")
    if os.path.exists(marker):
        return
    t = BY_NAME[tool]
    own = ", ".join(f"~/{rel}" for rel in (*t.config_dirs, *t.config_files))
    text = (
        f"{t.label}: its config is now kept per project by aishell ({own} on your host "
        "is no longer mounted into sandboxes)"
    )
    if not t.logins:
        text += "."
    elif shared:
        text += "; its login is shared by all projects"
        if copied:
            where = ", ".join(f"~/{rel}" for rel in copied)
            text += f": copied your login ({where}) into {store_dir(agents, tool)}"
        text += "."
    else:
        text += (
            "; its login is per project too (" + t.login_risk + "): each new project starts "
            "with a copy of your host login; 'share_logins' in ~/.aishell/config.yaml changes that."
        )
    output.info(text + " See docs/agents.md.")
    os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(_now() + "\n")


def _mount_point(p: Plan, path: str) -> None:
    """The mount point of a `share_from_host` path inside the project's copy, of the
    host path's kind (the engine would create a root-owned one)."""
    try:
        info = os.stat(path)
    except OSError:
        return
    rel = os.path.relpath(path, p.home)
    parents, name = _split(rel)
    with _Dir.open(p.root, parents) as d:
        if stat.S_ISDIR(info.st_mode):
            d.subdir(name).close()
        else:
            d.ensure_file(name, b"")


def existing_from_host(entries: Iterable[str]) -> list[str]:
    """The `share_from_host` paths that exist (the others are skipped, with a word)."""
    found = []
    for entry in entries:
        if os.path.exists(entry):
            found.append(entry)
        else:
            output.warn(f"share_from_host: {entry} does not exist; skipped")
    return found
