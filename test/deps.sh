#!/bin/bash
# Makes sure the clients `make test` drives are on this machine: kcat, confluent-kafka-python and
# kafka-python (for /usr/bin/python3), Node.js with npm (kafkajs comes from the npm registry),
# Java with Maven (the Kafka tools and the Java client come from Maven Central), chromium (the
# console's end-to-end test, test/console, drives it headless; $CHROMIUM names another binary);
# optionally docker-compose, to parse the compose files (test/compose.sh).
#
# What is missing is installed with apt-get when this runs as root on a Debian-like machine;
# otherwise it stops at once and prints the command to run. DEPS_NO_INSTALL=1 only checks.
set -uo pipefail

missing=() # Debian packages
have() { command -v "$1" >/dev/null 2>&1; }
pymod() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have go || { echo "test/deps.sh: Go is not installed: see https://go.dev/doc/install (go.mod names the version)" >&2; exit 1; }
have kcat || missing+=(kcat)
pymod confluent_kafka || missing+=(python3-confluent-kafka)
pymod kafka || missing+=(python3-kafka)
have node || missing+=(nodejs)
have npm || missing+=(npm)
have java || missing+=(default-jdk-headless)
have mvn || missing+=(maven)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)

# Optional: a compose CLI, for test/compose.sh (`docker compose config` needs no daemon): Debian's
# docker-compose package, about 20 s. If it cannot be installed the compose files are still checked
# by go test (test/deploy), only not by the CLI's parser.
if ! docker compose version >/dev/null 2>&1 && ! have docker-compose &&
  [ "${DEPS_NO_INSTALL:-}" != 1 ] && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "test/deps.sh: installing docker-compose (optional, for test/compose.sh)" >&2
  export DEBIAN_FRONTEND=noninteractive
  inst() { timeout 300 apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1; }
  inst || { timeout 300 apt-get update -qq >/dev/null 2>&1 && inst; } ||
    echo "test/deps.sh: docker-compose could not be installed; test/compose.sh will say it skipped" >&2
fi

[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "${DEPS_NO_INSTALL:-}" != 1 ] && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "test/deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "test/deps.sh: '$cmd' failed" >&2
  exit 1
fi
echo "test/deps.sh: the tests need clients this machine does not have: ${missing[*]}" >&2
echo "  install them with:  sudo $cmd" >&2
echo "  (or run 'make test' as root on Debian/Ubuntu, which installs them)" >&2
exit 1
