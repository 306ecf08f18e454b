#!/usr/bin/env bash
# Installs the Debian packages v4bench builds against. Idempotent and quiet: does nothing when all are present.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git
  libcli11-dev libfmt-dev nlohmann-json3-dev libsqlite3-dev sqlite3 zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev libcpp-httplib-dev
  python3
  chromium  # headless, for the HTML report test (tests/html_report_test.cpp)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
