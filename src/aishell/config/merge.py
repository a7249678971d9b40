"""Combine the normalised files into one `Config` (pure), following `schema.KEYS`.

`merge` gives the result a launch uses; `origins` gives the same values as JSON-able
data, each with the file and line it came from (for `aishell config [--json]`). Both
run the one implementation of each merge rule, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from aishell import netpolicy
from aishell.config.schema import KEYS, Config, FileConfig, Key, MergeRule
from aishell.netpolicy import NetworkConfig
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from aishell.config.values import KeyPath

Role = Literal["global", "project"]


class _Contribution(NamedTuple):
    """What one file says about one key (only files that contain the key contribute)."""

    role: Role
    file: FileConfig
    value: Any


class _Pick(NamedTuple):
    """Where one piece of a merged value came from."""

    file: FileConfig
    item: int | None  # the item's position in that file's value; None: the whole value
    name: str | None = None  # the entry's name, for the map rules


class _Merged(NamedTuple):
    value: Any
    picks: list[_Pick] | None  # None: no file set it, the value is the default


_Result = tuple[Any, list[_Pick]] | None  # None: nothing to merge, use the default


def _concatenate(contribs: Sequence[_Contribution]) -> _Result:
    items: list[Any] = []
    picks: list[_Pick] = []
    for c in contribs:
        for i, item in enumerate(c.value):
            items.append(item)
            picks.append(_Pick(c.file, i))
    return tuple(items), picks


def _map_merge(contribs: Sequence[_Contribution]) -> _Result:
    # Entries are NamedTuples whose first field is the name. Replacing a dict value
    # keeps the name's first position.
    entries: dict[Any, tuple[Any, _Pick]] = {}
    for c in contribs:
        for i, entry in enumerate(c.value):
            entries[entry[0]] = (entry, _Pick(c.file, i, entry[0]))
    return tuple(e for e, _ in entries.values()), [p for _, p in entries.values()]


def _map_concatenate(contribs: Sequence[_Contribution]) -> _Result:
    merged: dict[str, tuple[Any, ...]] = {}
    picks: list[_Pick] = []
    for c in contribs:
        for i, (name, items) in enumerate(c.value):
            merged[name] = merged.get(name, ()) + items
            picks.append(_Pick(c.file, i, name))
    return MappingProxyType(merged), picks


def _project_wins(contribs: Sequence[_Contribution]) -> _Result:
    for c in reversed(contribs):
        if c.value is not None:
            return c.value, [_Pick(c.file, None)]
    return None


def _project_replaces(contribs: Sequence[_Contribution]) -> _Result:
    last = contribs[-1]
    return last.value, [_Pick(last.file, None)]


def _global_only(contribs: Sequence[_Contribution]) -> _Result:
    value = contribs[-1].value
    file = contribs[-1].file
    if isinstance(value, tuple):
        return value, [_Pick(file, i) for i in range(len(value))]
    return value, [_Pick(file, None)]


def _network(contribs: Sequence[_Contribution]) -> _Result:
    """The project may only tighten (see `netpolicy.merge`)."""
    g = next((c.value for c in contribs if c.role == "global"), None)
    p = next((c.value for c in contribs if c.role == "project"), None)
    ceiling = None
    if g is not None:
        ceiling = NetworkConfig(g.mode or "open", g.allow or (), g.presets or ())
    if p is None:
        value = netpolicy.merge(ceiling, None, None, None)
    else:
        value = netpolicy.merge(ceiling, p.mode, p.allow, p.presets)
    return value, [_Pick(c.file, None) for c in contribs]


_RULES: Mapping[MergeRule, Callable[[Sequence[_Contribution]], _Result]] = {
    "selects-layers": _project_replaces,  # for `origins`: the project file's own value
    "concatenate": _concatenate,
    "map-merge": _map_merge,
    "map-concatenate": _map_concatenate,
    "project-wins": _project_wins,
    "project-replaces": _project_replaces,
    "global-only": _global_only,
    "network-special": _network,
}


def _contributions(
    key: Key, global_part: FileConfig | None, project_part: FileConfig | None
) -> list[_Contribution]:
    files: tuple[tuple[Role, FileConfig | None], ...]
    if key.merge == "global-only":
        files = (("global", global_part),)
    elif key.merge == "selects-layers":
        files = (("project", project_part),)
    elif key.merge == "network-special":  # `extends: none` does not lift the global policy
        files = (("global", global_part), ("project", project_part))
    else:
        inherit = project_part is None or project_part.extends == "global"
        files = (("global", global_part if inherit else None), ("project", project_part))
    return [
        _Contribution(role, f, getattr(f, key.name))
        for role, f in files
        if f is not None and key.name in f.keys
    ]


def _combine(rule: MergeRule, contribs: Sequence[_Contribution], default: Any) -> _Merged:
    result = _RULES[rule](contribs) if contribs else None
    return _Merged(default, None) if result is None else _Merged(*result)


def _merge_key(
    key: Key, global_part: FileConfig | None, project_part: FileConfig | None
) -> tuple[Any, dict[KeyPath, tuple[MergeRule, _Merged]]]:
    """The merged value of `key`, and by key path (the key, or each of its parts) the
    rule and the merged piece with its picks."""
    contribs = _contributions(key, global_part, project_part)
    if key.merge != "per-part":
        merged = _combine(key.merge, contribs, key.default)
        return merged.value, {(key.name,): (key.merge, merged)}
    pieces: dict[KeyPath, tuple[MergeRule, _Merged]] = {}
    for part in key.parts:
        # A part is set when not null and not empty: `detection: {enabled: false}`
        # says nothing about `allowlist`, and an empty list adds nothing to merge.
        values = ((c, getattr(c.value, part.name)) for c in contribs)
        sub = [c._replace(value=v) for c, v in values if v is not None and v != ()]
        pieces[(key.name, part.name)] = (part.merge, _combine(part.merge, sub, part.default))
    value = key.default._replace(**{str(kp[-1]): m.value for kp, (_, m) in pieces.items()})
    return value, pieces


def merge(global_part: FileConfig | None, project_part: FileConfig | None) -> Config:
    """Combine the normalised files (either may be None). Pure."""
    fields = {
        key.name: _merge_key(key, global_part, project_part)[0]
        for key in KEYS
        if key.merge != "selects-layers"
    }
    sources = tuple(p.path for p in (global_part, project_part) if p is not None)
    return Config(sources=sources, **fields)


# ------------------------------------------------------------------ origins


def origins(
    global_part: FileConfig | None, project_part: FileConfig | None
) -> dict[str, dict[str, Any]]:
    """Every key's effective value, as JSON-able data, with where it came from. Pure.

    The result maps each top-level key (each part of `detection` separately, as
    `detection.enabled`, `detection.custom_patterns`, `detection.allowlist`) to either

    - `{"value": V, "origin": "default"}` when no file sets it, or
    - `{"value": V, "origins": [{"file": PATH, "line": N}, ...]}`: for a list value
      (mounts, ports, docker_args, allowlist, ca_certificates) one origin per item,
      in the same order; for a mapping value (env, custom_patterns, harness_args)
      one per entry a file contributed, each with `"key": NAME` (a harness's
      arguments concatenated from both files have two); for a single value the file
      that decided it (`network`: every file that has the key). `line` is the line
      of the item, or of the key for a single value; null when the file was not
      read from YAML text. A key a file contains counts as set even when empty
      (`mounts: []` gives `"origins": []`, `pre_start:` the file that cleared it);
      a part of `detection` counts only when it is not null or empty.

    V is the merged value as `merge` computes it: records become objects (`mounts`:
    `{source, target, readonly, origin}`), `env` is `{NAME: value or null}`,
    `custom_patterns` `{GLOB: {severity, description}}`, `harness_args`
    `{HARNESS: [args]}`, `network` `{mode, allow, presets}`. `extends` is the
    project file's own value.
    """
    result: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        _, pieces = _merge_key(key, global_part, project_part)
        for kpath, (rule, merged) in pieces.items():
            name = ".".join(str(p) for p in kpath)
            value = _json_value(rule, merged.value)
            if merged.picks is None:
                result[name] = {"value": value, "origin": "default"}
            else:
                named = rule in ("map-merge", "map-concatenate")
                result[name] = {
                    "value": value,
                    "origins": [_origin(kpath, pick, named=named) for pick in merged.picks],
                }
    return result


def _origin(base: KeyPath, pick: _Pick, *, named: bool) -> dict[str, Any]:
    lines = pick.file.lines
    if pick.item is None:
        line = lines.line(base, at_key=True)
    elif pick.name is not None and (*base, pick.name) in lines.keys:
        line = lines.keys[(*base, pick.name)]  # a mapping entry (`env: {A: 1}`)
    else:
        line = lines.line((*base, pick.item))  # a list item, or the string it was split from
    origin: dict[str, Any] = {"file": pick.file.path, "line": line}
    if named:
        origin["key"] = pick.name
    return origin


def _json_value(rule: MergeRule, value: Any) -> Any:
    if rule == "map-merge":  # NamedTuples named by their first field
        out: dict[str, Any] = {}
        for entry in value:
            fields = _plain(entry)
            name = fields.pop(entry._fields[0])
            out[name] = next(iter(fields.values())) if len(fields) == 1 else fields
        return out
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
