# Sourced by the scripts in this folder: make .venv (once) and install sagelab with EXTRAS into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "sagelab needs Python 3.10 or newer; set PYTHON=/path/to/python3.x" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${EXTRAS}]"
# An editable install has no bytecode yet; compile it as a regular install would.
.venv/bin/python -m compileall -q src/sagelab >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
