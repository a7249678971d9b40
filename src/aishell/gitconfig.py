"""Git configuration as data: which settings make git run a program, and how aishell's
own git calls turn them off. Pure: no git is run here (`hostgit` runs it).

Git reads its config from the repository (`.git/config`, `config.worktree` and the
files they include), which the agent may have written, and many settings name a
program git then runs: hooks, fsmonitor, filters, diff and merge drivers, pagers,
editors, ssh and credential helpers, aliases, ... `EXECUTABLE` lists them (as data,
easy to extend); `executable_reason` says whether one setting is such a program, and
`overrides` gives the `GIT_CONFIG_*` settings that aishell's own git calls carry so
that none of them runs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Final

from aishell.tuples import NamedTuple


class Entry(NamedTuple):
    """One line of `git config --list --show-scope --show-origin -z`."""

    scope: str  # system, global, local, worktree, command
    origin: str  # e.g. "file:.git/config"
    key: str  # section and name lowercase, the subsection as written: filter.Evil.clean
    value: str | None  # None: a key without "=" (boolean true)

    @property
    def parts(self) -> tuple[str, str | None, str]:
        """(section, subsection or None, name): `filter.a.b.clean` -> ("filter", "a.b", "clean")."""
        section, _, rest = self.key.partition(".")
        sub, dot, name = rest.rpartition(".")
        return section.lower(), (sub if dot else None), name.lower()

    @property
    def origin_path(self) -> str | None:
        return self.origin[len("file:") :] if self.origin.startswith("file:") else None


def parse_listing(text: str) -> list[Entry]:
    """`git config --list --show-scope --show-origin -z` output -> entries (each
    record is `scope NUL origin NUL key [LF value] NUL`)."""
    fields = text.split("\0")
    entries: list[Entry] = []
    for i in range(0, len(fields) - 2, 3):
        scope, origin, item = fields[i], fields[i + 1], fields[i + 2]
        key, newline, value = item.partition("\n")
        if key:
            entries.append(Entry(scope, origin, key, value if newline else None))
    return entries


# Settings that make git run a program, as (pattern, why). A pattern is
# `section.name` or `section.*.name` (any subsection), lowercase; matched with fnmatch
# against the key with its subsection in place. Values for which a key runs nothing
# (e.g. `core.fsmonitor=false`) are sorted out by `executable_reason`.
EXECUTABLE: Final[tuple[tuple[str, str], ...]] = (
    ("core.fsmonitor", "runs a file-system monitor program on most git commands"),
    ("core.hookspath", "makes git run hooks from another directory"),
    ("core.pager", "the program git pipes its output through"),
    ("pager.*", "the program git pipes one command's output through"),
    ("core.editor", "the editor git starts for commit messages"),
    ("sequence.editor", "the editor git starts for rebase todo lists"),
    ("core.sshcommand", "the ssh program git runs for fetch and push"),
    ("core.askpass", "the program git asks for passwords"),
    ("core.gitproxy", "a proxy program git runs for git:// URLs"),
    ("core.alternaterefscommand", "a program git runs to list alternate refs"),
    ("credential.helper", "a credential helper git runs"),
    ("credential.*.helper", "a credential helper git runs"),
    ("filter.*.clean", "a filter git runs on files (git add, status, diff)"),
    ("filter.*.smudge", "a filter git runs on files (checkout)"),
    ("filter.*.process", "a long-running filter git runs on files"),
    ("diff.external", "an external diff program"),
    ("diff.*.command", "an external diff program"),
    ("diff.*.textconv", "a program git runs to convert files for diff and log"),
    ("merge.*.driver", "a merge driver git runs on merges"),
    ("interactive.difffilter", "a program git add -p runs"),
    ("gpg.program", "the signing program git runs"),
    ("gpg.*.program", "the signing program git runs"),
    ("gpg.ssh.defaultkeycommand", "a program git runs to find a signing key"),
    ("alias.*", "an alias that runs a shell command"),
    ("uploadpack.packobjectshook", "a program git runs when serving fetches"),
    ("remote.*.uploadpack", "the program git runs on the other side of a fetch"),
    ("remote.*.receivepack", "the program git runs on the other side of a push"),
    ("remote.*.vcs", "a remote helper program git runs for this remote"),
    ("remote.*.url", "an ext:: URL runs a command on fetch"),
    ("remote.*.pushurl", "an ext:: URL runs a command on push"),
    ("url.*.insteadof", "rewrites URLs to an ext:: command"),
    ("url.*.pushinsteadof", "rewrites URLs to an ext:: command"),
    ("protocol.allow", "allows the ext:: transport, which runs commands"),
    ("protocol.*.allow", "allows the ext:: transport, which runs commands"),
    ("submodule.*.update", "a command git submodule update runs"),
    ("include.path", "pulls more settings in from another file"),
    ("includeif.*.path", "pulls more settings in from another file"),
    ("hook.*.command", "a hook command git runs"),
    ("trailer.*.command", "a command git runs to make commit trailers"),
    ("trailer.*.cmd", "a command git runs to make commit trailers"),
    ("difftool.*.cmd", "a diff tool git difftool runs"),
    ("difftool.*.path", "a diff tool git difftool runs"),
    ("mergetool.*.cmd", "a merge tool git mergetool runs"),
    ("mergetool.*.path", "a merge tool git mergetool runs"),
    ("guitool.*.cmd", "a command git gui runs"),
    ("web.browser", "the browser git help and instaweb start"),
    ("browser.*.cmd", "a browser command git runs"),
    ("browser.*.path", "a browser program git runs"),
    ("man.*.cmd", "a man viewer command git help runs"),
    ("man.*.path", "a man viewer program git help runs"),
    ("sendemail.sendmailcmd", "the mail program git send-email runs"),
    ("sendemail.smtpserver", "the mail program git send-email runs (when a path)"),
    ("sendemail.tocmd", "a command git send-email runs"),
    ("sendemail.cccmd", "a command git send-email runs"),
)

_OFF_VALUES = frozenset({"", "false", "no", "off", "0"})


def _pattern_key(entry: Entry) -> str:
    section, sub, name = entry.parts
    return f"{section}.{sub.lower()}.{name}" if sub is not None else f"{section}.{name}"


def executable_reason(entry: Entry) -> str | None:
    """Why this setting makes git run a program (None: it does not)."""
    key = _pattern_key(entry)
    section, sub, name = entry.parts
    value = (entry.value or "").strip()
    for pattern, why in EXECUTABLE:
        if pattern.count(".") == 2 and sub is None:
            continue
        if pattern.count(".") == 1 and sub is not None:
            continue
        if not fnmatch.fnmatchcase(key, pattern):
            continue
        if pattern == "alias.*":
            return why if value.startswith("!") else None
        if section == "remote" and name in ("url", "pushurl"):
            return why if value.lower().startswith("ext::") else None
        if section == "url":
            return why if (sub or "").lower().startswith("ext::") else None
        if section == "protocol":
            return why if value.lower() == "always" and (sub in (None, "ext")) else None
        if section == "submodule":
            return why if value.startswith("!") else None
        if section == "sendemail" and name == "smtpserver":
            return why if value.startswith("/") else None
        if entry.value is None:
            # A key without a value is boolean true: only fsmonitor reads it as a command
            # ("true" starts the built-in daemon, not a program of the repository's).
            return None
        if value.lower() in _OFF_VALUES and section in (
            "core",
            "pager",
            "filter",
            "diff",
            "credential",
        ):
            return None
        if pattern == "core.fsmonitor" and value.lower() in ("true", "yes", "on", "1"):
            return None  # the built-in daemon
        return why
    return None


def executable(entries: Iterable[Entry]) -> list[tuple[Entry, str]]:
    """The settings among `entries` that make git run a program, with why."""
    found = []
    for entry in entries:
        why = executable_reason(entry)
        if why is not None:
            found.append((entry, why))
    return found


# Scopes whose files live in the repository (the agent may have written them); files
# they include count as the same scope in git's listing.
REPOSITORY_SCOPES: Final = frozenset({"local", "worktree"})

# Carried by every git call aishell makes on the host, whatever the config says.
FIXED_OVERRIDES: Final[tuple[tuple[str, str], ...]] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("core.askPass", ""),
    ("core.sshCommand", "false"),
    ("core.gitProxy", ""),
    ("core.alternateRefsCommand", ""),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("gpg.program", "false"),
    ("log.showSignature", "false"),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)

# Per-driver settings to blank, for every driver the repository defines: (section,
# name, neutral value). An empty filter command means "no filter"; `required=false`
# lets git go on without it. An empty textconv/command means none.
DRIVER_OVERRIDES: Final[tuple[tuple[str, str, str], ...]] = (
    ("filter", "clean", ""),
    ("filter", "smudge", ""),
    ("filter", "process", ""),
    ("filter", "required", "false"),
    ("diff", "textconv", ""),
    ("diff", "command", ""),
)


def overrides(entries: Sequence[Entry]) -> list[tuple[str, str]]:
    """The settings (key, value) that turn off everything the repository's config
    could make git run: the fixed ones, then for each filter and diff driver the
    repository defines (or redefines) its commands blanked, and each `pager.<cmd>`
    it sets turned off."""
    result = list(FIXED_OVERRIDES)
    seen: set[str] = set()
    for entry in entries:
        if entry.scope not in REPOSITORY_SCOPES:
            continue
        section, sub, name = entry.parts
        if section == "pager" and sub is None:
            keys = [(f"pager.{name}", "false")]
        elif section in ("filter", "diff") and sub is not None:
            keys = [(f"{section}.{sub}.{n}", v) for s, n, v in DRIVER_OVERRIDES if s == section]
        else:
            continue
        for key, value in keys:
            if key not in seen:
                seen.add(key)
                result.append((key, value))
    return result


def environment(settings: Sequence[tuple[str, str]]) -> dict[str, str]:
    """`settings` as git's GIT_CONFIG_COUNT/KEY_n/VALUE_n variables: command-scope
    settings that win over every file, passed to git's own child processes too, and
    safe for any subsection name (unlike `-c`, which splits at the first '=')."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for i, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env
