"""`python -m edgekv` is the `edgekv` command (used by `edgekv dev` to start children)."""

from edgekv import main

main()
