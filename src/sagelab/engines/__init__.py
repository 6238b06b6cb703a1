"""Engines run a parsed pipeline definition: `local` on this machine, `sagemaker` on AWS."""
