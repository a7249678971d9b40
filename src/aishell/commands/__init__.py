"""One module per command, each exposing `main(argv) -> int`."""
