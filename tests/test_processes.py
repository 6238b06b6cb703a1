"""How sagelab weighs a process tree's memory (a serverless variant's MemorySizeInMB), on real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagelab.processes import descendants, tree_memory_mb

HOLD = """
import subprocess, sys
held = bytearray(int(sys.argv[1]) * 2**20)  # zero-filled pages, written so they are resident
for offset in range(0, len(held), 4096):
    held[offset] = 1
if len(sys.argv) > 2:
    subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[3]])
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="only where /proc tells a process's memory (Linux)")
def test_a_trees_memory_counts_the_process_and_its_descendants() -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD, "150", HOLD, "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
            [child] = descendants(holder.pid)
            for _ in range(100):  # until the child holds its 100 MB too
                if (tree_memory_mb(child) or 0) >= 100:
                    break
                time.sleep(0.05)
            assert 100 <= (tree_memory_mb(child) or 0) < 150
            assert 250 <= (tree_memory_mb(holder.pid) or 0) < 400
        finally:
            holder.kill()  # the child ends when its stdin, this test's pipe, closes
    assert tree_memory_mb(holder.pid) is None  # gone: nothing to weigh
