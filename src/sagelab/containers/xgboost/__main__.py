"""`python3 -m sagelab.containers.xgboost`: train in the job's /opt/ml, as the image's `train` does."""

from sagelab.containers.xgboost.train import main

raise SystemExit(main())
