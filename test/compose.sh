#!/bin/bash
# Checks docker-compose.yml and docker-compose.cluster.yml with the compose CLI's own parser
# (`docker compose config`, or the standalone `docker-compose config`), which needs no Docker
# daemon. Where neither CLI is installed it says so and passes: the settings themselves are
# checked on every machine by test/deploy (go test), against scripts/cluster-local.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "test/compose.sh: no compose CLI (docker compose or docker-compose): compose files not parsed here"
  exit 0
fi
status=0
for f in docker-compose.yml docker-compose.cluster.yml; do
  if out=$("${compose[@]}" -f "$f" config -q 2>&1); then
    echo "test/compose.sh: ${compose[*]} -f $f config: ok"
  else
    echo "test/compose.sh: ${compose[*]} -f $f config failed:" >&2
    echo "$out" >&2
    status=1
  fi
done
exit $status
