"""Fixed kill points for fault-injection tests: `SAGELAB_CRASH_AT=POINT` or `POINT:STEP` kills the engine there.

Points: `staging` (a step's inputs half copied), `step-running`, `publishing` (its outputs half
copied), `before-record` (the step done, its result not recorded: a registered model, published
outputs), `after-record`.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str, step: str = "") -> None:
    """Die here, as a power cut would, when SAGELAB_CRASH_AT names this point, or `point:step`."""
    if os.environ.get("SAGELAB_CRASH_AT") in (name, f"{name}:{step}"):
        os.kill(os.getpid(), signal.SIGKILL)
