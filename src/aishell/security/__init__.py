"""Host-side security checks: sensitive-file detection and its launch gate."""
