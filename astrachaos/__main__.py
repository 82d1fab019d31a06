"""`python -m astrachaos` entry point."""

from astrachaos.cli import main

main()
