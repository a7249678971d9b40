"""The credential detectors of issue 11 (`security/rules.py`), one table per detector,
and the content check of GCP service-account keys through a real scan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aishell.security.rules import BUILTIN_DETECTORS, Matcher, Severity
from aishell.security.scan import scan_project
from testing.privileges import permissions_enforced

MATCHER = Matcher()
BY_ID = {d.id: d for d in BUILTIN_DETECTORS}


def yes(_d: object) -> bool:
    return True


def no(_d: object) -> bool:
    return False


CASES: list[tuple[str, str | None]] = [
    # AWS
    (".aws/credentials", "aws-credentials"),
    ("home/.aws/credentials", "aws-credentials"),
    (".AWS/Credentials", "aws-credentials"),
    (".aws/sso/cache/0123abcd.json", "aws-credentials"),
    (".aws/cli/cache/x.json", "aws-credentials"),
    ("aws/credentials", None),
    (".aws/config", None),
    ("docs/aws-credentials.md", None),
    # git credential stores
    (".git-credentials", "git-credentials"),
    ("home/.git-credentials", "git-credentials"),
    (".config/git/credentials", "git-credentials"),
    ("git-credentials.txt", None),
    (".gitconfig", None),
    # gcloud
    (".config/gcloud/credentials.db", "gcloud-credentials"),
    (".config/gcloud/access_tokens.db", "gcloud-credentials"),
    (".config/gcloud/legacy_credentials/me@example.com/adc.json", "gcloud-credentials"),
    (".config/gcloud/legacy_credentials/me@example.com/.boto", "gcloud-credentials"),
    ("backup/gcloud/credentials.db", "gcloud-credentials"),
    ("credentials.db", None),
    (".config/gcloud/configurations/config_default", None),
    # GitHub CLI
    (".config/gh/hosts.yml", "gh-hosts"),
    ("home/.config/gh/hosts.yml", "gh-hosts"),
    (".config/gh/config.yml", None),
    ("hosts.yml", None),
    # Docker
    (".docker/config.json", "docker-config"),
    ("ci/.docker/config.json", "docker-config"),
    ("docker/config.json", None),
    (".docker/daemon.json", None),
    # Azure
    (".azure/msal_token_cache.json", "azure-tokens"),
    (".azure/accessTokens.json", "azure-tokens"),
    (".azure/config", None),
    # agent logins (a project rooted at the home, or a copied config)
    (".claude/.credentials.json", "agent-credentials"),
    (".codex/auth.json", "agent-credentials"),
    (".local/share/opencode/auth.json", "agent-credentials"),
    (".gemini/oauth_creds.json", "agent-credentials"),
    (".pi/agent/auth.json", "agent-credentials"),
    (".claude/settings.json", None),
    ("src/auth.json", None),
]


@pytest.mark.parametrize(("rel", "expected"), CASES)
def test_detector(rel: str, expected: str | None) -> None:
    found = MATCHER.classify(rel, content_ok=no)
    assert (found.id if found else None) == expected


@pytest.mark.parametrize(("rel", "expected"), [c for c in CASES if c[1]])
def test_new_detectors_are_high(rel: str, expected: str) -> None:
    assert BY_ID[expected].severity is Severity.HIGH
    assert BY_ID[expected].reason


GCP_NAMES = [
    ("my-project-123-0a1b2c3d4e5f.json", True),  # the Console's default name
    ("service-account.json", True),
    ("service_account_key.json", True),
    ("serviceaccount.json", True),
    ("deploy-sa.json", True),
    ("sa-key.json", True),
    ("gcp.json", True),
    ("gcloud-ci.json", True),
    ("google-credentials.json", True),
    ("credentials.json", True),
    ("keyfile.json", True),
    ("key.json", True),
    ("ci-key.json", True),
    ("package.json", False),
    ("tsconfig.json", False),
    ("keyboard.json", False),
    ("monkey.json", False),
    ("service-account.yaml", False),
]


@pytest.mark.parametrize(("name", "candidate"), GCP_NAMES)
def test_gcp_key_names(name: str, candidate: bool) -> None:
    found = MATCHER.classify(f"deploy/{name}", content_ok=yes)
    assert (found is not None and found.id == "gcp-service-account-key") is candidate
    # the name alone is never enough: the content must say service_account
    assert MATCHER.classify(f"deploy/{name}", content_ok=no) is None


def sa_key() -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "0a1b",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n",
            "client_email": "ci@p.iam.gserviceaccount.com",
        },
        indent=2,
    )


def test_scan_confirms_gcp_keys_by_content(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "prod-sa.json").write_text(sa_key())
    (tmp_path / "deploy" / "credentials.json").write_text('{"installed": {"client_id": "x"}}')
    (tmp_path / "my-proj-0a1b2c3d4e5f.json").write_text(sa_key().replace(": ", ":"))
    result = scan_project(tmp_path, git=False)
    found = {f.path: f.detector for f in result.findings}
    assert found == {
        "deploy/prod-sa.json": "gcp-service-account-key",
        "my-proj-0a1b2c3d4e5f.json": "gcp-service-account-key",
    }


def test_scan_never_follows_a_link_for_the_content(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(sa_key())
    project = tmp_path / "p"
    project.mkdir()
    os.symlink(outside, project / "sa-key.json")
    result = scan_project(project, git=False)
    assert result.findings == ()


@permissions_enforced
def test_scan_reports_an_unreadable_candidate(tmp_path: Path) -> None:
    """A key-like name that cannot be read is reported: a missed key is worse."""
    path = tmp_path / "sa-key.json"
    path.write_text("{}")
    os.chmod(path, 0)
    try:
        found = [f.detector for f in scan_project(tmp_path, git=False).findings]
    finally:
        os.chmod(path, 0o600)
    assert found == ["gcp-service-account-key"]


def test_scan_finds_every_new_credential_file(tmp_path: Path) -> None:
    for rel, expected in CASES:
        if expected is None:
            continue
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    result = scan_project(tmp_path, git=False)
    reported = {f.detector for f in result.findings}
    assert {e for _, e in CASES if e} <= reported
    assert result.high >= sum(1 for _, e in CASES if e)
