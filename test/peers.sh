#!/bin/bash
# Runs the peer smoke tests of ../shared/peers (kcat, confluent-kafka + kafka-python, kafkajs)
# against a broker: the one at BOOTSTRAP if set, else a fresh one started by test/lib.sh
# (BROKER_IMPL=kfake for franz-go's fake broker). Ends with 'N passed, N failed' summed over
# all checks; exits 1 when any suite failed.
#
#   test/peers.sh                              # build and start bin/moldau
#   BROKER_IMPL=kfake test/peers.sh            # against bench/kfake
#   BOOTSTRAP=127.0.0.1:9092 test/peers.sh     # against a running broker
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
PEERS_DIR=${PEERS_DIR:-$(cd "$REPO_ROOT/.." && pwd)/shared/peers}
[ -d "$PEERS_DIR" ] || { echo "no peer scripts at $PEERS_DIR (set PEERS_DIR)"; echo "0 passed, 1 failed"; exit 1; }

use_or_start_broker || { echo "0 passed, 1 failed"; exit 1; }

run_kafkajs() {
  local dir rc
  dir=$(mktemp -d "${TMPDIR:-/tmp}/kafkajs-smoke.XXXXXX")
  cp -r "$PEERS_DIR/kafkajs/." "$dir/"
  chmod -R u+w "$dir"
  if ! (cd "$dir" && timeout 180 npm install --silent --no-audit --no-fund >npm-install.log 2>&1); then
    cat "$dir/npm-install.log"; rm -rf "$dir"; return 1
  fi
  (cd "$dir" && timeout 120 node smoke.js)
  rc=$?
  rm -rf "$dir"
  return $rc
}

status=0
run_suite "kcat (librdkafka)" timeout 120 bash "$PEERS_DIR/kcat_smoke.sh" || status=1
run_suite "confluent-kafka + kafka-python" timeout 180 /usr/bin/python3 "$PEERS_DIR/librdkafka_smoke.py" || status=1
run_suite "kafkajs" run_kafkajs || status=1
print_suites peers
exit $status
