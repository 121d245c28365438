# Sourced by scripts/test.sh: .venv-minimal holds this checkout installed with no extras (no
# psycopg, no click or rich), for the test that `import cowork` works without them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv-minimal/bin/python ]; then
    python3 -m venv .venv-minimal
fi
minimal_stamp=".venv-minimal/.cowork-installed"
if [ ! -f "$minimal_stamp" ] || [ pyproject.toml -nt "$minimal_stamp" ]; then
    .venv-minimal/bin/python -m pip install --quiet --disable-pip-version-check -e . 2>&1 \
        | grep -v '^WARNING: Location' || true
    .venv-minimal/bin/python -c "import cowork"
    touch "$minimal_stamp"
fi
export COWORK_MINIMAL_PYTHON="$PWD/.venv-minimal/bin/python"
