"""`python3 -m sagelab.containers.xgboost`: train in the job's /opt/ml, as the image's `train` does."""

import sys

# xgboost imports scikit-learn whenever it is installed (for its sklearn API), which the algorithm
# never uses: not importing it saves about 0.8 s of every job's start (a tuning job starts many).
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from sagelab.containers.xgboost.train import main  # noqa: E402

raise SystemExit(main())
