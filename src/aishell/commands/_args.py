"""argparse that reports usage errors as one `Error:` line (exit 2)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from aishell.errors import UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def parser(prog: str, description: str) -> Parser:
    return Parser(prog=prog, description=description, allow_abbrev=False)
