# Sourced by the other scripts: make sure .venv exists and holds this checkout's package.
# Usage: . scripts/_venv.sh [extras]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.cowork-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -e ".${extras:+[$extras]}" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import cowork" # fail here, clearly, if the install did not work
    touch "$stamp"
fi
