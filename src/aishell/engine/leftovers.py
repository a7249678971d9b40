"""Collect what an aishell process that ended abruptly left on the engine.

An aishell killed (SIGKILL, a crash, a reboot) while it filled a volume leaves its
journal behind (`aishell/journal.py`): the volume it was filling, this home's hold
on it, the fill container. (The fill container itself ends on its own as soon as
its aishell is gone; see `volumes.FILL_SCRIPT`.) Every aishell command starts by
looking for such journals of its own home; for each whose process is gone, what it
made and never recorded is removed, unless the state file records it, another home
holds it, or a container uses it. Commands interrupted in a catchable way (Ctrl-C,
SIGTERM, SIGHUP) clean up themselves, before they exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aishell import journal, output, state
from aishell.engine import volumes
from aishell.errors import AishellError

if TYPE_CHECKING:
    from aishell.engine.client import Engine


def collect(engine: Engine | None = None) -> list[str]:
    """Remove what this home's abandoned journals list; the names removed."""
    if not journal.has_pending():
        return []
    removed: list[str] = []
    with journal.abandoned() as found:
        if not found:
            return []
        try:
            st = state.load(repair=True)
        except AishellError:
            st = None
        active = st.harness_volume if st else None
        recorded = list(st.volumes) if st else []
        for item in found:
            token = item.path.name.removesuffix(".jsonl")
            try:
                for binary in dict.fromkeys(e.engine for e in item.entries):
                    entries = [e for e in item.entries if e.engine == binary]
                    on = _engine_for(binary, engine)
                    done = volumes.undo(
                        on,
                        [e for e in entries if e.kind in VOLUME_KINDS],
                        active=active,
                        recorded=recorded,
                        token=token,
                    )
                    removed += done.removed + _builds(on, entries)
                    if done.remaining:
                        item.keep = True
                        output.warn(
                            "could not remove what an interrupted aishell left: "
                            f"{', '.join(e.name for e in done.remaining)} (tried again on "
                            "the next command)"
                        )
            except AishellError as exc:
                item.keep = True  # the engine did not answer: try again next time
                output.warn(
                    "could not remove what an interrupted aishell left "
                    f"({', '.join(e.name for e in item.entries)}): {exc.message}"
                )
    if removed:
        output.info(f"Removed what an interrupted aishell left: {', '.join(removed)}")
    return removed


VOLUME_KINDS = ("container", "hold", "volume")


def _builds(engine: Engine, entries: list[journal.Entry]) -> list[str]:
    """What a killed build left: the images it committed (only those no tag or other
    image holds: `images.discard_partial`) and its temporary context directory."""
    import time

    from aishell.engine import images

    made = [e.name for e in entries if e.kind == "image"]
    removed: list[str] = []
    if made:
        left = images.discard_partial(engine, made, since=time.time(), wait=0)
        removed += [images.short_id(i) for i in made if i not in left]
    for entry in entries:
        if entry.kind == "directory" and images.remove_build_dir(entry.name):
            removed.append(entry.name)
    return removed


def _engine_for(binary: str, current: Engine | None) -> Engine:
    """The engine a journal's entries were made with (the same CLI as the current
    command's when they agree)."""
    from aishell.engine.client import Engine

    if current is not None and (not binary or binary == current.binary):
        return current
    if not binary:
        from aishell.engine import choice

        return choice.get_engine()
    kind = "podman" if "podman" in binary.rsplit("/", 1)[-1] else "docker"
    return Engine(binary=binary, kind=kind)
