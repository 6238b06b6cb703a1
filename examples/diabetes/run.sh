#!/usr/bin/env bash
# Put the example's data and code into the local object store, then run the pipeline.
# Extra arguments go to `sagelab run`, e.g. ./run.sh --param MseThreshold=2000
set -euo pipefail
cd "$(dirname "$0")"
sagelab s3 cp data/diabetes.csv s3://sagelab-example/diabetes/raw/diabetes.csv
sagelab s3 cp code s3://sagelab-example/diabetes/code --recursive
tar -czf - -C code train.py | sagelab s3 cp - s3://sagelab-example/diabetes/code/sourcedir.tar.gz
sagelab run pipeline.json "$@"
