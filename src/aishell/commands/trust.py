"""`aishell trust [--yes]`: approve the project's aishell config (`.aishell/`).

Shows what would be approved (a diff against the last approval; for a first
approval, the whole content), then asks on a terminal, or approves with `--yes`.
A config that does not load is not approved: fix it first. See `aishell.trust`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aishell import config as config_mod
from aishell import output, paths, report_json, trust
from aishell.commands._args import Parser, parser
from aishell.errors import Aborted, AishellError

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> Parser:
    p = parser(
        "aishell trust",
        "Approve the project's aishell config (.aishell/ or .sandbox/: config.yaml, "
        "Dockerfile and every file beside them). A launch uses it only once you approved "
        "its exact content; this shows what changed since your last approval and asks.",
    )
    p.add_argument(
        "--yes", "-y", action="store_true", help="approve without asking (it is still shown)"
    )
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    home = paths.aishell_home()
    project = report_json.current_project()
    config_dir = config_mod.find_project_config_dir(Path(project.root), aishell_home=home)
    st = trust.status(project, config_dir)
    if st.snapshot is None or st.config_dir is None or not st.snapshot.takes_effect:
        output.info(
            f"Nothing to approve: {project.root} has no .aishell/config.yaml or "
            ".aishell/Dockerfile."
        )
        return 0
    if st.state == "approved" and st.record is not None:
        output.info(
            f"The aishell config of {project.root} ({st.config_dir.name}/) is approved "
            f"(since {st.record.approved_at}); nothing changed."
        )
        return 0
    # Never approve what would not load: the launch would fail on it anyway.
    config_mod.load_config(
        aishell_home=home,
        project_root=Path(project.root),
        expansion=config_mod.Expansion.from_host(),
        read_project=st.snapshot.reader(st.config_dir),
    )
    old = trust.approved_snapshot(project) if st.state == "changed" else None
    output.info(output.style(trust.headline(st) + f" ({project.root}):", "1"))
    trust.show(trust.diff_lines(old, st.snapshot))
    if not ns.yes:
        if not output.interactive_terminal():
            raise AishellError(
                "no terminal to ask whether to approve it",
                hint="review the change above and run 'aishell trust --yes' to approve it",
            )
        if not output.ask_yes_no("Trust this configuration?"):
            raise Aborted("Aborted.")
    record = trust.approve(project, st.snapshot)
    output.info(f"Approved the aishell config of {project.root} ({record.approved_at}).")
    return 0
