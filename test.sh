#!/usr/bin/env bash
# Runs every test. Beyond cargo, the tests need: Debian's chromium and
# chromedriver (the web app's browser tests), and a python with the
# tracking libraries users run (segment-analytics-python, rudder-sdk-python)
# in a virtual environment under target/. Both are installed here when
# missing (apt-get as root or through sudo; pip from PyPI). A test whose
# program is missing fails, naming it.
#   ./test.sh [cargo test options]
set -euo pipefail
cd "$(dirname "$0")"
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv=target/test-python
packages=(segment-analytics-python==2.4.0 rudder-sdk-python==2.1.9)
if ! "$venv/bin/python" -c "import segment.analytics, rudderstack.analytics" 2>/dev/null; then
  echo "== installing ${packages[*]} into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
fi
export LEADSCORE_PYTHON="$PWD/$venv/bin/python"
log=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line with the totals over every test binary (doc tests included).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
