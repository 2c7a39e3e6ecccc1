#!/bin/bash
# Helpers for integration scripts that run a real broker process. Source it:
#
#   . "$(dirname "$0")/lib.sh"
#   build_broker                # go build -o bin/moldau ./cmd/moldau
#   start_broker                # free ports, fresh data dir; sets BOOTSTRAP, BROKER_HTTP, BROKER_PID, ...
#   ...                         # run clients against $BOOTSTRAP
#   kill9_broker; restart_broker    # crash and recover on the same port and data dir
#   stop_broker                 # SIGTERM, then wait for the process to exit
#
# BROKER_IMPL=kfake runs franz-go's fake broker (bench/kfake) instead of Moldau; it is how these
# scripts are validated while cmd/moldau is being written. BROKER_ARGS adds flags to
# `moldau server`. BROKER_LOG names the broker's log file (set by start_broker).
#
# Nothing here uses `set -e`: functions return non-zero and print why, callers decide.

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BROKER_IMPL=${BROKER_IMPL:-moldau}
BROKER_START_TIMEOUT=${BROKER_START_TIMEOUT:-30}
BROKER_STOP_TIMEOUT=${BROKER_STOP_TIMEOUT:-30}
BROKER_PID=
BROKER_PORT=
BROKER_HTTP_PORT=
BROKER_DATA=
BROKER_LOG=
BROKER_OWN_DATA=

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

broker_bin() {
  case $BROKER_IMPL in
    moldau) echo "$REPO_ROOT/bin/moldau" ;;
    kfake) echo "$REPO_ROOT/bin/kfake" ;;
    *) log "BROKER_IMPL must be moldau or kfake, not '$BROKER_IMPL'"; return 1 ;;
  esac
}

# build_broker: builds the broker binary into bin/. Fails loudly while cmd/moldau does not exist.
build_broker() {
  case $BROKER_IMPL in
    moldau)
      if [ ! -d "$REPO_ROOT/cmd/moldau" ]; then
        log "ERROR: $REPO_ROOT/cmd/moldau does not exist yet: there is no broker to test."
        log "       (BROKER_IMPL=kfake runs these scripts against franz-go's kfake instead.)"
        return 1
      fi
      (cd "$REPO_ROOT" && go build -o bin/moldau ./cmd/moldau) || { log "ERROR: go build ./cmd/moldau failed"; return 1; }
      ;;
    kfake)
      (cd "$REPO_ROOT" && go build -o bin/kfake ./bench/kfake) || { log "ERROR: go build ./bench/kfake failed"; return 1; }
      ;;
    *) broker_bin >/dev/null; return 1 ;;
  esac
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# port_open PORT: true when something accepts connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for_port PORT PID SECONDS: waits until PORT answers; fails early when PID exits.
wait_for_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if port_open "$port"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "ERROR: broker (pid $pid) exited before its port $port answered"
      return 1
    fi
    sleep 0.1
  done
  log "ERROR: broker port $port did not answer within $3s"
  return 1
}

# _launch: starts the broker on BROKER_PORT with BROKER_DATA, appending to BROKER_LOG.
_launch() {
  local bin
  bin=$(broker_bin) || return 1
  if [ ! -x "$bin" ]; then
    build_broker || return 1
  fi
  case $BROKER_IMPL in
    moldau)
      # shellcheck disable=SC2086
      # http.listener on a port of its own, never the default 8080 (BROKER_ARGS may move it).
      "$bin" server --listeners "PLAINTEXT://127.0.0.1:$BROKER_PORT" --data-dir "$BROKER_DATA" \
        --http-listener "127.0.0.1:$BROKER_HTTP_PORT" \
        --override group.initial.rebalance.delay.ms=0 ${BROKER_ARGS:-} "$@" >>"$BROKER_LOG" 2>&1 &
      ;;
    kfake)
      # shellcheck disable=SC2086
      "$bin" -addr "127.0.0.1:$BROKER_PORT" -data-dir "$BROKER_DATA" -partitions "${KFAKE_PARTITIONS:-1}" \
        ${KFAKE_ARGS:-} "$@" >>"$BROKER_LOG" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  if ! wait_for_port "$BROKER_PORT" "$BROKER_PID" "$BROKER_START_TIMEOUT"; then
    tail -n 30 "$BROKER_LOG" | sed 's/^/  broker| /' >&2
    kill -9 "$BROKER_PID" 2>/dev/null
    wait "$BROKER_PID" 2>/dev/null
    BROKER_PID=
    return 1
  fi
  export BOOTSTRAP="127.0.0.1:$BROKER_PORT"
  export BROKER_HTTP="127.0.0.1:$BROKER_HTTP_PORT"
  log "$BROKER_IMPL broker pid $BROKER_PID on $BOOTSTRAP, data $BROKER_DATA, log $BROKER_LOG"
}

# start_broker [EXTRA ARGS...]: starts a broker on a free port with a fresh temp data dir, its
# HTTP listener (console, /metrics) on another free port. Sets and exports BOOTSTRAP and
# BROKER_HTTP (host:port); sets BROKER_PID, BROKER_PORT, BROKER_HTTP_PORT, BROKER_DATA, BROKER_LOG.
start_broker() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    log "ERROR: a broker (pid $BROKER_PID) is already running"
    return 1
  fi
  BROKER_PORT=$(free_port) || return 1
  BROKER_HTTP_PORT=$(free_port) || return 1
  while [ "$BROKER_HTTP_PORT" = "$BROKER_PORT" ]; do BROKER_HTTP_PORT=$(free_port); done
  BROKER_DATA=$(mktemp -d "${TMPDIR:-/tmp}/moldau-test-data.XXXXXX")
  BROKER_OWN_DATA=$BROKER_DATA
  BROKER_LOG=$(mktemp "${TMPDIR:-/tmp}/moldau-test-broker.XXXXXX.log")
  _launch "$@"
}

# restart_broker [EXTRA ARGS...]: starts the broker again on the same port and data dir
# (after stop_broker or kill9_broker).
restart_broker() {
  if [ -z "$BROKER_PORT" ] || [ -z "$BROKER_DATA" ]; then
    log "ERROR: restart_broker before start_broker"
    return 1
  fi
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    log "ERROR: the broker (pid $BROKER_PID) is still running"
    return 1
  fi
  echo "---- restart $(date +%H:%M:%S) ----" >>"$BROKER_LOG"
  _launch "$@"
}

# stop_broker: SIGTERM, then waits up to BROKER_STOP_TIMEOUT seconds; SIGKILL if it hangs.
# Returns the broker's exit status (non-zero if it had to be killed).
stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  local pid=$BROKER_PID rc deadline=$((SECONDS + BROKER_STOP_TIMEOUT))
  BROKER_PID=
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "ERROR: broker pid $pid did not exit ${BROKER_STOP_TIMEOUT}s after SIGTERM; killing it"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
  fi
  wait "$pid" 2>/dev/null
  rc=$?
  log "broker pid $pid stopped (exit $rc)"
  return $rc
}

# kill9_broker: SIGKILL, as a crash would.
kill9_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -9 "$BROKER_PID" 2>/dev/null
  wait "$BROKER_PID" 2>/dev/null
  log "broker pid $BROKER_PID killed with SIGKILL"
  BROKER_PID=
  return 0
}

# cleanup_broker: stops the broker if running and removes the data dir start_broker made
# and its log (KEEP_DATA=1 keeps both). Meant for `trap cleanup_broker EXIT`.
# When the script is exiting with a failure, the tail of the broker log is printed first.
cleanup_broker() {
  local rc=$?
  stop_broker >/dev/null 2>&1 || rc=1
  if [ "$rc" != 0 ] && [ -n "$BROKER_LOG" ] && [ -s "$BROKER_LOG" ]; then
    log "last lines of the broker log $BROKER_LOG:"
    tail -n 40 "$BROKER_LOG" | sed 's/^/  broker| /' >&2
  fi
  if [ -z "${KEEP_DATA:-}" ]; then
    [ -z "$BROKER_OWN_DATA" ] || rm -rf "$BROKER_OWN_DATA"
    [ -z "$BROKER_LOG" ] || rm -f "$BROKER_LOG"
  fi
}

# use_or_start_broker: when BOOTSTRAP is already set, uses that broker; otherwise builds and
# starts a fresh one and arranges for it to be stopped on exit.
use_or_start_broker() {
  if [ -n "${BOOTSTRAP:-}" ]; then
    log "using the broker at BOOTSTRAP=$BOOTSTRAP"
    return 0
  fi
  build_broker || return 1
  trap cleanup_broker EXIT
  start_broker
}

# summary_of FILE: prints "P F" from the last 'N passed, N failed' line in FILE, or nothing.
summary_of() {
  grep -Eo '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1 | sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/'
}

# run_suite NAME COMMAND...: runs a suite printing its output, adds its counts to
# SUITE_PASSED/SUITE_FAILED. A suite with no closing count line (timed out, crashed) counts its
# 'ok'/'FAIL' lines plus one failure.
SUITE_PASSED=0
SUITE_FAILED=0
SUITE_RESULTS=()
run_suite() {
  local name=$1 out rc counts p f start=$SECONDS
  shift
  out=$(mktemp)
  echo "=== $name"
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  counts=$(summary_of "$out")
  if [ -n "$counts" ]; then
    read -r p f <<<"$counts"
  else
    # No closing line (timed out or crashed): count the check lines it printed, plus the crash.
    p=$(grep -c '^ok ' "$out")
    f=$(grep -c '^FAIL' "$out")
    if [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$f" = 0 ]; then p=1; fi
    if [ "$rc" = 124 ]; then echo "FAIL $name timed out"; fi
  fi
  if [ "$rc" != 0 ] && { [ -z "$counts" ] || [ "$f" = 0 ]; }; then f=$((f + 1)); fi
  rm -f "$out"
  SUITE_PASSED=$((SUITE_PASSED + p))
  SUITE_FAILED=$((SUITE_FAILED + f))
  SUITE_RESULTS+=("$(printf '%-4s %-40s %3d passed, %3d failed  (exit %d, %ds)' \
    "$([ "$rc" = 0 ] && echo ok || echo FAIL)" "$name" "$p" "$f" "$rc" $((SECONDS - start)))")
  return "$rc"
}

# print_suites LABEL: prints the per-suite results and the closing 'N passed, N failed' line.
print_suites() {
  echo "=== $1 summary"
  printf '%s\n' "${SUITE_RESULTS[@]}"
  echo "$SUITE_PASSED passed, $SUITE_FAILED failed"
}

# ---- A multi-node cluster (BROKER_IMPL=moldau only) ----------------------------------------
#
#   start_cluster 3             # nodes 1..3 on free ports; sets and exports BOOTSTRAP (every node)
#   stop_node 2; start_node 2   # SIGTERM and wait / start again on the same config and data
#   kill9_node 2
#   cleanup_cluster             # stops every node; removes CLUSTER_DIR unless KEEP_DATA=1
#
# Each node gets CLUSTER_DIR/node-ID/{server.properties,data,server.log,pid}: Kafka's keys for a
# combined broker+controller node, as internal/verify's cluster (moldau verify --nodes) writes
# them: node.id, process.roles=broker,controller, PLAINTEXT and CONTROLLER listeners,
# advertised.listeners, controller.listener.names, listener.security.protocol.map,
# controller.quorum.voters, log.dirs, http.listener (a free port: CLUSTER_HTTP_PORT[ID]), plus
# CLUSTER_PROPS (newline-separated key=value lines).
CLUSTER_DIR=
CLUSTER_NODES=0
CLUSTER_PID=()
CLUSTER_PORT=()
CLUSTER_HTTP_PORT=() # each node's http.listener port (console, /metrics)

# node_ready ID: the node's current run printed its "listening on ... ready in" line and its port answers.
node_ready() {
  grep -q 'ready in' "$CLUSTER_DIR/node-$1/server.log" && port_open "${CLUSTER_PORT[$1]}"
}

# start_node ID: starts node ID (again) and waits until it is ready.
start_node() {
  local id=$1 dir=$CLUSTER_DIR/node-$1 bin deadline=$((SECONDS + BROKER_START_TIMEOUT))
  bin=$(broker_bin) || return 1
  if [ -n "${CLUSTER_PID[$id]:-}" ] && kill -0 "${CLUSTER_PID[$id]}" 2>/dev/null; then
    log "ERROR: node $id (pid ${CLUSTER_PID[$id]}) is already running"
    return 1
  fi
  # Each run's log starts afresh (the previous runs' are kept in server.log.N).
  [ -f "$dir/server.log" ] && mv "$dir/server.log" "$dir/server.log.$(date +%s%N)"
  env -u BOOTSTRAP "$bin" server --config "$dir/server.properties" >"$dir/server.log" 2>&1 &
  CLUSTER_PID[$id]=$!
  echo "${CLUSTER_PID[$id]}" >"$dir/pid"
  _wait_node "$id" "$deadline"
}

_wait_node() {
  local id=$1 deadline=$2 dir=$CLUSTER_DIR/node-$1
  while ! node_ready "$id"; do
    if ! kill -0 "${CLUSTER_PID[$id]}" 2>/dev/null; then
      log "ERROR: node $id (pid ${CLUSTER_PID[$id]}) exited before it was ready"
      tail -n 30 "$dir/server.log" | sed "s/^/  node$id| /" >&2
      return 1
    fi
    if [ $SECONDS -ge "$deadline" ]; then
      log "ERROR: node $id was not ready within ${BROKER_START_TIMEOUT}s"
      tail -n 30 "$dir/server.log" | sed "s/^/  node$id| /" >&2
      return 1
    fi
    sleep 0.1
  done
  log "node $id pid ${CLUSTER_PID[$id]} ready on 127.0.0.1:${CLUSTER_PORT[$id]}"
}

# start_cluster N: writes N nodes' configs and starts them (a node finishes starting only once a
# quorum runs, so all start before any is waited for).
start_cluster() {
  local n=${1:-3} id bin voters="" cport hport dir deadline
  [ "$BROKER_IMPL" = moldau ] || { log "ERROR: start_cluster needs BROKER_IMPL=moldau"; return 1; }
  bin=$(broker_bin) || return 1
  [ -x "$bin" ] || build_broker || return 1
  CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/moldau-test-cluster.XXXXXX")
  CLUSTER_NODES=$n
  declare -A cports=()
  for id in $(seq 1 "$n"); do
    CLUSTER_PORT[$id]=$(free_port) || return 1
    cport=$(free_port) || return 1
    while [ "$cport" = "${CLUSTER_PORT[$id]}" ]; do cport=$(free_port); done
    cports[$id]=$cport
    hport=$(free_port) || return 1
    while [ "$hport" = "${CLUSTER_PORT[$id]}" ] || [ "$hport" = "$cport" ]; do hport=$(free_port); done
    CLUSTER_HTTP_PORT[$id]=$hport
    voters+="${voters:+,}$id@127.0.0.1:$cport"
  done
  for id in $(seq 1 "$n"); do
    dir=$CLUSTER_DIR/node-$id
    mkdir -p "$dir/data"
    {
      echo "# node $id of a $n-node cluster started by test/lib.sh"
      echo "node.id=$id"
      echo "process.roles=broker,controller"
      echo "listeners=PLAINTEXT://127.0.0.1:${CLUSTER_PORT[$id]},CONTROLLER://127.0.0.1:${cports[$id]}"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:${CLUSTER_PORT[$id]}"
      echo "controller.listener.names=CONTROLLER"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
      echo "controller.quorum.voters=$voters"
      echo "log.dirs=$dir/data"
      echo "http.listener=127.0.0.1:${CLUSTER_HTTP_PORT[$id]}"
      echo "group.initial.rebalance.delay.ms=0"
      [ -z "${CLUSTER_PROPS:-}" ] || printf '%s\n' "$CLUSTER_PROPS"
    } >"$dir/server.properties"
  done
  deadline=$((SECONDS + BROKER_START_TIMEOUT))
  for id in $(seq 1 "$n"); do
    env -u BOOTSTRAP "$bin" server --config "$CLUSTER_DIR/node-$id/server.properties" >"$CLUSTER_DIR/node-$id/server.log" 2>&1 &
    CLUSTER_PID[$id]=$!
    echo "${CLUSTER_PID[$id]}" >"$CLUSTER_DIR/node-$id/pid"
  done
  for id in $(seq 1 "$n"); do
    _wait_node "$id" "$deadline" || return 1
  done
  BOOTSTRAP=$(for id in $(seq 1 "$n"); do printf '%s127.0.0.1:%s' "$([ "$id" = 1 ] || echo ,)" "${CLUSTER_PORT[$id]}"; done)
  export BOOTSTRAP
  log "$n-node cluster on $BOOTSTRAP, configs, data and logs in $CLUSTER_DIR"
}

# stop_node ID: SIGTERM (a controlled shutdown), then waits up to BROKER_STOP_TIMEOUT seconds;
# SIGKILL if it hangs. Returns the node's exit status (non-zero if it had to be killed).
stop_node() {
  local id=$1 pid=${CLUSTER_PID[$1]:-} deadline=$((SECONDS + BROKER_STOP_TIMEOUT))
  [ -n "$pid" ] || return 0
  CLUSTER_PID[$id]=
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "ERROR: node $id (pid $pid) did not exit ${BROKER_STOP_TIMEOUT}s after SIGTERM; killing it"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
  fi
  wait "$pid" 2>/dev/null
  local rc=$?
  log "node $id (pid $pid) stopped (exit $rc)"
  return $rc
}

# kill9_node ID: SIGKILL, as a crash would.
kill9_node() {
  local id=$1 pid=${CLUSTER_PID[$1]:-}
  [ -n "$pid" ] || return 0
  CLUSTER_PID[$id]=
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  log "node $id (pid $pid) killed with SIGKILL"
}

# node_running ID: the node's process is alive (whoever stopped it: a test may stop a node itself
# through CLUSTER_DIR/node-ID/pid).
node_running() {
  [ -n "${CLUSTER_PID[$1]:-}" ] && kill -0 "${CLUSTER_PID[$1]}" 2>/dev/null
}

# reap_node ID: forgets a node that something else stopped (and collects its exit status).
reap_node() {
  local pid=${CLUSTER_PID[$1]:-}
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then return 1; fi
  wait "$pid" 2>/dev/null
  CLUSTER_PID[$1]=
}

# cleanup_cluster: stops every node; on a failing exit prints the tail of each node's log; removes
# CLUSTER_DIR unless KEEP_DATA=1. Meant for `trap cleanup_cluster EXIT`.
cleanup_cluster() {
  local rc=$? id
  [ -n "$CLUSTER_DIR" ] || return 0
  for id in $(seq 1 "$CLUSTER_NODES"); do stop_node "$id" >/dev/null 2>&1 || rc=1; done
  if [ "$rc" != 0 ]; then
    for id in $(seq 1 "$CLUSTER_NODES"); do
      log "last lines of node $id's log $CLUSTER_DIR/node-$id/server.log:"
      tail -n 40 "$CLUSTER_DIR/node-$id/server.log" 2>/dev/null | sed "s/^/  node$id| /" >&2
    done
  fi
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$CLUSTER_DIR"; else log "kept $CLUSTER_DIR"; fi
  CLUSTER_DIR=
}
