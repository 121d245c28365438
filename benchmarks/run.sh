#!/usr/bin/env bash
# Run the benchmark suite: `bash benchmarks/run.sh` (about 5 minutes on 2 cores at full size).
#
# Creates/updates .venv with `pip install -e '.[bench]'` (the peers eventsourcing and dbos, and
# pyinstrument, are benchmark-only extras), finds PostgreSQL (COWORK_BENCH_DATABASE_URL, else
# 127.0.0.1:5432), creates a fresh database cowork_bench_<pid>, runs every benchmark beside its
# raw baseline, drops the database, prints the table and writes bench.json.
#
#   COWORK_BENCH_SCALE=0.1 bash benchmarks/run.sh     # quick smoke run
#   bash benchmarks/run.sh profile                     # profile the publish hot path instead
#
# Other knobs: COWORK_BENCH_SECONDS, COWORK_BENCH_ROUNDS, COWORK_BENCH_BATCH_EVENTS,
# COWORK_BENCH_LATENCY_EVENTS, COWORK_BENCH_WORKFLOWS, COWORK_BENCH_REPLAY_EVENTS,
# COWORK_BENCH_JSON (output path), COWORK_BENCH_STRICT=1 (exit 1 when a target is not met).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/_venv.sh" bench

if command -v pg_isready >/dev/null 2>&1 && [ -z "${COWORK_BENCH_DATABASE_URL:-}" ]; then
    pg_isready -h 127.0.0.1 -p 5432 -q || echo "benchmarks/run.sh: no PostgreSQL answering on 127.0.0.1:5432" >&2
fi

case "${1:-}" in
    profile)
        shift
        exec .venv/bin/python -m benchmarks.profile_publish "$@"
        ;;
    "")
        exec .venv/bin/python -m benchmarks
        ;;
    *)
        echo "usage: bash benchmarks/run.sh [profile]" >&2
        exit 2
        ;;
esac
