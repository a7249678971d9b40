"""Sensitive-file detectors as data, gitignore-style globs, and a compiled matcher.

Everything here is pure: no filesystem access, no output. `scan.py` walks the
tree and asks a `Matcher` about each file; see docs/detection.md for the
user-facing description of the rules and the glob semantics.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "BUILTIN_DETECTORS",
    "CONTENT_BYTES",
    "CUSTOM_DEFAULT_REASON",
    "Allowlist",
    "AllowlistEntryLike",
    "CustomPatternLike",
    "Detector",
    "Glob",
    "Matcher",
    "Severity",
    "compile_allowlist",
    "compile_glob",
    "custom_detectors",
    "translate_glob",
]


class Severity(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for high, 1 for medium, 2 for low: sort ascending for most severe first."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        """`"HIGH"`, `" high "` → `Severity.HIGH`; anything else raises ValueError."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"invalid severity {value!r} (expected one of: {choices})") from None


_RANK = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


# --------------------------------------------------------------------------- globs


def translate_glob(pattern: str) -> tuple[str, bool]:
    """Translate a gitignore-style glob into `(regex, basename_only)`.

    The regex is meant for `fullmatch`: against the file's base name when
    `basename_only` is true, otherwise against its project-relative POSIX path.

    - no `/` other than a trailing one: matches the base name at any depth;
    - a leading `/` or a `/` in the middle anchors the pattern to the project root;
    - a trailing `/` matches everything inside a directory of that name;
    - `*` matches anything but `/`, `?` one character other than `/`,
      `[...]` / `[!...]` / `[^...]` a character class (never `/`);
    - `**/` matches zero or more directories, `/**` at the end everything
      inside, `/**/` zero or more directories; other `**` act like `*`;
    - `\\x` matches `x` literally.

    Raises ValueError for an empty pattern and for `!` negation (use the allowlist).
    """
    if not pattern or not pattern.strip():
        raise ValueError("empty pattern")
    if pattern.startswith("!"):
        raise ValueError(f"negated pattern {pattern!r} is not supported (use the allowlist)")
    p = re.sub(r"/{2,}", "/", pattern)
    dir_only = p.endswith("/") and not p.endswith("\\/")
    if dir_only:
        p = p[:-1]
    leading_slash = p.startswith("/")
    if leading_slash:
        p = p[1:]
    if not p:
        raise ValueError(f"pattern {pattern!r} matches nothing")
    anchored = leading_slash or "/" in p
    segments = p.split("/")
    parts: list[str] = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if seg == "**" and (last > 0 or leading_slash):
            # `**/` (leading or middle): zero or more directories, slash included;
            # `/**` at the end: everything inside.
            parts.append(".+" if i == last else "(?:.*/)?")
            continue
        parts.append(_translate_segment(seg))
        if i != last:
            parts.append("/")
    body = "".join(parts)
    if not anchored and not dir_only:
        return body, True
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.+" if dir_only else ""
    return prefix + body + suffix, False


def _translate_segment(seg: str) -> str:
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            while i < n and seg[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            cls, end = _translate_class(seg, i)
            if cls is None:
                out.append(re.escape(c))
            else:
                out.append(cls)
                i = end
                continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(seg[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _translate_class(seg: str, start: int) -> tuple[str | None, int]:
    """Translate the class opening at `seg[start] == "["`; (None, start) if unterminated."""
    n = len(seg)
    j = start + 1
    negate = j < n and seg[j] in "!^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while j < n and (seg[j] != "]" or first):
        first = False
        c = seg[j]
        if c == "\\" and j + 1 < n:
            j += 1
            c = seg[j]
        if j + 2 < n and seg[j + 1] == "-" and seg[j + 2] != "]":
            hi_idx = j + 2
            if seg[hi_idx] == "\\" and hi_idx + 1 < n:
                hi_idx += 1
            items.append(f"{re.escape(c)}-{re.escape(seg[hi_idx])}")
            j = hi_idx + 1
            continue
        items.append(re.escape(c))
        j += 1
    if j >= n:
        return None, start
    body = "".join(items)
    # `(?!/)` keeps ranges such as `[!-0]` from ever matching a separator.
    return f"(?!/)[{'^' if negate else ''}{body}]", j + 1


@dataclass(frozen=True)
class Glob:
    """A compiled gitignore-style pattern; see `translate_glob`."""

    pattern: str
    regex: re.Pattern[str]
    basename_only: bool

    def matches(self, rel: str) -> bool:
        """Does the pattern match this project-relative POSIX path?"""
        target = rel.rpartition("/")[2] if self.basename_only else rel
        return self.regex.fullmatch(target) is not None


def compile_glob(pattern: str, *, ignore_case: bool = False) -> Glob:
    source, basename_only = translate_glob(pattern)
    flags = re.IGNORECASE if ignore_case else 0
    return Glob(pattern, re.compile(source, flags | re.DOTALL), basename_only)


# --------------------------------------------------------------------------- detectors


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive file.

    A file matches when its lower-cased name is in `names`, starts with one of
    `prefixes`, ends with one of `suffixes`, starts and ends with one of the
    `(prefix, suffix)` pairs in `affixes`, when its lower-cased relative path
    contains one of `path_contains` starting at a path-segment boundary
    (`.kube/config` matches `.kube/config` and `a/.kube/config.bak`, not
    `x.kube/config`), or when `glob` (custom patterns) matches its path.
    A match is then dropped when the name contains any of `unless_name_contains`,
    or contains none of `only_if_name_contains` (when that is set).

    `gated`: `(suffix, regex)` pairs; a name ending with the suffix and matching the
    regex (fullmatch, on the lower-cased name) matches too (the suffix keeps the
    regex off every other file). `content`: a bytes regex that the file's first
    `CONTENT_BYTES` must contain for the detector to apply (the scan reads the file;
    `Matcher.classify` asks through `content_ok`).
    """

    id: str
    label: str  # plural, for summaries: "env files"
    severity: Severity
    reason: str
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    affixes: tuple[tuple[str, str], ...] = ()
    path_contains: tuple[str, ...] = ()
    unless_name_contains: tuple[str, ...] = ()
    only_if_name_contains: tuple[str, ...] = ()
    glob: Glob | None = field(default=None, compare=False)
    gated: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None

    def __post_init__(self) -> None:
        for frag in self.path_contains:
            # The matcher's fast path relies on the fragment's first segment
            # being a directory name.
            if "/" not in frag.strip("/") or frag.startswith("/") or frag != frag.lower():
                raise ValueError(f"{self.id}: path fragment {frag!r} must be 'dir/...', lower-case")
        lowered = (
            *self.names,
            *self.prefixes,
            *self.suffixes,
            *(a for pair in self.affixes for a in pair),
        )
        if any(s != s.lower() for s in lowered):
            raise ValueError(f"{self.id}: name rules must be lower-case")

    def matches(self, rel: str, lname: str) -> bool:
        """Precise test. `rel`: project-relative POSIX path; `lname`: its lower-cased name."""
        hit = (
            lname in self.names
            or (bool(self.prefixes) and lname.startswith(self.prefixes))
            or (bool(self.suffixes) and lname.endswith(self.suffixes))
            or any(lname.startswith(a) and lname.endswith(b) for a, b in self.affixes)
            or (bool(self.path_contains) and _path_contains(rel, self.path_contains))
            or (self.glob is not None and self.glob.matches(rel))
            or any(
                lname.endswith(suffix) and re.fullmatch(pattern, lname)
                for suffix, pattern in self.gated
            )
        )
        if not hit:
            return False
        if self.unless_name_contains and any(t in lname for t in self.unless_name_contains):
            return False
        return not (
            self.only_if_name_contains and not any(t in lname for t in self.only_if_name_contains)
        )


def _path_contains(rel: str, fragments: tuple[str, ...]) -> bool:
    haystack = "/" + rel.lower()
    return any("/" + frag in haystack for frag in fragments)


#: How much of a file a `content` detector reads.
CONTENT_BYTES = 64 * 1024

_ENV_NAMES = frozenset({".env", ".envrc"})

# GCP service-account key files: the Console's default name (`<project>-<key id>.json`)
# or a name that says what it is; confirmed by the content.
_GCP_KEY_NAMES = (
    (".json", r"[a-z][a-z0-9-]{4,28}[a-z0-9]-[0-9a-f]{12}\.json"),
    (
        ".json",
        r".*(?:service[-_.]?account|serviceaccount|sa[-_.]?key|[-_.]sa|gcp|gcloud|google"
        r"|credential|keyfile|[-_.]key[-_.]|^key[-_.])[^/]*",
    ),
)
_ENV_TEMPLATE_TOKENS = ("example", "sample", "template", "dist")

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        id="env-file",
        label="env files",
        severity=Severity.MEDIUM,
        reason="Environment configuration file",
        names=_ENV_NAMES,
        prefixes=(".env.",),
        unless_name_contains=_ENV_TEMPLATE_TOKENS,
    ),
    Detector(
        id="env-template",
        label="env templates",
        severity=Severity.LOW,
        reason="Environment template file",
        names=_ENV_NAMES,
        prefixes=(".env.",),
        only_if_name_contains=_ENV_TEMPLATE_TOKENS,
    ),
    Detector(
        id="ssh-key",
        label="SSH keys",
        severity=Severity.HIGH,
        reason="SSH private key file",
        names=frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"}),
        suffixes=(".ppk",),
    ),
    Detector(
        id="key-container",
        label="key containers",
        severity=Severity.HIGH,
        reason="Key container file (PKCS12/JKS)",
        suffixes=(".p12", ".pfx", ".jks", ".keystore"),
    ),
    Detector(
        id="pem-key",
        label="PEM/key files",
        severity=Severity.MEDIUM,
        reason="PEM/key file (may contain private key or certificate)",
        suffixes=(".pem", ".key"),
    ),
    Detector(
        id="gcp-adc",
        label="GCP credentials",
        severity=Severity.HIGH,
        reason="GCP application default credentials file",
        names=frozenset({"application_default_credentials.json"}),
    ),
    Detector(
        id="terraform-state",
        label="Terraform state files",
        severity=Severity.HIGH,
        reason="Terraform state file (may contain plaintext secrets)",
        prefixes=("terraform.tfstate",),
    ),
    Detector(
        id="kubeconfig",
        label="kubeconfig files",
        severity=Severity.MEDIUM,
        reason="Kubernetes cluster configuration file",
        names=frozenset({"kubeconfig"}),
        path_contains=(".kube/config",),
    ),
    Detector(
        id="package-credentials",
        label="package-manager credentials",
        severity=Severity.HIGH,
        reason="Package manager credentials file",
        names=frozenset({".pypirc", ".netrc"}),
    ),
    Detector(
        id="tool-config",
        label="tool configs",
        severity=Severity.MEDIUM,
        reason="Tool configuration file (may contain credentials)",
        names=frozenset({".npmrc", ".yarnrc.yml", ".terraformrc", "credentials.tfrc.json"}),
    ),
    Detector(
        id="aws-credentials",
        label="AWS credentials",
        severity=Severity.HIGH,
        reason="AWS access keys or cached session tokens",
        path_contains=(".aws/credentials", ".aws/sso/cache/", ".aws/cli/cache/"),
    ),
    Detector(
        id="git-credentials",
        label="git credential stores",
        severity=Severity.HIGH,
        reason="git credential store (passwords and tokens in plain text)",
        names=frozenset({".git-credentials"}),
        path_contains=("git/credentials",),
    ),
    Detector(
        id="gcloud-credentials",
        label="gcloud credentials",
        severity=Severity.HIGH,
        reason="Google Cloud SDK credentials (refresh tokens, service-account keys)",
        path_contains=(
            "gcloud/credentials.db",
            "gcloud/access_tokens.db",
            "gcloud/legacy_credentials/",
        ),
    ),
    Detector(
        id="gcp-service-account-key",
        label="GCP service-account keys",
        severity=Severity.HIGH,
        reason="GCP service-account key file (a private key for a cloud identity)",
        gated=_GCP_KEY_NAMES,
        content=rb'"type"\s*:\s*"service_account"',
    ),
    Detector(
        id="gh-hosts",
        label="GitHub CLI tokens",
        severity=Severity.HIGH,
        reason="GitHub CLI token file (gh auth)",
        path_contains=("gh/hosts.yml",),
    ),
    Detector(
        id="docker-config",
        label="Docker registry credentials",
        severity=Severity.HIGH,
        reason="Docker client config (registry logins in 'auths')",
        path_contains=(".docker/config.json",),
    ),
    Detector(
        id="azure-tokens",
        label="Azure CLI tokens",
        severity=Severity.HIGH,
        reason="Azure CLI token cache",
        path_contains=(".azure/msal_token_cache.json", ".azure/accesstokens.json"),
    ),
    Detector(
        id="agent-credentials",
        label="AI agent logins",
        severity=Severity.HIGH,
        reason="AI coding agent login (OAuth tokens, API keys)",
        path_contains=(
            ".claude/.credentials.json",
            ".codex/auth.json",
            "opencode/auth.json",
            ".gemini/oauth_creds.json",
            ".pi/agent/auth.json",
        ),
    ),
    Detector(
        id="rails-master-key",
        label="Rails master keys",
        severity=Severity.HIGH,
        reason="Rails master key (decrypts all application secrets)",
        names=frozenset({"master.key"}),
    ),
    Detector(
        id="rails-credentials",
        label="Rails credentials",
        severity=Severity.HIGH,
        reason="Rails encrypted credentials file",
        affixes=(("credentials", ".yml.enc"),),
    ),
    Detector(
        id="secret-named",
        label="secret-named files",
        severity=Severity.MEDIUM,
        reason="File with secret-like naming pattern",
        prefixes=("secret.", "secrets.", "vault.", "token.", "apikey.", "private."),
    ),
    Detector(
        id="db-credentials",
        label="database credentials",
        severity=Severity.MEDIUM,
        reason="Database credentials file",
        names=frozenset({".pgpass", ".my.cnf", "database.yml"}),
    ),
)

CUSTOM_DEFAULT_REASON = "Custom pattern match"


class CustomPatternLike(Protocol):
    """A `detection.custom_patterns` entry (the config module's type)."""

    @property
    def glob(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def description(self) -> str | None: ...


class AllowlistEntryLike(Protocol):
    """A `detection.allowlist` entry (the config module's type)."""

    @property
    def path(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


def custom_detectors(
    patterns: Iterable[CustomPatternLike],
) -> tuple[tuple[Detector, ...], tuple[str, ...]]:
    """Detectors for custom patterns, plus a note for each pattern that was skipped.

    Custom patterns match case-insensitively, like the built-in detectors.
    """
    detectors: list[Detector] = []
    notes: list[str] = []
    for p in patterns:
        try:
            severity = Severity.parse(str(p.severity))
            glob = compile_glob(p.glob, ignore_case=True)
        except ValueError as exc:
            notes.append(f"ignored custom pattern {p.glob!r}: {exc}")
            continue
        description = (p.description or "").strip()
        detectors.append(
            Detector(
                id=f"custom:{p.glob}",
                label=description or f"files matching {p.glob}",
                severity=severity,
                reason=description or CUSTOM_DEFAULT_REASON,
                glob=glob,
            )
        )
    return tuple(detectors), tuple(notes)


# --------------------------------------------------------------------------- matcher


class Matcher:
    """Classifies files against a fixed set of detectors.

    The fast test (`is_candidate`) is a set lookup on the lower-cased name,
    two `str.startswith/endswith` calls with tuples, a flag for directories
    that path fragments could concern, and — only when custom patterns exist —
    one precompiled regex over the name and one over the path. Candidates are
    then checked precisely against each detector (`matches`), which is rare.
    """

    def __init__(self, detectors: Iterable[Detector] = BUILTIN_DETECTORS) -> None:
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        names: set[str] = set()
        prefixes: set[str] = set()
        suffixes: set[str] = set()
        hot_dirs: set[str] = set()
        name_globs: list[str] = []
        path_globs: list[str] = []
        gated: dict[str, list[str]] = {}
        for d in self.detectors:
            for suffix, pattern in d.gated:
                gated.setdefault(suffix, []).append(pattern)
            names.update(d.names)
            prefixes.update(d.prefixes)
            suffixes.update(d.suffixes)
            prefixes.update(a for a, _ in d.affixes)
            hot_dirs.update(frag.split("/", 1)[0] for frag in d.path_contains)
            if d.glob is not None:
                target = name_globs if d.glob.basename_only else path_globs
                target.append(d.glob.regex.pattern)
        self.names: frozenset[str] = frozenset(names)
        # Sorted for determinism only: startswith()/endswith() try every entry.
        self.prefixes: tuple[str, ...] = tuple(sorted(prefixes))
        self.suffixes: tuple[str, ...] = tuple(sorted(suffixes))
        # Lower-cased directory names below which every file is a candidate.
        self.hot_dirs: frozenset[str] = frozenset(hot_dirs)
        self.name_regex: re.Pattern[str] | None = _union(name_globs)
        self.path_regex: re.Pattern[str] | None = _union(path_globs)
        # Names ending with one of these suffixes are candidates when `gated_regex`
        # matches them (one endswith() for every other file).
        self.gated_suffixes: tuple[str, ...] = tuple(sorted(gated))
        self.gated_regex: re.Pattern[str] | None = _union(
            [p for patterns in gated.values() for p in patterns]
        )

    def is_candidate(self, rel: str, lname: str, *, hot: bool = False) -> bool:
        """Cheap necessary condition for `matches(rel, lname)` to be non-empty.

        `hot`: some directory on the way to the file is in `hot_dirs`; when
        omitted it is computed from `rel`.
        """
        if lname in self.names or lname.startswith(self.prefixes) or lname.endswith(self.suffixes):
            return True
        if (
            self.gated_regex is not None
            and lname.endswith(self.gated_suffixes)
            and self.gated_regex.match(lname) is not None
        ):
            return True
        if not hot and self.hot_dirs:
            hot = any(seg.lower() in self.hot_dirs for seg in rel.split("/")[:-1])
        return (
            hot
            or (self.name_regex is not None and self.name_regex.match(lname) is not None)
            or (self.path_regex is not None and self.path_regex.match(rel) is not None)
        )

    def matches(self, rel: str, lname: str | None = None) -> tuple[Detector, ...]:
        """All detectors matching the file at `rel` (precise, no fast path)."""
        if lname is None:
            lname = rel.rpartition("/")[2].lower()
        return tuple(d for d in self.detectors if d.matches(rel, lname))

    def classify(
        self,
        rel: str,
        name: str | None = None,
        *,
        content_ok: Callable[[Detector], bool] | None = None,
    ) -> Detector | None:
        """The detector a file is reported under: the most severe match, ties
        going to the earlier detector (built-ins come before custom patterns).
        A detector with `content` applies only when `content_ok(detector)` says the
        file's content matches (without `content_ok`, it never applies)."""
        lname = (name if name is not None else rel.rpartition("/")[2]).lower()
        if not self.is_candidate(rel, lname):
            return None
        best: Detector | None = None
        for d in self.matches(rel, lname):
            if d.content is not None and (content_ok is None or not content_ok(d)):
                continue
            if best is None or d.severity.rank < best.severity.rank:
                best = d
        return best


def _union(sources: Sequence[str]) -> re.Pattern[str] | None:
    if not sources:
        return None
    return re.compile(
        "(?:" + "|".join(f"(?:{s})" for s in sources) + r")\Z", re.IGNORECASE | re.DOTALL
    )


# --------------------------------------------------------------------------- allowlist


@dataclass(frozen=True)
class Allowlist:
    """Paths the user has reviewed. An entry matches a file when it equals the
    project-relative path, or is a glob (gitignore semantics, case-sensitive)
    matching it."""

    exact: frozenset[str] = frozenset()
    globs: tuple[Glob, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exact or self.globs)

    def matches(self, rel: str) -> bool:
        return rel in self.exact or any(g.matches(rel) for g in self.globs)


def compile_allowlist(
    entries: Iterable[AllowlistEntryLike], *, root: str | os.PathLike[str] | None = None
) -> Allowlist:
    """Compile allowlist entries. A leading `./` is ignored; an absolute path
    inside `root` is made relative to it (otherwise a leading `/` anchors the
    glob to the project root, as in .gitignore)."""
    exact: set[str] = set()
    globs: list[Glob] = []
    root_prefix = os.fspath(root).rstrip("/") + "/" if root is not None else None
    for entry in entries:
        path = str(entry.path).strip()
        while path.startswith("./"):
            path = path[2:]
        if root_prefix is not None and path.startswith(root_prefix):
            path = path[len(root_prefix) :]
        if not path:
            continue
        exact.add(path.lstrip("/"))
        with contextlib.suppress(ValueError):  # not a glob: the exact comparison applies
            globs.append(compile_glob(path))
    return Allowlist(frozenset(exact), tuple(globs))
