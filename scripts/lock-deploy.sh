#!/usr/bin/env bash
# Release step: write deploy/requirements.lock, the runtime dependencies of pyproject.toml
# pinned exactly with the SHA-256 of every file PyPI serves for each pin, for CPython 3.11+
# on any platform. deploy/install.sh installs from it with --require-hashes and binary
# wheels only; tests/deploy/test_lock.py fails when it no longer matches pyproject.toml.
#
#   scripts/lock-deploy.sh            # then commit deploy/requirements.lock with the release
#
# It runs uv (https://docs.astral.sh/uv/) from a throwaway venv, so nothing is added to the
# project's own environment.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check uv
"$tools/bin/uv" pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
    --no-header --quiet -o deploy/requirements.lock.new
{
    echo "# The runtime dependencies of expiry-watchdog, pinned with their hashes."
    echo "# Made by scripts/lock-deploy.sh; installed by deploy/install.sh (--require-hashes)."
    cat deploy/requirements.lock.new
} > deploy/requirements.lock
rm deploy/requirements.lock.new
echo "wrote deploy/requirements.lock ($(grep -c '==' deploy/requirements.lock) pins)"
