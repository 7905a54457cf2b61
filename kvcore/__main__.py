"""`python -m kvcore` is the `edgekv` command (used by `edgekv dev` to start children)."""

from kvcore.cli import main

main()
