#!/usr/bin/env bash
# Runs every test. Beyond cargo, the web app's browser tests need Debian's
# chromium and chromedriver: installed here when missing (apt-get, as root
# or through sudo). A test whose program is missing fails, naming it.
#   ./test.sh [cargo test options]
set -euo pipefail
cd "$(dirname "$0")"
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
log=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line with the totals over every test binary (doc tests included).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
