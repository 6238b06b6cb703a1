"""`python -m sagelab.cli`: the sagelab command (as `python -X importtime -m sagelab.cli ...` profiles it)."""

from sagelab.cli import main

main()
