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

FOUNDATION_IMAGE: Final = "aishell:foundation"
BASE_IMAGE: Final = "aishell:base"
EXTENSION_IMAGE_PREFIX: Final = "aishell:ext-"
HARNESS_VOLUME_PREFIX: Final = "aishell-harness-"
CONTAINER_PREFIX: Final = "aishell-"

PROJECT_CONFIG_DIRS: Final = (".aishell", ".sandbox")
CONFIG_FILE: Final = "config.yaml"
DOCKERFILE: Final = "Dockerfile"

# Environment variables the entrypoint reads: a config cannot set them.
RESERVED_ENV: Final = ("LOCAL_UID", "LOCAL_GID", "LOCAL_HOME", "LOCAL_USER")
