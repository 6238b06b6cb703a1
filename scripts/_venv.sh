# Sourced by the scripts in this folder: make .venv (once) and install sagelab with EXTRAS into it.
# pip runs when .venv is new or pyproject.toml changed (a stamp in .venv records what was installed);
# otherwise the editable install is already current and setup takes no time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "sagelab needs Python 3.10 or newer; $PYTHON is $("$PYTHON" --version 2>&1 || echo missing). Set PYTHON=/path/to/python3.x" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "sagelab: creating .venv with $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
    "$PYTHON" -m venv .venv || {
        echo "sagelab: $PYTHON cannot make a virtual environment; on Debian or Ubuntu: sudo apt-get install python3-venv" >&2
        rm -rf .venv
        exit 1
    }
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
stamp=".venv/.sagelab-installed-${EXTRAS}"
wanted="$(.venv/bin/python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "sagelab: installing sagelab[${EXTRAS}] and what it needs with pip (the first time takes a minute or more)"
    rm -f "$stamp"
    # pip's own progress: a bar per download on a terminal, a line per package elsewhere (CI logs).
    if [ -t 1 ]; then
        .venv/bin/python -m pip install --disable-pip-version-check -e ".[${EXTRAS}]"
    else
        .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -e ".[${EXTRAS}]" \
            | { grep -v --line-buffered '^Requirement already satisfied' || true; }
    fi
    # An editable install has no bytecode yet; compile it as a regular install would.
    .venv/bin/python -m compileall -q src/sagelab >/dev/null
    echo "$wanted" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
