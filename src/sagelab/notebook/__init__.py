"""The notebook front end: `%load_ext sagelab`'s magics and the plotting helpers for large data.

Imports Spark (`sagelab.spark`) and the Python API lazily, so a kernel pays for them on first use.
"""
