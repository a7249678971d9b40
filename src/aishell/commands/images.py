"""`aishell images [list|prune [ID...]] [--yes] [--json]`: the images aishell made, on this
engine.

Every aishell home (one `AISHELL_HOME` of one user) holds the images it runs with its
own tags, `aishell-home-<homeid>:<role>` (see `engine.images`). `list` shows every
aishell-labelled image: its ID, kind, size, creation time, which homes hold it (this
one marked) and the containers that use it. `prune` removes the aishell images that
have no tag at all and that no container (running or stopped) uses: what a home let go
(its foundation before an update, a project image before its Dockerfile changed) and
the leftovers of interrupted builds. A tagged image is never removed, so prune cannot
take anything from another home, another user, or an older aishell (`aishell:*`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aishell import output, paths, report_json
from aishell.commands._args import Parser, parser
from aishell.constants import LABEL_KIND
from aishell.engine import choice, images
from aishell.engine.client import first_line
from aishell.errors import Aborted, AishellError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.engine.client import Engine

SUBCOMMANDS = ("list", "prune")


@dataclass(frozen=True)
class Hold:
    home: str  # the home ID
    role: str  # foundation | base | ext-<hash> | proxy
    this_home: bool

    def to_json(self) -> dict[str, Any]:
        return {"home": self.home, "role": self.role, "this_home": self.this_home}


@dataclass(frozen=True)
class ImageRow:
    id: str
    kind: str | None  # the aishell.kind label
    size_bytes: int | None
    created: str | None
    tags: list[str] = field(default_factory=list)  # every tag (holds included)
    holds: list[Hold] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)  # names, running or stopped

    @property
    def other_tags(self) -> list[str]:
        """Tags that are not holds (legacy `aishell:*` names, or the user's own)."""
        return [t for t in self.tags if images.parse_hold(t) is None]

    @property
    def held_here(self) -> bool:
        return any(h.this_home for h in self.holds)

    @property
    def prunable(self) -> bool:
        return not self.tags and not self.containers

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "size_bytes": self.size_bytes,
            "created": self.created,
            "tags": list(self.tags),
            "holds": [h.to_json() for h in self.holds],
            "this_home": self.held_here,
            "containers": list(self.containers),
            "prunable": self.prunable,
        }


# --------------------------------------------------------------------------- pure


def build_rows(
    items: Sequence[Mapping[str, Any]],
    *,
    containers: Mapping[str, Sequence[str]],
    home_id: str,
) -> list[ImageRow]:
    """Rows for the inspected images: this home's first, then newest first.

    `containers`: image ID (with or without `sha256:`) -> names of containers using it."""
    by_id = {key.removeprefix("sha256:"): list(names) for key, names in containers.items()}
    rows = []
    for item in items:
        ident = images.image_id(item)
        if not ident:
            continue
        tags = images.real_tags(item)
        holds = []
        for tag in tags:
            parsed = images.parse_hold(tag)
            if parsed:
                holds.append(Hold(parsed[0], parsed[1], parsed[0] == home_id))
        size = item.get("Size")
        rows.append(
            ImageRow(
                id=ident,
                kind=images.labels_of(item).get(LABEL_KIND),
                size_bytes=int(size) if isinstance(size, int | float) and size >= 0 else None,
                created=str(item["Created"]) if item.get("Created") else None,
                tags=sorted(tags),
                holds=sorted(holds, key=lambda h: (not h.this_home, h.home, h.role)),
                containers=sorted(by_id.get(ident.removeprefix("sha256:"), [])),
            )
        )
    rows.sort(key=lambda r: r.created or "", reverse=True)
    rows.sort(key=lambda r: not r.held_here)
    return rows


def keep_reason(row: ImageRow) -> str | None:
    """Why prune keeps this image (None: it removes it)."""
    reasons = []
    mine = [h.role for h in row.holds if h.this_home]
    others = {h.home for h in row.holds if not h.this_home}
    if mine:
        reasons.append(f"held by this home ({', '.join(mine)})")
    if others:
        reasons.append(f"held by {len(others)} other aishell home{'s' if len(others) > 1 else ''}")
    if row.other_tags:
        reasons.append(f"tagged {', '.join(row.other_tags)}")
    if row.containers:
        word = "containers" if len(row.containers) > 1 else "container"
        reasons.append(f"used by {word} {', '.join(row.containers)}")
    return "; ".join(reasons) or None


@dataclass(frozen=True)
class PrunePlan:
    remove: list[ImageRow]
    kept: list[dict[str, str]]  # {id, reason}


def select(rows: Sequence[ImageRow], only: Sequence[str]) -> list[ImageRow]:
    """The rows whose ID starts with one of `only` (all of them when empty)."""
    if not only:
        return list(rows)
    picked: list[ImageRow] = []
    unknown = []
    for ident in dict.fromkeys(only):
        want = ident.removeprefix("sha256:").lower()
        matches = [r for r in rows if want and r.id.removeprefix("sha256:").startswith(want)]
        if not matches:
            unknown.append(ident)
        picked += [r for r in matches if r not in picked]
    if unknown:
        raise AishellError(
            f"no aishell image with ID {', '.join(unknown)}", hint="see 'aishell images list'"
        )
    return picked


def plan_prune(rows: Sequence[ImageRow], only: Sequence[str] = ()) -> PrunePlan:
    """Remove exactly the images without any tag and without any container (`only`:
    among the images with these IDs)."""
    remove: list[ImageRow] = []
    kept: list[dict[str, str]] = []
    for row in select(rows, only):
        reason = keep_reason(row)
        if reason is None:
            remove.append(row)
        else:
            kept.append({"id": row.id, "reason": reason})
    return PrunePlan(remove=remove, kept=kept)


def prune_json(removed: Sequence[ImageRow], kept: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    return {
        "removed": [{"id": r.id, "kind": r.kind, "size_bytes": r.size_bytes} for r in removed],
        "kept": [dict(k) for k in kept],
    }


def format_size(size: int | None) -> str:
    if size is None:
        return "N/A"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def holds_text(row: ImageRow) -> str:
    parts = []
    mine = [h.role for h in row.holds if h.this_home]
    if mine:
        parts.append(f"this home ({', '.join(mine)})")
    others = sorted({h.home for h in row.holds if not h.this_home})
    if others:
        parts.append(f"{len(others)} other home{'s' if len(others) > 1 else ''}")
    parts += row.other_tags
    return ", ".join(parts) or "-"


def render_list(rows: Sequence[ImageRow]) -> list[str]:
    body = [
        [
            images.short_id(row.id),
            row.kind or "?",
            format_size(row.size_bytes),
            (row.created or "?")[:19].replace("T", " "),
            holds_text(row),
            ", ".join(row.containers) or ("- (prunable)" if row.prunable else "-"),
        ]
        for row in rows
    ]
    return report_json.table(["ID", "KIND", "SIZE", "CREATED", "HELD BY", "USED BY"], body)


# ------------------------------------------------------------------------- engine


def collect(engine: Engine, home_id: str) -> list[ImageRow]:
    return build_rows(
        images.list_managed(engine),
        containers=images.containers_by_image(engine),
        home_id=home_id,
    )


def remove_images(
    engine: Engine, rows: Sequence[ImageRow]
) -> tuple[list[ImageRow], list[dict[str, str]]]:
    """Remove `rows` after checking once more that none got a tag meanwhile (another
    home may just have found one to reuse). Returns (removed, kept with reasons)."""
    if not rows:
        return [], []
    fresh = {
        images.image_id(item): item
        for item in images.parse_inspect_list(
            engine.capture("image", "inspect", *[r.id for r in rows]).stdout
        )
    }
    removed: list[ImageRow] = []
    kept: list[dict[str, str]] = []
    for row in rows:
        now = fresh.get(row.id)
        if now is None:
            continue  # gone already (removed with the image it was the parent of)
        tags = images.real_tags(now)
        if tags:
            kept.append({"id": row.id, "reason": f"tagged meanwhile: {', '.join(tags)}"})
            continue
        result = engine.capture("rmi", row.id)
        if result.ok:
            removed.append(row)
        else:
            reason = first_line(result.stderr) or f"exit {result.returncode}"
            kept.append({"id": row.id, "reason": f"the engine refused: {reason}"})
    return removed, kept


# ------------------------------------------------------------------------ command


def build_parser() -> Parser:
    p = parser(
        "aishell images",
        "List the images aishell made on this engine (which aishell homes hold them, which "
        "containers use them), or prune the ones nothing holds: images without any tag "
        "that no container uses. Images another home holds are never removed.",
    )
    p.add_argument("subcommand", nargs="?", default="list", metavar="list|prune")
    p.add_argument(
        "ids", nargs="*", metavar="ID", help="prune: only among these images (default: all)"
    )
    p.add_argument("--yes", "-y", action="store_true", help="prune without asking")
    p.add_argument("--json", action="store_true", help="print JSON (see docs/json-output.md)")
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_intermixed_args(list(argv))
    if ns.subcommand not in SUBCOMMANDS:
        raise UsageError(
            f"unknown images subcommand {ns.subcommand!r}",
            hint="use 'aishell images list' or 'aishell images prune'",
        )
    if ns.subcommand == "list" and ns.ids:
        raise UsageError("'images list' takes no image IDs", hint="see 'aishell images --help'")
    engine = choice.get_engine()
    home_id = paths.home_id()
    rows = collect(engine, home_id)
    if ns.subcommand == "list":
        return _list(rows, home_id, as_json=ns.json)
    return _prune(engine, rows, only=ns.ids, yes=ns.yes, as_json=ns.json)


def _list(rows: Sequence[ImageRow], home_id: str, *, as_json: bool) -> int:
    if as_json:
        report_json.emit([row.to_json() for row in rows])
        return 0
    if not rows:
        output.out("No aishell images.")
        return 0
    for line in render_list(rows):
        output.out(line)
    output.info(f"This home is {home_id} (tags {images.HOLD_PREFIX}{home_id}:<role>).")
    if any(row.prunable for row in rows):
        output.info("Remove the images nothing holds with: aishell images prune")
    return 0


def _prune(
    engine: Engine, rows: Sequence[ImageRow], *, only: Sequence[str], yes: bool, as_json: bool
) -> int:
    plan = plan_prune(rows, only)
    if plan.remove and not yes:
        output.info("aishell images that nothing holds or uses, to remove:")
        for row in plan.remove:
            output.info(
                f"  - {images.short_id(row.id)} ({row.kind or '?'}, {format_size(row.size_bytes)})"
            )
        if not sys.stdin.isatty():
            raise AishellError(
                f"not removing {len(plan.remove)} image(s) without confirmation "
                "(no terminal to ask)",
                hint="pass --yes to remove them",
            )
        if not output.ask_yes_no(f"Remove {len(plan.remove)} image(s)?"):
            raise Aborted("Aborted. No image was removed.")
    removed, refused = remove_images(engine, plan.remove)
    kept = [*plan.kept, *refused]
    if as_json:
        report_json.emit(prune_json(removed, kept))
        return 0
    for row in removed:
        output.out(
            f"Removed {images.short_id(row.id)} ({row.kind or '?'}, {format_size(row.size_bytes)})"
        )
    for item in kept:
        output.out(f"Kept {images.short_id(item['id'])} ({item['reason']})")
    if removed:
        output.out(f"Prune complete: {len(removed)} image(s) removed.")
    else:
        output.out("No aishell images to prune.")
    return 0
