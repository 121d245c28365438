#!/usr/bin/env bash
# Second README command: run the test suite. Extra arguments go to pytest.
# PostgreSQL tests use COWORK_TEST_DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster;
# they skip when none is found, unless CI=true or COWORK_INTEGRATION_REQUIRE_DB=true.
set -euo pipefail
. "$(dirname "$0")/_venv.sh" dev
. "$(dirname "$0")/_minimal_venv.sh"
# Tests run in parallel, one process per core (COWORK_TEST_WORKERS=N to choose, 0 for one
# process), unless the arguments choose themselves (-n / --numprocesses / -p no:xdist).
parallel=()
case " $* " in
    *" -n"* | *" --numprocesses"* | *"no:xdist"*) ;;
    *) if [ "${COWORK_TEST_WORKERS:-auto}" != "0" ]; then
           parallel=(-n "${COWORK_TEST_WORKERS:-auto}")
       fi ;;
esac
set +e
.venv/bin/python -m pytest "${parallel[@]}" "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$code"
