#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker (KRaft: broker and controller in one process) for the
# Kafka tests, the benchmarks and local use of `cascade stream`.
#
#   tests/kafka/kafka.sh start    fetch the jars if needed, format storage once, start, wait until
#                             the broker answers metadata requests; prints the bootstrap address
#   tests/kafka/kafka.sh stop     stop it (SIGTERM, wait; SIGKILL after KAFKA_STOP_TIMEOUT)
#   tests/kafka/kafka.sh status   exit 0 and print the address when running, 3 when not
#   tests/kafka/kafka.sh kill9    SIGKILL it (crash tests), keeping its data
#   tests/kafka/kafka.sh fetch    only fetch the jars
#   tests/kafka/kafka.sh address  print the bootstrap address
#
# Needs only Java 17+ and Maven: the jars come from Maven Central via tests/kafka/pom.xml into
# $KAFKA_LIBS. The data directory persists across stop/start and kill9/start, so a restarted
# broker still has its topics (the crash tests rely on it).
#
# Environment (all optional):
#   KAFKA_PORT             client listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT + 1)
#   KAFKA_DIR              instance directory: config, data, pid, log (default target/kafka,
#                          or target/kafka-<port> when KAFKA_PORT is not 9092)
#   KAFKA_LIBS             broker jars (default target/kafka/libs, shared by all instances)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   KAFKA_STOP_TIMEOUT     seconds to wait for a clean stop before SIGKILL (default 30)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx768m)
set -euo pipefail

# The physical path: a folder that links to this checkout's tests/ (the docs test of kafka.md
# runs its block from one) must find the same instance directory, or its broker looks foreign.
REPO="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
POM="$REPO/tests/kafka/pom.xml"
PROBE="$REPO/tests/kafka/Probe.java"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
if [[ "$PORT" == 9092 ]]; then default_dir="$REPO/target/kafka"; else default_dir="$REPO/target/kafka-$PORT"; fi
DIR="${KAFKA_DIR:-$default_dir}"
LIBS="${KAFKA_LIBS:-$REPO/target/kafka/libs}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
ADDRESS="127.0.0.1:$PORT"
PIDFILE="$DIR/broker.pid"
LOG="$DIR/broker.log"
CONFIG="$DIR/server.properties"

die() { echo "kafka.sh: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

# The pid of our broker if it is running, else nothing. Checks the command line so a reused pid
# of some other process is never taken for the broker (and never killed).
running_pid() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $CONFIG"; then
        echo "$pid"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch() {
    need java "install a Java 17+ runtime"
    need mvn "install Maven; it fetches the broker jars from Maven Central"
    local stamp="$LIBS/.pom.sha256" want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
    echo "kafka.sh: fetching Apache Kafka jars from Maven Central into $LIBS" >&2
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    local out="$(dirname "$LIBS")/mvn.log"
    mkdir -p "$(dirname "$out")"
    if ! mvn -B -ntp -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        die "mvn could not fetch the Kafka jars (full output in $out)"
    fi
    ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn ran but no kafka_2.13 jar in $LIBS"
    echo "$want" >"$stamp"
}

write_config() {
    mkdir -p "$DIR/data"
    # A static voter set keeps the quorum in this file rather than in the formatted storage, so
    # an instance can be restarted with the same data on the same ports without re-formatting.
    cat >"$CONFIG" <<EOF
# Written by tests/kafka/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
}

JVM_FLAGS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"

java_cmd() {
    # shellcheck disable=SC2086 # HEAP is a list of flags
    java $HEAP $JVM_FLAGS -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$LIBS/*" "$@"
}

format_storage() {
    [[ -f "$DIR/data/meta.properties" ]] && return 0
    local id
    id="$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    [[ -n "$id" ]] || die "could not generate a cluster id with kafka.tools.StorageTool"
    echo "$id" >"$DIR/cluster.id"
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$CONFIG" >>"$LOG" 2>&1 ||
        die "formatting $DIR/data failed; see $LOG"
}

probe() {
    java -cp "$LIBS/*" "$PROBE" "$ADDRESS" "$1"
}

start() {
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        probe "$START_TIMEOUT" || die "broker (pid $pid) runs but does not answer; see $LOG"
        echo "$ADDRESS"
        return 0
    fi
    rm -f "$PIDFILE"
    for p in "$PORT" "$CPORT"; do
        port_open "$p" && die "port $p on 127.0.0.1 is in use by another process (set KAFKA_PORT)"
    done
    fetch
    write_config
    format_storage
    echo "kafka.sh: starting broker on $ADDRESS (data in $DIR/data, log in $LOG)" >&2
    # setsid: the broker must outlive the shell (and process group) that started it.
    # shellcheck disable=SC2086 # HEAP is a list of flags
    setsid nohup java $HEAP $JVM_FLAGS -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
        -cp "$LIBS/*" kafka.Kafka "$CONFIG" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    if ! probe "$START_TIMEOUT"; then
        echo "kafka.sh: broker did not answer within ${START_TIMEOUT}s; last lines of $LOG:" >&2
        tail -n 30 "$LOG" >&2 || true
        stop >/dev/null 2>&1 || true
        exit 1
    fi
    echo "$ADDRESS"
}

wait_gone() {
    local pid="$1" limit="$2" waited=0
    while kill -0 "$pid" 2>/dev/null; do
        ((waited >= limit * 10)) && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

stop() {
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE"
        echo "kafka.sh: not running ($ADDRESS)" >&2
        return 0
    fi
    kill -TERM "$pid"
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
        echo "kafka.sh: no clean stop within ${STOP_TIMEOUT}s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
    fi
    rm -f "$PIDFILE"
    echo "kafka.sh: stopped ($ADDRESS)" >&2
}

kill9() {
    local pid
    pid="$(running_pid)"
    [[ -n "$pid" ]] || die "not running ($ADDRESS)"
    kill -KILL "$pid"
    wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
    rm -f "$PIDFILE"
    echo "kafka.sh: killed with SIGKILL ($ADDRESS); data kept in $DIR/data" >&2
}

status() {
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]] && port_open "$PORT"; then
        echo "running: pid $pid, bootstrap $ADDRESS, data $DIR/data"
        return 0
    fi
    echo "not running ($ADDRESS)"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    kill9) kill9 ;;
    fetch) fetch ;;
    address) echo "$ADDRESS" ;;
    *)
        echo "usage: $0 start|stop|status|kill9|fetch|address" >&2
        exit 2
        ;;
esac
