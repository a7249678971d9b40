"""The JSON shapes documented in docs/json-output.md, and the check that a value has one.

A shape is a type, a tuple of types, a nested dict (exact keys), or a one-element
list (every item has that shape).
"""

from __future__ import annotations

from typing import Any

NULLABLE_STR = (str, type(None))


NULLABLE_BOOL = (bool, type(None))

PS_SHAPE = [
    {
        "name": NULLABLE_STR,
        "container": str,
        "status": str,
        "state": str,
        "created": str,
        "harness": NULLABLE_STR,
        "pre_start": str,
        "network": str,
        "project": (str, type(None)),
    }
]


VOLUMES_SHAPE = [
    {
        "name": str,
        "status": str,
        "size": NULLABLE_STR,
        "size_bytes": (int, type(None)),
        "harnesses": (list, type(None)),
        "versions": dict,
        "in_use_by": [str],
        "labelled": bool,
        "made_by": (dict, type(None)),
        "held_by": [{"user": str, "uid": (int, type(None)), "home": str, "this_home": bool}],
    }
]


PRUNE_SHAPE = {"removed": [str], "skipped": [{"name": str, "reason": str}]}


TRUST_SHAPE = {
    "state": NULLABLE_STR,
    "config_dir": NULLABLE_STR,
    "digest": NULLABLE_STR,
    "approved_digest": NULLABLE_STR,
    "approved_at": NULLABLE_STR,
    "error": NULLABLE_STR,
}
CHECK_SHAPE = {
    "trust": TRUST_SHAPE,
    "passed": bool,
    "summary": {"ok": int, "warn": int, "fail": int},
    "checks": [dict],
    "sensitive_files": {
        "enabled": bool,
        "total": int,
        "high": int,
        "medium": int,
        "low": int,
        "findings": [
            {
                "path": NULLABLE_STR,
                "detector": str,
                "severity": str,
                "reason": str,
                "count": int,
                "examples": [str],
                "may_be_committed": bool,
            }
        ],
    },
    "host_files": {
        "git_internals": str,
        "pending": [
            {"path": str, "change": str, "why": str, "detail": str, "kind": str, "diff": bool}
        ],
        "repositories": [{"path": str, "runs": [str]}],
        "artifacts": [{"path": str, "what": str}],
        "redirect": NULLABLE_STR,
    },
}

GUARD_SHAPE = {
    "project": str,
    "pending": [{"path": str, "change": str, "why": str, "detail": str, "kind": str, "diff": bool}],
}


TIER = {
    "tag": str,
    "held": NULLABLE_BOOL,
    "exists": NULLABLE_BOOL,
    "id": NULLABLE_STR,
    "current": NULLABLE_BOOL,
}


INFO_SHAPE = {
    "aishell_version": str,
    "project": {
        "root": str,
        "canonical": str,
        "hash": str,
        "container_prefix": str,
        "extension_tag": str,
    },
    "engine": {
        "cli": NULLABLE_STR,
        "kind": NULLABLE_STR,
        "answering": bool,
        "server_version": NULLABLE_STR,
        "error": NULLABLE_STR,
    },
    "images": {
        "known": bool,
        "home_id": str,
        "foundation": TIER,
        "base": {**TIER, "custom": bool, "dockerfile": NULLABLE_STR},
        "extension": {**TIER, "configured": bool, "dockerfile": NULLABLE_STR},
        "run_image": str,
        "note": NULLABLE_STR,
    },
    "harness_volume": {"name": NULLABLE_STR, "exists": NULLABLE_BOOL, "ready": NULLABLE_BOOL},
    "harnesses": dict,
    "gitleaks": {"installed": bool, "last_scan": NULLABLE_STR},
    "files": {
        "aishell_home": str,
        "state_file": str,
        "state_found": bool,
        "state_error": NULLABLE_STR,
        "build_time": NULLABLE_STR,
        "config": [{"scope": str, "path": str, "exists": bool, "error": NULLABLE_STR}],
        "config_in_effect": [str],
        "config_error": NULLABLE_STR,
    },
    "network": (dict, type(None)),
    "trust": TRUST_SHAPE,
}


HARNESS_ENTRY = {
    "label": str,
    "harness": bool,
    "enabled": bool,
    "pin": NULLABLE_STR,
    "version": NULLABLE_STR,
    "config_paths": [{"path": str, "kind": str, "exists": bool, "source": str, "shared": bool}],
}


def assert_shape(value: Any, shape: Any, where: str = "$") -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, sub in shape.items():
            assert_shape(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            assert_shape(item, shape[0], f"{where}[{i}]")
    else:
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape}"
        if shape is int or (isinstance(shape, tuple) and int in shape):
            assert not isinstance(value, bool), f"{where}: bool where int expected"


def check_entry_ok(entry: dict[str, Any]) -> None:
    assert set(entry) <= {"section", "status", "label", "detail"}
    assert {"section", "status", "label"} <= set(entry)
    assert entry["status"] in ("ok", "warn", "fail")


NULLABLE_INT = (int, type(None))
NULLABLE_NUMBER = (int, float, type(None))

FILE_CHANGE = {
    "path": str,
    "change": str,
    "lines_added": NULLABLE_INT,
    "lines_deleted": NULLABLE_INT,
}

# `aishell run --json`: the result envelope (the last JSON document on stdout)
ENVELOPE_SHAPE = {
    "version": int,
    "session": str,
    "agent": {"name": str, "version": NULLABLE_STR},
    "project": str,
    "worktree": NULLABLE_STR,
    "branch": NULLABLE_STR,
    "started": str,
    "ended": str,
    "duration_seconds": (int, float),
    "exit_status": NULLABLE_INT,
    "ended_by": str,
    "ok": bool,
    "commits": [{"id": str, "subject": str}],
    "files": [FILE_CHANGE],
    "changes_source": str,
    "changes_truncated": bool,
    "network": {"policy": str, "denied_requests": NULLABLE_INT},
    "notices": [dict],
    "record": str,
}

# `aishell sessions --json`
SESSIONS_SHAPE = {
    "version": int,
    "sessions": [
        {
            "session": str,
            "kind": str,
            "agent": NULLABLE_STR,
            "agent_version": NULLABLE_STR,
            "project": str,
            "worktree": NULLABLE_STR,
            "branch": NULLABLE_STR,
            "container": NULLABLE_STR,
            "state": str,
            "started": str,
            "ended": NULLABLE_STR,
            "duration_seconds": NULLABLE_NUMBER,
            "exit_status": NULLABLE_INT,
            "ended_by": NULLABLE_STR,
            "commits": int,
            "files_changed": int,
            "network_policy": NULLABLE_STR,
            "denied_requests": NULLABLE_INT,
            "notices": int,
            "record": str,
        }
    ],
}
