#!/usr/bin/env bash
# Debian's headless Chromium and its ChromeDriver, for the console's browser tests:
# installed with apt-get when missing (as root, or through sudo).
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
echo "browser: installing chromium and chromium-driver" >&2
sudo_if_needed=()
if [[ "$(id -u)" != 0 ]]; then
  sudo_if_needed=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
install() { "${sudo_if_needed[@]}" apt-get install -y -qq chromium chromium-driver >&2; }
# The package lists may be stale on a fresh machine: refresh them only when needed.
install || { "${sudo_if_needed[@]}" apt-get update -qq >&2 && install; }
