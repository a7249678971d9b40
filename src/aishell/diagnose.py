"""Reading the output of a failed build or install for its real cause. Pure.

A failed `docker build` or `npm install` prints pages; the user needs the one line
that says what went wrong and what to do about it: an untrusted TLS certificate (a
network that inspects TLS: the fix is `ca_certificates`), a version npm does not have,
a base image that could not be pulled. Each function takes the captured output (and
what aishell knows about the step) and returns the diagnosis, or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aishell.tuples import NamedTuple

# What curl, OpenSSL, Node/npm, Python, git, apt (gnutls) and Go (the engine, pulling)
# print when a certificate chain is not trusted.
_TLS = re.compile(
    r"SSL certificate problem"
    r"|certificate verify failed"
    r"|unable to get local issuer certificate"
    r"|self[- ]signed certificate in certificate chain"
    r"|SELF_SIGNED_CERT_IN_CHAIN"
    r"|UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    r"|UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    r"|CERT_UNTRUSTED"
    r"|x509: certificate signed by unknown authority"
    r"|tls: failed to verify certificate"
    r"|server certificate verification failed"
    r"|The certificate issuer is unknown"
    r"|curl: \(60\)",
    re.IGNORECASE,
)

# Colour codes. Docker's classic builder colours a step's stderr, even in the middle of
# a line where its output arrived in two pieces ("\x1b[91mc\x1b[0m\x1b[91murl: (60) ...").
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(line: str) -> str:
    """`line` without colour codes."""
    return _ANSI.sub("", line) if "\x1b" in line else line


CA_EXAMPLE = "ca_certificates: [/usr/local/share/ca-certificates/corp-root.crt]"


class Diagnosis(NamedTuple):
    cause: str  # what went wrong, for the Error line
    hint: str  # what to do next


def tls_failure(lines: Iterable[str]) -> Diagnosis | None:
    """A certificate that was not trusted: the network inspects TLS (a company proxy)
    and its CA must be added to the image (config key `ca_certificates`)."""
    for line in lines:
        if _TLS.search(plain(line)):
            said = _strip_prefixes(line)
            return Diagnosis(
                cause=f"a TLS certificate was not trusted ({said[:200]})",
                hint="your network inspects TLS (e.g. a company proxy): add its CA "
                "certificates to ~/.aishell/config.yaml, e.g. "
                f"'{CA_EXAMPLE}' (PEM files), then run the command again",
            )
    return None


_NPM_LOG = re.compile(r"A complete log of this run can be found in|/\.npm/_logs/", re.IGNORECASE)
_ETARGET = re.compile(r"No matching version found for (\S+?)@(\S+?)\.?$", re.IGNORECASE)
_E404 = re.compile(r"'(@?[^@\s']+)@[^']*' is not in (?:this|the npm) registry", re.IGNORECASE)


def without_npm_log_lines(lines: Iterable[str]) -> list[str]:
    """npm's output without its pointer to a debug log: that log is inside the helper
    container, which is gone by the time anyone reads the message."""
    return [line for line in lines if not _NPM_LOG.search(line)]


def npm_failure(lines: Sequence[str]) -> Diagnosis | None:
    """An install that failed because npm has no such version or package."""
    for line in lines:
        text = _strip_npm(line)
        match = _ETARGET.search(text)
        if match:
            package, version = match.group(1), match.group(2)
            return Diagnosis(
                cause=f"npm has no version {version} of {package}",
                hint=f"pick a published version (list them with 'aishell exec npm view "
                f"{package} versions'), or leave out '={version}' for the latest",
            )
        match = _E404.search(text)
        if match:
            return Diagnosis(
                cause=f"npm has no package {match.group(1)}",
                hint="check the package name (or your npm registry)",
            )
    return tls_failure(lines)


def _strip_npm(line: str) -> str:
    return re.sub(r"^npm (?:error|ERR!)\s*(?:code \S+\s*)?", "", plain(line).strip())


def _strip_prefixes(line: str) -> str:
    line = plain(line).strip()
    for prefix in ("npm error ", "npm ERR! ", "E: ", "W: ", "Err:", "error: ", "fatal: "):
        if line.startswith(prefix):
            line = line[len(prefix) :].strip()
    return line


# A base image that could not be pulled: what Docker's classic builder, BuildKit and
# Podman/Buildah print then.
_PULL = re.compile(
    r"pull access denied"
    r"|manifest unknown"
    r"|manifest for \S+ not found"
    r"|repository does not exist"
    r"|no such host"
    r"|failed to resolve"
    r"|initializing source"
    r"|error pulling image"
    r"|unable to pull"
    r"|requested access to the resource is denied"
    r"|dial tcp"
    r"|connection refused"
    r"|i/o timeout"
    r"|TLS handshake timeout",
    re.IGNORECASE,
)
_FROM = re.compile(r":\s*FROM\s", re.IGNORECASE)


def pull_failure(failed_step: str | None, lines: Iterable[str]) -> bool:
    """The build failed while getting its base image: its failing step (the last step
    header the build printed; None when it failed before the first) is the FROM
    step, and the output says why a pull fails. A RUN step that fails, however many
    'not found' and 'debian' its output holds, is not a pull failure."""
    if failed_step is not None and not _FROM.search(failed_step):
        return False
    return any(_PULL.search(plain(line)) for line in lines)
