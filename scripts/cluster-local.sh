#!/usr/bin/env bash
# cluster-local.sh: a Moldau cluster of N nodes as processes on 127.0.0.1, configured exactly as
# docker-compose.yml (N=1) and docker-compose.cluster.yml (N=3) configure their containers: the
# same KAFKA_* variables with the same values, only the hosts and ports differ (the Go test in
# test/deploy fails when they drift apart).
#
#   scripts/cluster-local.sh start N      start nodes 1..N (those not running), wait until all are ready
#   scripts/cluster-local.sh stop [ID]    stop every node (or node ID) with SIGTERM; idempotent
#   scripts/cluster-local.sh status       each node up or down, then `moldau cluster info`; exit 3 if any is down
#   scripts/cluster-local.sh restart ID   stop node ID and start it again (with the current MOLDAU_BIN)
#   scripts/cluster-local.sh env N [ID]   print the variables each node gets, and nothing else
#
# Node i (1-based) listens on four ports from P = MOLDAU_BASE_PORT + 100*(i-1):
#   P    PLAINTEXT_HOST  the client listener (compose: the port published to the host)
#   P+1  CONTROLLER      the metadata quorum (nodes 1..MOLDAU_VOTERS only)
#   P+2  PLAINTEXT       the inter-broker listener (compose: the one other containers use)
#   P+3  http.listener   the web console, admin API, /metrics, /healthz, /readyz
#                        (compose: 8080 in the container, published as 8080, 8180, 8280)
# so with the default base the clients' bootstrap is 127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292,
# the host ports of docker-compose.cluster.yml, and node 1's console is http://127.0.0.1:9095/. Nodes after the first MOLDAU_VOTERS are broker-only
# (process.roles=broker): `start 4` on a running 3-node cluster adds a fourth broker.
#
# Knobs (environment):
#   MOLDAU_BIN            the moldau binary (default: bin/moldau of this repository, else moldau on PATH)
#   MOLDAU_CLUSTER_DIR    data, configs, pids and logs (default ${TMPDIR:-/tmp}/moldau-cluster)
#   MOLDAU_BASE_PORT      first node's client port (default 9092)
#   MOLDAU_VOTERS         how many nodes are controllers (default: N, at most 3)
#   MOLDAU_READY_TIMEOUT  seconds to wait for the nodes to be ready (default 60)
#   MOLDAU_STOP_TIMEOUT   seconds to wait for a node to exit after SIGTERM before SIGKILL (default 30)
#   KAFKA_*               any other broker key, added to every node (e.g. KAFKA_LOG_RETENTION_HOURS=1);
#                         the node-specific ones (node id, listeners, voters, log dirs) are refused
#
# Layout: $MOLDAU_CLUSTER_DIR/node-<i>/{server.env,data/,server.log,server.pid}, and bin/ with the
# kafka-* tool names linked to the binary (PATH=$MOLDAU_CLUSTER_DIR/bin:$PATH kafka-topics ...).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
prog=cluster-local.sh

# The cluster id of the compose files: one id for every node, so their meta.properties agree.
cluster_id=${MOLDAU_CLUSTER_ID:-moldau-local-cluster-1}
base_port=${MOLDAU_BASE_PORT:-9092}
dir=${MOLDAU_CLUSTER_DIR:-${TMPDIR:-/tmp}/moldau-cluster}
ready_timeout=${MOLDAU_READY_TIMEOUT:-60}
stop_timeout=${MOLDAU_STOP_TIMEOUT:-30}

die() { echo "$prog: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2; }

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

binary() {
  local b=${MOLDAU_BIN:-}
  if [ -z "$b" ]; then
    if [ -x "$repo/bin/moldau" ]; then b=$repo/bin/moldau
    elif command -v moldau >/dev/null 2>&1; then b=$(command -v moldau)
    else die "no moldau binary: run 'make build' or set MOLDAU_BIN"
    fi
  fi
  [ -x "$b" ] || die "MOLDAU_BIN=$b is not an executable"
  (cd "$(dirname "$b")" && echo "$(pwd)/$(basename "$b")")
}

port() { echo $((base_port + 100 * ($1 - 1) + $2)); } # port NODE OFFSET
voters_for() { local n=$1; echo "${MOLDAU_VOTERS:-$((n < 3 ? n : 3))}"; }
min() { echo $(($1 < $2 ? $1 : $2)); }

# node_env N I: node I's variables in a cluster of N nodes, one NAME=value a line, sorted. These
# are docker-compose(.cluster).yml's environment with 127.0.0.1 and this node's ports.
node_env() {
  local n=$1 i=$2 v listeners voters="" j roles
  v=$(voters_for "$n")
  is_count "$v" && [ "$v" -le "$n" ] || die "MOLDAU_VOTERS=$v: want 1..$n"
  for ((j = 1; j <= v; j++)); do
    voters+="${voters:+,}$j@127.0.0.1:$(port "$j" 1)"
  done
  roles=broker,controller
  listeners="PLAINTEXT://127.0.0.1:$(port "$i" 2),CONTROLLER://127.0.0.1:$(port "$i" 1),PLAINTEXT_HOST://127.0.0.1:$(port "$i" 0)"
  if [ "$i" -gt "$v" ]; then
    roles=broker
    listeners="PLAINTEXT://127.0.0.1:$(port "$i" 2),PLAINTEXT_HOST://127.0.0.1:$(port "$i" 0)"
  fi
  local rf; rf=$(min "$n" 3)
  {
    echo "CLUSTER_ID=$cluster_id"
    echo "KAFKA_NODE_ID=$i"
    echo "KAFKA_PROCESS_ROLES=$roles"
    echo "KAFKA_LISTENERS=$listeners"
    echo "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:$(port "$i" 2),PLAINTEXT_HOST://127.0.0.1:$(port "$i" 0)"
    echo "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"
    echo "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER"
    echo "KAFKA_CONTROLLER_QUORUM_VOTERS=$voters"
    echo "KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT"
    echo "KAFKA_LOG_DIRS=$dir/node-$i/data"
    echo "KAFKA_NUM_PARTITIONS=3"
    echo "KAFKA_DEFAULT_REPLICATION_FACTOR=$rf"
    echo "KAFKA_MIN_INSYNC_REPLICAS=$(( n >= 3 ? 2 : 1 ))"
    echo "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=$rf"
    echo "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=$rf"
    echo "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=$(min "$n" 2)"
    echo "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0"
    echo "MOLDAU_HTTP_LISTENER=127.0.0.1:$(port "$i" 3)"
    extra_env
  } | sort
}

# extra_env: the caller's KAFKA_* variables, for every node (not those node_env sets per node).
extra_env() {
  local name
  while IFS= read -r name; do
    case $name in
      KAFKA_NODE_ID | KAFKA_BROKER_ID | KAFKA_PROCESS_ROLES | KAFKA_LISTENERS | KAFKA_ADVERTISED_LISTENERS | \
        KAFKA_CONTROLLER_QUORUM_VOTERS | KAFKA_LOG_DIRS | KAFKA_LOG_DIR)
        die "$name is set per node by $prog: unset it (the ports come from MOLDAU_BASE_PORT, the data from MOLDAU_CLUSTER_DIR)" ;;
      KAFKA_*) printf '%s=%s\n' "$name" "${!name}" ;;
    esac
  done < <(compgen -e | sort)
}

# recorded_n: the cluster size recorded when the directory was first used, or empty.
recorded_n() { [ -f "$dir/nodes" ] && cat "$dir/nodes" || true; }

pid_of() { # pid_of I: the running node's pid, or nothing
  local f=$dir/node-$1/server.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 0
  # A pid reused by another program after a reboot is not the node.
  if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q ' server'; then
    return 0
  fi
  echo "$pid"
}

# start_node N I BIN: writes node I's server.env (it must match an existing one) and starts it.
start_node() {
  local n=$1 i=$2 bin=$3 nd=$dir/node-$2
  mkdir -p "$nd/data"
  local want; want=$(node_env "$n" "$i")
  if [ -f "$nd/server.env" ] && [ "$(cat "$nd/server.env")" != "$want" ]; then
    die "node $i in $dir was set up differently (see $nd/server.env); stop the cluster and remove $dir, or set MOLDAU_CLUSTER_DIR"
  fi
  printf '%s\n' "$want" > "$nd/server.env"
  local p
  for p in $(port "$i" 0) $(port "$i" 2) $(port "$i" 3) $([ "$i" -le "$(voters_for "$n")" ] && port "$i" 1); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "node $i: port 127.0.0.1:$p is already in use (set MOLDAU_BASE_PORT)"
    fi
  done
  local -a vars=() line
  while IFS= read -r line; do vars+=("$line"); done < "$nd/server.env"
  echo "---- $(date -u +%FT%TZ) start: $bin server" >> "$nd/server.log"
  wc -l < "$nd/server.log" | tr -d ' ' > "$nd/server.log.mark"
  # A clean environment: only the node's settings reach it, not the caller's MOLDAU_*/KAFKA_*.
  # setsid (where there is one): Ctrl-C in this terminal does not reach the nodes.
  local -a detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)
  ${detach[@]+"${detach[@]}"} env -i PATH="$PATH" HOME="${HOME:-/}" TZ="${TZ:-UTC}" "${vars[@]}" "$bin" server \
    >> "$nd/server.log" 2>&1 < /dev/null &
  echo $! > "$nd/server.pid"
}

# wait_ready I...: until each node's current run printed "ready in" and its client port accepts.
wait_ready() {
  local deadline=$((SECONDS + ready_timeout)) i pending=("$@") left
  while [ ${#pending[@]} -gt 0 ]; do
    left=()
    for i in "${pending[@]}"; do
      local nd=$dir/node-$i mark
      mark=$(cat "$nd/server.log.mark")
      if [ -z "$(pid_of "$i")" ]; then
        echo "$prog: node $i exited while starting; the end of $nd/server.log:" >&2
        tail -n +"$((mark + 1))" "$nd/server.log" | tail -n 20 >&2
        return 1
      fi
      if tail -n +"$((mark + 1))" "$nd/server.log" | grep -q 'ready in' &&
        (exec 3<>"/dev/tcp/127.0.0.1/$(port "$i" 0)") 2>/dev/null; then
        echo "node $i ready: 127.0.0.1:$(port "$i" 0), console http://127.0.0.1:$(port "$i" 3)/ (pid $(pid_of "$i"))"
      else
        left+=("$i")
      fi
    done
    pending=("${left[@]+"${left[@]}"}")
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for i in "${pending[@]}"; do
        echo "$prog: node $i not ready within ${ready_timeout}s; the end of $dir/node-$i/server.log:" >&2
        tail -n 20 "$dir/node-$i/server.log" >&2
      done
      return 1
    fi
    sleep 0.2
  done
}

# stop_nodes I...: SIGTERM (a controlled shutdown), SIGKILL after MOLDAU_STOP_TIMEOUT. Idempotent.
stop_nodes() {
  local i pid pids=() ids=()
  for i in "$@"; do
    pid=$(pid_of "$i")
    if [ -z "$pid" ]; then
      [ -d "$dir/node-$i" ] && echo "node $i already stopped"
      rm -f "$dir/node-$i/server.pid"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    echo "---- $(date -u +%FT%TZ) $prog: SIGTERM" >> "$dir/node-$i/server.log"
    pids+=("$pid"); ids+=("$i")
  done
  local deadline=$((SECONDS + stop_timeout)) k
  for k in "${!pids[@]}"; do
    while kill -0 "${pids[$k]}" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        echo "$prog: node ${ids[$k]} still running ${stop_timeout}s after SIGTERM: SIGKILL" >&2
        kill -KILL "${pids[$k]}" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    rm -f "$dir/node-${ids[$k]}/server.pid"
    echo "node ${ids[$k]} stopped"
  done
}

bootstrap() { # bootstrap N: every node's client address
  local n=$1 i out=""
  for ((i = 1; i <= n; i++)); do out+="${out:+,}127.0.0.1:$(port "$i" 0)"; done
  echo "$out"
}

link_tools() { # bin/ with the kafka-* names, so Kafka's commands work against the cluster
  local bin=$1 t
  mkdir -p "$dir/bin"
  ln -sf "$bin" "$dir/bin/moldau"
  for t in $("$bin" tools 2>/dev/null || true); do
    ln -sf "$bin" "$dir/bin/$t"
  done
}

cmd_start() {
  local n=${1:-}
  is_count "$n" || die "start: want the number of nodes, e.g. '$prog start 3'"
  local rec; rec=$(recorded_n)
  [ -n "$rec" ] && [ "$n" -lt "$rec" ] && die "the cluster in $dir has $rec nodes: 'start $rec' (or more, to add brokers)"
  local bin; bin=$(binary)
  mkdir -p "$dir"
  echo "$n" > "$dir/nodes"
  link_tools "$bin"
  local i started=()
  for ((i = 1; i <= n; i++)); do
    if [ -n "$(pid_of "$i")" ]; then
      echo "node $i already running (pid $(pid_of "$i"))"
      continue
    fi
    start_node "$n" "$i" "$bin"
    started+=("$i")
  done
  if [ ${#started[@]} -gt 0 ]; then
    wait_ready "${started[@]}"
  fi
  echo "cluster of $n nodes in $dir ($bin)"
  echo "bootstrap servers: $(bootstrap "$n")"
}

cmd_stop() {
  local rec; rec=$(recorded_n)
  if [ -z "$rec" ]; then echo "no cluster in $dir"; return 0; fi
  if [ $# -gt 0 ]; then
    is_count "$1" && [ "$1" -le "$rec" ] || die "stop: no node $1 in $dir (nodes 1..$rec)"
    stop_nodes "$1"
    return
  fi
  local ids=() i
  for ((i = rec; i >= 1; i--)); do ids+=("$i"); done
  stop_nodes "${ids[@]}"
}

cmd_restart() {
  local rec; rec=$(recorded_n)
  [ -n "$rec" ] || die "no cluster in $dir"
  is_count "${1:-}" && [ "$1" -le "$rec" ] || die "restart: want a node id 1..$rec"
  local bin; bin=$(binary)
  stop_nodes "$1"
  start_node "$rec" "$1" "$bin"
  wait_ready "$1"
}

cmd_status() {
  local rec; rec=$(recorded_n)
  if [ -z "$rec" ]; then echo "no cluster in $dir"; return 3; fi
  local i down=0 up=() pid
  echo "cluster of $rec nodes in $dir"
  for ((i = 1; i <= rec; i++)); do
    pid=$(pid_of "$i")
    local roles; roles=$(sed -n 's/^KAFKA_PROCESS_ROLES=//p' "$dir/node-$i/server.env" 2>/dev/null)
    if [ -n "$pid" ]; then
      printf 'node %d  up    pid %-7s %-17s %s\n' "$i" "$pid" "${roles:-?}" "127.0.0.1:$(port "$i" 0)"
      up+=("127.0.0.1:$(port "$i" 0)")
    else
      printf 'node %d  down  %-11s %-17s %s\n' "$i" "" "${roles:-?}" "127.0.0.1:$(port "$i" 0)"
      down=$((down + 1))
    fi
  done
  if [ ${#up[@]} -gt 0 ]; then
    local IFS=,
    "$(binary)" cluster info --bootstrap-server "${up[*]}" || down=$((down + 1))
  fi
  [ $down -eq 0 ] || return 3
}

cmd_env() {
  local n=${1:-} i
  is_count "$n" || die "env: want the number of nodes"
  if [ $# -ge 2 ]; then
    is_count "$2" && [ "$2" -le "$n" ] || die "env: no node $2 in a cluster of $n"
    node_env "$n" "$2"
    return
  fi
  for ((i = 1; i <= n; i++)); do
    echo "# node $i"
    node_env "$n" "$i"
  done
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  status) shift; cmd_status ;;
  env) shift; cmd_env "$@" ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
