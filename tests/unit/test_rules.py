"""Detector table, gitignore-style globs, allowlist and the compiled matcher."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from aishell.security.rules import (
    BUILTIN_DETECTORS,
    CUSTOM_DEFAULT_REASON,
    Detector,
    Matcher,
    Severity,
    compile_allowlist,
    compile_glob,
    custom_detectors,
    translate_glob,
)


@dataclass
class Pattern:
    glob: str
    severity: str = "medium"
    description: str | None = None


@dataclass
class Allow:
    path: str
    reason: str | None = None


MATCHER = Matcher()


def classify(rel: str) -> str | None:
    d = MATCHER.classify(rel)
    return d.id if d else None


# --------------------------------------------------------------------------- Severity


def test_severity_values_and_rank() -> None:
    assert [s.value for s in Severity] == ["high", "medium", "low"]
    assert Severity.HIGH.rank < Severity.MEDIUM.rank < Severity.LOW.rank
    assert sorted([Severity.LOW, Severity.HIGH, Severity.MEDIUM], key=lambda s: s.rank) == [
        Severity.HIGH,
        Severity.MEDIUM,
        Severity.LOW,
    ]
    assert str(Severity.HIGH) == "high"
    assert isinstance(Severity.HIGH, str)


@pytest.mark.parametrize(("text", "expected"), [("high", Severity.HIGH), (" LOW ", Severity.LOW)])
def test_severity_parse(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


@pytest.mark.parametrize("text", ["", "critical", "hi"])
def test_severity_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid severity"):
        Severity.parse(text)


# --------------------------------------------------------------------------- detectors


def test_builtin_table_ids_unique_and_complete() -> None:
    ids = [d.id for d in BUILTIN_DETECTORS]
    assert len(ids) == len(set(ids))
    assert set(ids) == {
        "env-file",
        "env-template",
        "ssh-key",
        "key-container",
        "pem-key",
        "gcp-adc",
        "terraform-state",
        "kubeconfig",
        "package-credentials",
        "tool-config",
        "rails-master-key",
        "rails-credentials",
        "secret-named",
        "db-credentials",
        "aws-credentials",
        "git-credentials",
        "gcloud-credentials",
        "gcp-service-account-key",
        "gh-hosts",
        "docker-config",
        "azure-tokens",
        "agent-credentials",
    }


DETECTOR_CASES: list[tuple[str, str | None]] = [
    # env files (medium) and templates (low)
    (".env", "env-file"),
    (".envrc", "env-file"),
    (".env.local", "env-file"),
    (".env.production", "env-file"),
    ("app/config/.env.test", "env-file"),
    (".ENV", "env-file"),
    (".env.example", "env-template"),
    (".env.sample", "env-template"),
    (".env.template", "env-template"),
    (".env.dist", "env-template"),
    ("web/.env.local.example", "env-template"),
    (".environment", None),
    ("env", None),
    ("dotenv.py", None),
    (".env-local", None),
    ("my.env", None),
    # SSH keys (high)
    ("id_rsa", "ssh-key"),
    ("id_dsa", "ssh-key"),
    ("id_ecdsa", "ssh-key"),
    ("id_ed25519", "ssh-key"),
    ("deploy/keys/ID_RSA", "ssh-key"),
    ("putty.ppk", "ssh-key"),
    ("id_rsa.pub", None),
    ("id_rsa_backup", None),
    ("ppk.txt", None),
    # key containers (high)
    ("cert.p12", "key-container"),
    ("cert.pfx", "key-container"),
    ("java/trust.jks", "key-container"),
    ("release.keystore", "key-container"),
    ("keystore.txt", None),
    ("p12", None),
    # PEM / key (medium)
    ("server.pem", "pem-key"),
    ("tls/server.key", "pem-key"),
    ("SERVER.KEY", "pem-key"),
    ("key", None),
    ("keys.json", None),
    ("server.pem.txt", None),
    ("monkey", None),
    # GCP ADC (high)
    ("application_default_credentials.json", "gcp-adc"),
    ("gcloud/application_default_credentials.json", "gcp-adc"),
    ("application_default_credentials.json.txt", None),
    # Terraform state (high)
    ("terraform.tfstate", "terraform-state"),
    ("infra/terraform.tfstate.backup", "terraform-state"),
    ("terraform.tfstate.d", "terraform-state"),
    ("main.tf", None),
    ("my.terraform.tfstate", None),
    # kubeconfig (medium)
    ("kubeconfig", "kubeconfig"),
    (".kube/config", "kubeconfig"),
    ("home/.kube/config", "kubeconfig"),
    ("home/.kube/config.bak", "kubeconfig"),
    ("home/.KUBE/config", "kubeconfig"),
    (".kube/cache/discovery.json", None),
    ("kube/config", None),
    ("x.kube/config", None),
    ("kubeconfig.yaml", None),
    ("config", None),
    # package-manager credentials (high)
    (".pypirc", "package-credentials"),
    (".netrc", "package-credentials"),
    ("home/.netrc", "package-credentials"),
    ("pypirc", None),
    ("netrc", None),
    # tool configs (medium)
    (".npmrc", "tool-config"),
    (".yarnrc.yml", "tool-config"),
    (".terraformrc", "tool-config"),
    ("credentials.tfrc.json", "tool-config"),
    (".docker/config.json", "docker-config"),
    ("home/.docker/config.json", "docker-config"),
    ("config.json", None),
    ("docker/config.json", None),
    (".yarnrc", None),
    # Rails (high)
    ("config/master.key", "rails-master-key"),
    ("master.key", "rails-master-key"),  # also a .key file: reported once, as the worse
    ("config/credentials.yml.enc", "rails-credentials"),
    ("credentials.production.yml.enc", "rails-credentials"),
    ("credentials.yml", None),
    ("my_credentials.yml.enc", None),
    # secret-named (medium)
    ("secret.txt", "secret-named"),
    ("secrets.yaml", "secret-named"),
    ("config/secrets.json", "secret-named"),
    ("vault.json", "secret-named"),
    ("token.txt", "secret-named"),
    ("apikey.txt", "secret-named"),
    ("private.asc", "secret-named"),
    ("Secrets.YML", "secret-named"),
    ("secret_santa.py", None),
    ("secrets", None),
    ("tokenizer.py", None),
    ("my.secret.txt", None),
    ("private_api.py", None),
    # DB credentials (medium)
    (".pgpass", "db-credentials"),
    (".my.cnf", "db-credentials"),
    ("config/database.yml", "db-credentials"),
    ("database.yml.example", None),
    ("my.cnf", None),
    # plain files
    ("README.md", None),
    ("src/app/main.py", None),
    ("package.json", None),
]


@pytest.mark.parametrize(("rel", "expected"), DETECTOR_CASES)
def test_builtin_detectors(rel: str, expected: str | None) -> None:
    assert classify(rel) == expected


@pytest.mark.parametrize(("rel", "expected"), DETECTOR_CASES)
def test_fast_path_never_misses(rel: str, expected: str | None) -> None:
    lname = rel.rpartition("/")[2].lower()
    if MATCHER.matches(rel, lname):
        assert MATCHER.is_candidate(rel, lname)


def test_severities_of_builtins() -> None:
    by_id = {d.id: d.severity for d in BUILTIN_DETECTORS}
    high = {k for k, v in by_id.items() if v is Severity.HIGH}
    low = {k for k, v in by_id.items() if v is Severity.LOW}
    assert high == {
        "ssh-key",
        "key-container",
        "gcp-adc",
        "terraform-state",
        "package-credentials",
        "rails-master-key",
        "rails-credentials",
        "aws-credentials",
        "git-credentials",
        "gcloud-credentials",
        "gcp-service-account-key",
        "gh-hosts",
        "docker-config",
        "azure-tokens",
        "agent-credentials",
    }
    assert low == {"env-template"}


def test_reason_texts_match_reference() -> None:
    by_id = {d.id: d.reason for d in BUILTIN_DETECTORS}
    assert by_id["env-file"] == "Environment configuration file"
    assert by_id["ssh-key"] == "SSH private key file"
    assert by_id["pem-key"] == "PEM/key file (may contain private key or certificate)"
    assert by_id["rails-master-key"] == "Rails master key (decrypts all application secrets)"


def test_overlap_reports_every_match_but_classifies_as_worst() -> None:
    ids = [d.id for d in MATCHER.matches("config/master.key")]
    assert ids == ["pem-key", "rails-master-key"]
    assert classify("config/master.key") == "rails-master-key"
    assert [d.id for d in MATCHER.matches("private.key")] == ["pem-key", "secret-named"]
    assert classify("private.key") == "pem-key"  # tie: the earlier detector wins


def test_detector_validates_its_data() -> None:
    with pytest.raises(ValueError, match="path fragment"):
        Detector("x", "xs", Severity.LOW, "r", path_contains=("config",))
    with pytest.raises(ValueError, match="lower-case"):
        Detector("x", "xs", Severity.LOW, "r", names=frozenset({"ID_RSA"}))


def test_hot_directory_in_rel_path_is_found_without_hint() -> None:
    assert MATCHER.is_candidate("a/.kube/config", "config")
    assert not MATCHER.is_candidate("a/kube/config", "config")


# --------------------------------------------------------------------------- globs


@pytest.mark.parametrize(
    ("pattern", "regex", "basename_only"),
    [
        ("*.pem", r"[^/]*\.pem", True),
        ("foo?", r"foo[^/]", True),
        ("/foo", r"foo", False),
        ("a/b", r"a/b", False),
        ("a/*.x", r"a/[^/]*\.x", False),
        ("**/a", r"(?:.*/)?a", False),
        ("a/**", r"a/.+", False),
        ("a/**/b", r"a/(?:.*/)?b", False),
        ("secrets/", r"(?:.*/)?secrets/.+", False),
        ("/secrets/", r"secrets/.+", False),
        ("**", r"[^/]*", True),
        ("/**", r".+", False),
        ("**.x", r"[^/]*\.x", True),
        ("[ab]", r"(?!/)[ab]", True),
        (r"\*", r"\*", True),
    ],
)
def test_translate_glob(pattern: str, regex: str, basename_only: bool) -> None:
    assert translate_glob(pattern) == (regex, basename_only)


GLOB_CASES: list[tuple[str, str, bool]] = [
    # no slash: base name at any depth
    ("*.pem", "a.pem", True),
    ("*.pem", "x/y/a.pem", True),
    ("*.pem", "a.pem.bak", False),
    ("*.pem", "dir.pem/file", False),  # patterns match files, not directory contents
    (".env", ".env", True),
    (".env", "sub/.env", True),
    (".env", "sub/.env.local", False),
    ("secret*", "deep/er/secret-stuff", True),
    # * does not cross /
    ("a/*.x", "a/b.x", True),
    ("a/*.x", "a/b/c.x", False),
    ("a*b", "a/b", False),
    # anchoring: leading slash or a slash in the middle
    ("/top.txt", "top.txt", True),
    ("/top.txt", "sub/top.txt", False),
    ("config/*.yml", "config/app.yml", True),
    ("config/*.yml", "sub/config/app.yml", False),
    ("config/app.yml", "config/app.yml", True),
    # **
    ("**/*.x", "a.x", True),
    ("**/*.x", "a/b/c.x", True),
    ("**/deploy/*.key", "deploy/k.key", True),
    ("**/deploy/*.key", "x/y/deploy/k.key", True),
    ("**/deploy/*.key", "x/deploy/sub/k.key", False),
    ("a/**", "a/b", True),
    ("a/**", "a/b/c/d", True),
    ("a/**", "a", False),
    ("a/**", "b/a/c", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("**", "anything/at/all", True),
    ("/**", "anything/at/all", True),
    ("**.x", "top.x", True),
    ("**.x", "deep/down.x", True),
    ("foo**bar", "fooXbar", True),
    ("foo**bar", "foo/bar", False),
    # trailing slash: everything inside a directory of that name
    ("secrets/", "secrets/a", True),
    ("secrets/", "x/secrets/a/b", True),
    ("secrets/", "secrets", False),
    ("/secrets/", "x/secrets/a", False),
    ("a/**/", "a/b/c", True),
    ("a/**/", "a/b", False),
    # ?
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file12.txt", False),
    ("a?b", "a/b", False),
    # classes
    ("file[0-9].txt", "file7.txt", True),
    ("file[0-9].txt", "filex.txt", False),
    ("file[!0-9].txt", "filex.txt", True),
    ("file[!0-9].txt", "file7.txt", False),
    ("file[^0-9].txt", "filex.txt", True),
    ("a[!x]b", "a/b", False),
    ("a[!-0]b", "a/b", False),  # a range containing "/" still never matches it
    ("[]]x", "]x", True),
    ("[!]]x", "ax", True),
    ("[!]]x", "]x", False),
    ("[a-]", "-", True),
    ("[a-]", "a", True),
    ("[ab", "[ab", True),  # unterminated class: literal
    # escapes and regex metacharacters
    (r"\*.txt", "*.txt", True),
    (r"\*.txt", "a.txt", False),
    ("a+b(c).txt", "a+b(c).txt", True),
    ("a.b", "axb", False),
    ("x$^{1}|y", "x$^{1}|y", True),
    # newline in a file name
    ("*.env", "a\nb.env", True),
    # case-sensitive by default
    ("*.PEM", "a.pem", False),
]


@pytest.mark.parametrize(("pattern", "rel", "expected"), GLOB_CASES)
def test_glob_matches(pattern: str, rel: str, expected: bool) -> None:
    assert compile_glob(pattern).matches(rel) is expected


def test_glob_ignore_case() -> None:
    assert compile_glob("*.PEM", ignore_case=True).matches("dir/A.pem")


@pytest.mark.parametrize("pattern", ["", "   ", "/", "!*.pem"])
def test_translate_glob_rejects(pattern: str) -> None:
    with pytest.raises(ValueError):
        translate_glob(pattern)


def test_translated_globs_compile() -> None:
    for pattern, _, _ in GLOB_CASES:
        re.compile(translate_glob(pattern)[0])


# --------------------------------------------------------------------------- custom patterns


def test_custom_detectors() -> None:
    detectors, notes = custom_detectors(
        [
            Pattern("*.secret", "high", "Team secret"),
            Pattern("config/*.ini", "LOW"),
            Pattern("bad", "critical"),
            Pattern("!neg", "high"),
        ]
    )
    assert notes == (
        "ignored custom pattern 'bad': invalid severity 'critical' "
        "(expected one of: high, medium, low)",
        "ignored custom pattern '!neg': negated pattern '!neg' is not supported "
        "(use the allowlist)",
    )
    first, second = detectors
    assert (first.id, first.severity, first.reason, first.label) == (
        "custom:*.secret",
        Severity.HIGH,
        "Team secret",
        "Team secret",
    )
    assert (second.severity, second.reason, second.label) == (
        Severity.LOW,
        CUSTOM_DEFAULT_REASON,
        "files matching config/*.ini",
    )


def test_matcher_with_custom_patterns() -> None:
    customs, _ = custom_detectors(
        [Pattern("*.secret", "high"), Pattern("config/*.ini"), Pattern("**/deploy/**", "low")]
    )
    m = Matcher((*BUILTIN_DETECTORS, *customs))
    assert m.name_regex is not None and m.path_regex is not None

    def ids(rel: str) -> str | None:
        d = m.classify(rel)
        return d.id if d else None

    assert ids("a/b/x.SECRET") == "custom:*.secret"
    assert ids("config/app.ini") == "custom:config/*.ini"
    assert ids("sub/config/app.ini") is None
    assert ids("x/deploy/run.sh") == "custom:**/deploy/**"
    # a built-in that is more severe wins over a custom one; ties go to built-ins
    assert ids("deploy/id_rsa") == "ssh-key"
    assert ids("deploy/.env") == "env-file"
    custom_high, _ = custom_detectors([Pattern("*.pem", "high", "Prod cert")])
    m2 = Matcher((*BUILTIN_DETECTORS, *custom_high))
    d = m2.classify("a.pem")
    assert d is not None and d.reason == "Prod cert"


def test_matcher_without_custom_patterns_has_no_regex() -> None:
    assert MATCHER.name_regex is None and MATCHER.path_regex is None


# --------------------------------------------------------------------------- allowlist


def test_allowlist_exact_and_glob() -> None:
    allow = compile_allowlist(
        [Allow("config/.env.test"), Allow("./fixtures/**"), Allow("*.pem"), Allow("")]
    )
    assert allow
    assert allow.matches("config/.env.test")
    assert not allow.matches(".env.test")
    assert allow.matches("fixtures/keys/id_rsa")
    assert allow.matches("deep/cert.pem")
    assert not allow.matches("deep/cert.PEM")  # case-sensitive
    assert not allow.matches("config/.env")


def test_allowlist_literal_path_with_glob_characters() -> None:
    allow = compile_allowlist([Allow("keys/[prod]/id_rsa"), Allow("!weird")])
    assert allow.matches("keys/[prod]/id_rsa")
    assert allow.matches("!weird")


def test_allowlist_bare_name_matches_any_depth() -> None:
    allow = compile_allowlist([Allow("id_rsa")])
    assert allow.matches("id_rsa") and allow.matches("a/b/id_rsa")


def test_allowlist_absolute_path_inside_root() -> None:
    allow = compile_allowlist([Allow("/proj/keys/id_rsa"), Allow("/top.key")], root="/proj")
    assert allow.matches("keys/id_rsa")
    assert allow.matches("top.key")
    assert not allow.matches("sub/top.key")


def test_empty_allowlist_is_falsy() -> None:
    assert not compile_allowlist([])
