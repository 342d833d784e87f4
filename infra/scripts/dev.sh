#!/usr/bin/env bash
# The whole service on this machine, no AWS account: the HubSpot sandbox (seeded), the
# embedded store and queues, the OAuth connect, the initial sync, then the live service.
# Flags pass through: `make dev ARGS="--companies 5000 --port 9000"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
exec cargo run --quiet -p local-stack -- "$@"
