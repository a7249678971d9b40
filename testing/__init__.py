"""Helpers for aishell's tests (not part of the package)."""
