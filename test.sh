#!/usr/bin/env bash
# Runs every test. Beyond cargo, the tests need: Debian's chromium and
# chromedriver (the web app's browser tests); Debian's postgresql and a Java
# runtime (openjdk-17-jre-headless) for `leadscore sql`'s engine tests; and
# a python with the tracking libraries users run (segment-analytics-python,
# rudder-sdk-python) and the engines duckdb and pyspark, in a virtual
# environment under target/. All are installed here when missing (apt-get
# as root or through sudo; pip from PyPI). PostgreSQL is started on a
# temporary data directory under /tmp and stopped at the end. A test
# whose program is missing fails, naming it.
#   ./test.sh [cargo test options]
set -euo pipefail
cd "$(dirname "$0")"
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv=target/test-python
packages=(segment-analytics-python==2.4.0 rudder-sdk-python==2.1.9 duckdb==1.1.3 pyspark==3.5.3)
if ! "$venv/bin/python" -c "import segment.analytics, rudderstack.analytics, duckdb, pyspark" 2>/dev/null; then
  echo "== installing ${packages[*]} into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
fi
export LEADSCORE_PYTHON="$PWD/$venv/bin/python"
pg=$(mktemp -d /tmp/leadscore-test-pg.XXXXXX)
LEADSCORE_POSTGRES=$(crates/cli/tests/fixtures/sql/postgres.sh start "$pg")
export LEADSCORE_POSTGRES
trap 'crates/cli/tests/fixtures/sql/postgres.sh stop "$pg"; rm -rf "$pg"' EXIT
log=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line with the totals over every test binary (doc tests included).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
