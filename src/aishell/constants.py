"""Names shared across modules."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

LABEL_MANAGED: Final = "aishell.managed"
LABEL_PROJECT: Final = "aishell.project"
LABEL_PROJECT_HASH: Final = "aishell.project.hash"
LABEL_NAME: Final = "aishell.name"
LABEL_HARNESS: Final = "aishell.harness"
LABEL_KIND: Final = "aishell.kind"
LABEL_TMUX: Final = "aishell.tmux"
LABEL_GUARD_SESSION: Final = "aishell.guard.session"  # the post-session check's session ID
LABEL_RECORD: Final = "aishell.record"  # the session record's ID (records.py)
LABEL_HOME: Final = "aishell.home"  # the aishell home (user + AISHELL_HOME) that started it

# The names user Dockerfiles build on (`FROM aishell:foundation` in ~/.aishell/Dockerfile,
# `FROM aishell:base` in a project's .aishell/Dockerfile): replaced by this home's image IDs
# at build time. aishell itself never tags them (see engine/images.py: holds).
FOUNDATION_IMAGE: Final = "aishell:foundation"
BASE_IMAGE: Final = "aishell:base"
EXTENSION_ROLE_PREFIX: Final = "ext-"
HARNESS_VOLUME_PREFIX: Final = "aishell-harness-"
# setup's `aishell-harness-<hash12>` or update's `aishell-harness-<hash12>-<stamp>-<token>`
HARNESS_VOLUME_PATTERN: Final = r"aishell-harness-[0-9a-f]{12}(?:-[0-9]{8}t[0-9]{6}-[0-9a-f]{4})?"
CONTAINER_PREFIX: Final = "aishell-"

PROJECT_CONFIG_DIRS: Final = (".aishell", ".sandbox")
CONFIG_FILE: Final = "config.yaml"
DOCKERFILE: Final = "Dockerfile"

# Environment variables the entrypoint reads: a config cannot set them.
RESERVED_ENV: Final = ("LOCAL_UID", "LOCAL_GID", "LOCAL_HOME", "LOCAL_USER")
