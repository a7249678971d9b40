"""The filesystem walk: real trees in tmp_path, a real git repository where needed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aishell.errors import AishellError
from aishell.security.rules import Severity
from aishell.security.scan import (
    GROUP_THRESHOLD,
    PRUNED_DIRS,
    Finding,
    ScanResult,
    scan_project,
)
from testing.privileges import permissions_enforced


@dataclass
class Pattern:
    glob: str
    severity: str = "medium"
    description: str | None = None


@dataclass
class Allow:
    path: str
    reason: str | None = None


@pytest.fixture(autouse=True)
def _no_git_above_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Make sure a repository enclosing the temp dir never leaks into a test.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


def make(root: Path, *rels: str) -> Path:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    return root


def paths(result: ScanResult) -> list[str | None]:
    return [f.path for f in result.findings]


def by_path(result: ScanResult) -> dict[str | None, Finding]:
    return {f.path: f for f in result.findings}


# --------------------------------------------------------------------------- basics


def test_empty_project(tmp_path: Path) -> None:
    result = scan_project(tmp_path)
    assert result == ScanResult((), (), 0, tmp_path)
    assert (result.high, result.medium, result.low) == (0, 0, 0)


@pytest.mark.parametrize(
    ("rel", "detector", "severity"),
    [
        (".env", "env-file", Severity.MEDIUM),
        ("services/api/.env.production", "env-file", Severity.MEDIUM),
        (".env.example", "env-template", Severity.LOW),
        ("id_rsa", "ssh-key", Severity.HIGH),
        ("a/b/c/d/e/id_ed25519", "ssh-key", Severity.HIGH),
        ("certs/store.jks", "key-container", Severity.HIGH),
        ("tls.pem", "pem-key", Severity.MEDIUM),
        ("gcloud/application_default_credentials.json", "gcp-adc", Severity.HIGH),
        ("infra/terraform.tfstate", "terraform-state", Severity.HIGH),
        ("ops/.kube/config", "kubeconfig", Severity.MEDIUM),
        (".pypirc", "package-credentials", Severity.HIGH),
        ("home/.docker/config.json", "docker-config", Severity.HIGH),
        ("config/master.key", "rails-master-key", Severity.HIGH),
        ("config/credentials.yml.enc", "rails-credentials", Severity.HIGH),
        ("secrets.json", "secret-named", Severity.MEDIUM),
        ("config/database.yml", "db-credentials", Severity.MEDIUM),
    ],
)
def test_detects_top_level_and_nested(
    tmp_path: Path, rel: str, detector: str, severity: Severity
) -> None:
    make(tmp_path, rel, "README.md", "src/main.py")
    result = scan_project(tmp_path, git=False)
    assert result.findings == (
        Finding(detector, severity, result.findings[0].reason, rel, label=result.findings[0].label),
    )
    assert result.files_scanned == 3


def test_non_matching_names_are_not_reported(tmp_path: Path) -> None:
    make(tmp_path, "id_rsa.pub", "config.json", "kube/config", "env", "secret_santa.py")
    assert scan_project(tmp_path).findings == ()


def test_directories_are_not_matched(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    (tmp_path / "id_rsa").mkdir()
    make(tmp_path, ".env/readme.txt", "secrets.d/notes.txt")
    assert scan_project(tmp_path).findings == ()


def test_hidden_files_and_dirs_are_scanned(tmp_path: Path) -> None:
    make(tmp_path, ".hidden/.deeper/.netrc")
    assert paths(scan_project(tmp_path, git=False)) == [".hidden/.deeper/.netrc"]


def test_special_files_are_not_matched(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".env")
    assert scan_project(tmp_path).findings == ()


def test_paths_are_relative_posix_and_keep_case(tmp_path: Path) -> None:
    make(tmp_path, "Deploy/Keys/ID_RSA")
    assert paths(scan_project(tmp_path, git=False)) == ["Deploy/Keys/ID_RSA"]


def test_overlapping_detectors_report_a_file_once(tmp_path: Path) -> None:
    make(tmp_path, "config/master.key")
    (finding,) = scan_project(tmp_path, git=False).findings
    assert finding.detector == "rails-master-key"


# --------------------------------------------------------------------------- pruning


@pytest.mark.parametrize("pruned", sorted(PRUNED_DIRS))
def test_pruned_directories_are_not_entered(tmp_path: Path, pruned: str) -> None:
    make(tmp_path, f"{pruned}/.env", f"{pruned}/deep/id_rsa", f"pkg/{pruned}/.env", ".npmrc")
    result = scan_project(tmp_path)
    assert paths(result) == [".npmrc"]
    assert result.files_scanned == 1


def test_pruned_names_as_files_are_still_matched_and_counted(tmp_path: Path) -> None:
    make(tmp_path, "build", "vendor")  # files, not directories
    assert scan_project(tmp_path).files_scanned == 2


def test_root_itself_is_never_pruned(tmp_path: Path) -> None:
    root = make(tmp_path / "build", ".env")
    assert paths(scan_project(root)) == [".env"]


def test_vendor_env_is_pruned_by_choice(tmp_path: Path) -> None:
    # Documented trade-off: dependency directories are not scanned.
    make(tmp_path, "vendor/.env")
    assert scan_project(tmp_path).findings == ()


# --------------------------------------------------------------------------- symlinks


def test_symlink_loop_is_not_followed(tmp_path: Path) -> None:
    make(tmp_path, "a/.env")
    (tmp_path / "a" / "loop").symlink_to("..", target_is_directory=True)
    (tmp_path / "self").symlink_to(".", target_is_directory=True)
    result = scan_project(tmp_path)
    assert paths(result) == ["a/.env"]
    assert result.files_scanned == 3  # .env and the two links


def test_symlinked_directory_is_not_entered(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside", "id_rsa")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    assert scan_project(root).findings == ()


def test_symlink_to_file_is_matched_by_name(tmp_path: Path) -> None:
    make(tmp_path, "real.txt")
    (tmp_path / ".env").symlink_to("real.txt")
    (tmp_path / "id_rsa").symlink_to("/nonexistent/dangling")
    assert paths(scan_project(tmp_path, git=False)) == ["id_rsa", ".env"]


# --------------------------------------------------------------------------- errors


class FailingScandir:
    """os.scandir, except for chosen directories: fail to open, or fail mid-listing."""

    def __init__(
        self, unreadable: frozenset[str] = frozenset(), broken: frozenset[str] = frozenset()
    ) -> None:
        self.unreadable = unreadable
        self.broken = broken

    def __call__(self, path: str) -> _Listing:
        if os.path.basename(path) in self.unreadable:
            raise PermissionError(13, "Permission denied", path)
        return _Listing(path, os.path.basename(path) in self.broken)


class _Listing:
    def __init__(self, path: str, broken: bool) -> None:
        self._it = os.scandir(path)
        self._broken = broken

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return self._gen()

    def _gen(self) -> Iterator[os.DirEntry[str]]:
        for entry in sorted(self._it, key=lambda e: e.name):
            yield entry
            if self._broken:
                raise OSError(5, "Input/output error")

    def __exit__(self, *exc: object) -> None:
        self._it.close()


def test_unreadable_directory_is_skipped_with_a_note(tmp_path: Path) -> None:
    make(tmp_path, "locked/id_rsa", "locked/inner/.env", "open/.env")
    result = scan_project(tmp_path, scandir=FailingScandir(unreadable=frozenset({"locked"})))
    assert paths(result) == ["open/.env"]
    assert result.notes == ("skipped unreadable directory locked (Permission denied)",)


def test_error_while_listing_keeps_what_was_read(tmp_path: Path) -> None:
    make(tmp_path, "d/.env", "d/zzz/.npmrc", "top/.netrc")
    result = scan_project(tmp_path, git=False, scandir=FailingScandir(broken=frozenset({"d"})))
    assert paths(result) == ["top/.netrc", "d/.env"]
    assert result.notes == ("stopped reading directory d (Input/output error)",)


@permissions_enforced
def test_real_chmod_000_directory(tmp_path: Path) -> None:
    make(tmp_path, "locked/.env", "open/.env")
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        result = scan_project(tmp_path)
    finally:
        locked.chmod(0o755)
    assert paths(result) == ["open/.env"]
    assert result.notes == ("skipped unreadable directory locked (Permission denied)",)


def test_unreadable_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AishellError, match="Cannot read the project directory"):
        scan_project(tmp_path / "missing")


# --------------------------------------------------------------------------- allowlist & grouping


def test_allowlist_exact_and_glob(tmp_path: Path) -> None:
    make(tmp_path, ".env", "test/fixtures/id_rsa", "test/fixtures/a/cert.p12", "id_dsa")
    result = scan_project(
        tmp_path, git=False, allowlist=[Allow(".env", "dev only"), Allow("test/fixtures/**")]
    )
    assert paths(result) == ["id_dsa"]


def test_allowlist_absolute_path(tmp_path: Path) -> None:
    make(tmp_path, "keys/id_rsa")
    result = scan_project(tmp_path, allowlist=[Allow(str(tmp_path / "keys/id_rsa"))])
    assert result.findings == ()


def test_allowlist_applies_before_grouping(tmp_path: Path) -> None:
    envs = [".env", ".env.a", ".env.b", ".env.c", ".env.d"]
    make(tmp_path, *envs)
    assert paths(scan_project(tmp_path)) == [None]
    result = scan_project(tmp_path, allowlist=[Allow(".env.a"), Allow(".env.b")])
    assert paths(result) == [".env", ".env.c", ".env.d"]
    assert all(f.count == 1 for f in result.findings)


def test_grouping_threshold(tmp_path: Path) -> None:
    make(tmp_path, *(f"k{i}.pem" for i in range(GROUP_THRESHOLD)))
    assert len(scan_project(tmp_path).findings) == GROUP_THRESHOLD
    make(tmp_path, "a/k.pem", ".env")
    result = scan_project(tmp_path)
    assert result.findings[0].path == ".env"  # a summary sorts by its first example
    group = result.findings[1]
    assert group == Finding(
        "pem-key",
        Severity.MEDIUM,
        "PEM/key file (may contain private key or certificate)",
        None,
        count=GROUP_THRESHOLD + 1,
        examples=("a/k.pem", "k0.pem"),
        label="PEM/key files",
    )
    assert result.medium == GROUP_THRESHOLD + 2


def test_grouping_is_per_detector(tmp_path: Path) -> None:
    make(tmp_path, ".env", ".env.a", "x.pem", "y.key", "id_rsa", "id_dsa")
    assert all(f.count == 1 for f in scan_project(tmp_path, git=False).findings)


def test_sorted_by_severity_then_path(tmp_path: Path) -> None:
    make(tmp_path, ".env.example", "z/id_rsa", "b.pem", "a/.env", "a/id_dsa")
    result = scan_project(tmp_path, git=False)
    assert [(f.severity.value, f.path) for f in result.findings] == [
        ("high", "a/id_dsa"),
        ("high", "z/id_rsa"),
        ("medium", "a/.env"),
        ("medium", "b.pem"),
        ("low", ".env.example"),
    ]
    assert (result.high, result.medium, result.low) == (2, 2, 1)


# --------------------------------------------------------------------------- custom patterns


def test_custom_patterns(tmp_path: Path) -> None:
    make(
        tmp_path,
        "top.secret",
        "deep/er/x.secret",
        "config/prod.ini",
        "sub/config/prod.ini",
        "a/b/deploy/c/run.sh",
        "deployer.sh",
        "top.cfg",
        "sub/low.cfg",
    )
    result = scan_project(
        tmp_path,
        git=False,
        custom_patterns=[
            Pattern("*.secret", "high", "Team secret"),
            Pattern("config/*.ini", "medium"),
            Pattern("**/deploy/**", "low"),
            Pattern("/*.cfg", "low"),
            Pattern("bad[", "nope"),
        ],
    )
    assert [(f.path, f.detector, f.reason) for f in result.findings] == [
        ("deep/er/x.secret", "custom:*.secret", "Team secret"),
        ("top.secret", "custom:*.secret", "Team secret"),
        ("config/prod.ini", "custom:config/*.ini", "Custom pattern match"),
        ("a/b/deploy/c/run.sh", "custom:**/deploy/**", "Custom pattern match"),
        ("top.cfg", "custom:/*.cfg", "Custom pattern match"),
    ]
    assert result.notes == (
        "ignored custom pattern 'bad[': invalid severity 'nope' "
        "(expected one of: high, medium, low)",
    )


def test_custom_pattern_does_not_reach_into_pruned_dirs(tmp_path: Path) -> None:
    make(tmp_path, "node_modules/x.secret", "x.secret")
    result = scan_project(tmp_path, custom_patterns=[Pattern("**/*.secret")])
    assert paths(result) == ["x.secret"]


# --------------------------------------------------------------------------- git


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(root), *args],
        check=True,
        capture_output=True,
    )


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


@needs_git
def test_may_be_committed_marks_high_findings_not_ignored(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    make(
        tmp_path,
        ".gitignore",
        "keys/id_rsa",
        "keys/id_dsa",
        "tracked/id_ecdsa",
        "a\nb.p12",
        ".env",
        "ignored-dir/cert.pfx",
    )
    (tmp_path / ".gitignore").write_text("keys/id_rsa\nignored-dir/\n.env\ntracked/\n")
    git(tmp_path, "add", "-f", "tracked/id_ecdsa")  # tracked despite .gitignore
    result = scan_project(tmp_path)
    marks = {f.path: f.may_be_committed for f in result.findings}
    assert marks == {
        "keys/id_rsa": False,
        "keys/id_dsa": True,
        "tracked/id_ecdsa": True,
        "a\nb.p12": True,
        "ignored-dir/cert.pfx": False,
        ".env": False,  # medium: never marked
    }


@needs_git
def test_may_be_committed_on_a_group(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    make(tmp_path, "k/a.p12", "k/b.p12", "k/c.p12", "k/d.p12")
    (tmp_path / ".gitignore").write_text("k/[abc].p12\n")
    (group,) = scan_project(tmp_path).findings
    assert group.count == 4 and group.may_be_committed
    (tmp_path / ".gitignore").write_text("*.p12\n")
    (group,) = scan_project(tmp_path).findings
    assert not group.may_be_committed


@needs_git
def test_project_in_a_subdirectory_of_a_repo(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("proj/secret/\n")
    root = make(tmp_path / "proj", "secret/id_rsa", "open/id_rsa")
    assert {f.path: f.may_be_committed for f in scan_project(root).findings} == {
        "open/id_rsa": True,
        "secret/id_rsa": False,
    }


def test_not_a_repository_marks_nothing(tmp_path: Path) -> None:
    make(tmp_path, "id_rsa")
    result = scan_project(tmp_path)
    assert not result.findings[0].may_be_committed
    assert result.notes == ()


@needs_git
def test_git_disabled(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    make(tmp_path, "id_rsa")
    assert not scan_project(tmp_path, git=False).findings[0].may_be_committed


def test_git_missing_fails_soft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "id_rsa")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    result = scan_project(tmp_path)
    assert not result.findings[0].may_be_committed
    assert result.notes == ()


def test_no_git_call_without_high_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, ".env")

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("git must not run")

    monkeypatch.setattr(subprocess, "run", boom)
    assert paths(scan_project(tmp_path)) == [".env"]


def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "git"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))


def test_git_failure_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "proj", "id_rsa")
    fake_git(tmp_path, monkeypatch, "echo 'fatal: detected dubious ownership' >&2; exit 128\n")
    result = scan_project(root)
    assert not result.findings[0].may_be_committed
    assert result.notes == (
        "could not ask git which files are ignored: fatal: detected dubious ownership",
    )


def test_git_timeout_fails_soft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "proj", "id_rsa")
    fake_git(tmp_path, monkeypatch, "exec sleep 5\n")
    monkeypatch.setattr("aishell.security.scan.GIT_TIMEOUT_SECONDS", 0.2)
    result = scan_project(root)
    assert not result.findings[0].may_be_committed
