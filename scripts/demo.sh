#!/usr/bin/env bash
# First README command: show Cowork working on the embedded SQLite default (no server needed).
set -euo pipefail
. "$(dirname "$0")/_venv.sh" all
.venv/bin/cowork demo "$@"
