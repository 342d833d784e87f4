#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (the Python venv with
# moto, the official HubSpot/Stripe clients, cfn-lint, pytest), then checks formatting and
# lints, and runs every Rust and Python test. `make test` and `.ci/run` call exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "python tools (.venv)"
bash infra/scripts/python-env.sh
export MOTO_SERVER="$root/.venv/bin/moto_server"
export SYNC_PYTHON="$root/.venv/bin/python"

step "headless chromium (console browser tests)"
bash infra/scripts/browser.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo build --bins (the functions as artifacts, the sandboxes, sync-server)"
cargo build --quiet --workspace --bins
# Wherever cargo builds (CARGO_TARGET_DIR included), not a guessed ./target.
target_dir="$(cargo metadata --format-version 1 --no-deps | "$SYNC_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export SYNC_BIN_DIR="$target_dir/debug"

step "cargo test"
cargo test --workspace

shopt -s nullglob
py_dirs=(infra/*/tests_py shared/*/tests_py functions/*/tests_py)
if (( ${#py_dirs[@]} )); then
  step "python checks against the sandboxes and our verifiers (official clients)"
  # One pytest run per folder: each folder's conftest.py and helpers stand alone.
  for dir in "${py_dirs[@]}"; do
    echo "--- $dir"
    (cd "$dir" && "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider .)
  done
fi

if [[ -f template.yaml ]]; then
  step "cfn-lint template.yaml"
  "$root/.venv/bin/cfn-lint" template.yaml
fi

step "all checks passed"
