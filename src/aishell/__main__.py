from __future__ import annotations

from aishell.cli import main

raise SystemExit(main())
