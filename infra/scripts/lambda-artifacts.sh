#!/usr/bin/env bash
# The deployable bootstraps, as `sam build` makes them: `cargo lambda build --release` for
# arm64 (what template.yaml deploys) and x86_64, beside a bare lambda_http hello with the
# same profile. Prints each bootstrap's size, then runs `lambda-init` on the x86_64 ones
# (this machine's architecture): init and first answer under the Runtime API emulator,
# and the cold store connection's cost to a first request (`--store`).
# Not part of `make test` (release builds take about 12 minutes per architecture here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash infra/scripts/python-env.sh
[[ -x .venv/bin/cargo-lambda ]] || .venv/bin/pip install --quiet --disable-pip-version-check cargo-lambda
export PATH="$root/.venv/bin:$PATH"
packages=(webhook-intake oauth-callback admin-api record-worker reconciler lambda-hello)
args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
target_dir="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
for arch in arm64 x86-64; do
  if [[ $arch == arm64 ]]; then rustup target add aarch64-unknown-linux-gnu >/dev/null; fi
  cargo lambda build --release "--$arch" --lambda-dir "$target_dir/lambda-$arch" "${args[@]}"
  echo "== $arch bootstraps (bytes)"
  for p in "${packages[@]}"; do
    printf '%-16s %10d\n' "$p" "$(stat -c %s "$target_dir/lambda-$arch/$p/bootstrap")"
  done
done
cargo run --quiet -p integration-tests --bin lambda-init -- --from "$target_dir/lambda-x86-64" "$@"
# What a cold store connection costs the first request (admin-api against moto).
cargo run --quiet -p integration-tests --bin lambda-init -- --from "$target_dir/lambda-x86-64" --store
