"""Combine the normalised files into one `Config` (pure), following `schema.KEYS`.

Each merge rule also records which file (and which item of it) every piece of the
result came from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from aishell import netpolicy
from aishell.config.schema import KEYS, Config, FileConfig, Key, MergeRule
from aishell.config.values import KeyPath
from aishell.netpolicy import NetworkConfig

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
    "selects-layers": _project_replaces,  # `extends` itself: the project file's own value
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
        sub = [c._replace(value=getattr(c.value, part.name)) for c in contribs]
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
