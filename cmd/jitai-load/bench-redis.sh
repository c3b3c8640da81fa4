#!/usr/bin/env bash
# bench-redis.sh JITAI_BIN LOAD_BIN: the same load against `jitai serve` with
# the embedded store, then with the Redis store, one after the other on this
# machine, then a summary of decisions/s, p50 and p99 for both. Run by
# `make bench-redis`.
#
# Environment: STUDIES (default policies/examples), STUDY (stress-mrt),
# BENCH_REDIS_URL (redis://127.0.0.1:6379/15), BENCH_CONCURRENCY (16),
# BENCH_DURATION (20s), BENCH_PARTICIPANTS (1000), BENCH_DAYS (7).
#
# Both servers run with their default settings (log level info, embedded
# durability "process") except --max-clock-skew off: the decision times
# spread over days from tomorrow. The embedded store starts empty in a temporary
# folder. The Redis run enrols its participants under a prefix unique to the
# run (bench-<unix time>-), so earlier data in that Redis database does not
# change what it measures; its keys are left in Redis afterwards.
set -euo pipefail

JITAI=${1:-bin/jitai}
LOAD=${2:-bin/jitai-load}
STUDIES=${STUDIES:-policies/examples}
STUDY=${STUDY:-stress-mrt}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/15}
CONC=${BENCH_CONCURRENCY:-16}
DUR=${BENCH_DURATION:-20s}
PARTICIPANTS=${BENCH_PARTICIPANTS:-1000}
DAYS=${BENCH_DAYS:-7}

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_server NAME ARGS...: starts jitai serve on a free loopback port,
# waits until it is ready and sets pid and base.
start_server() {
	local name=$1
	shift
	local log="$tmp/$name.log" addr=""
	: >"$log"
	# --max-clock-skew off: the load spreads its times over days from
	# tomorrow (--start tomorrow) for a realistic mix of decisions.
	"$JITAI" serve --addr 127.0.0.1:0 --studies "$STUDIES" --max-clock-skew off "$@" 2>"$log" &
	pid=$!
	for _ in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "jitai serve ($name) exited:" >&2
			cat "$log" >&2
			pid=""
			exit 1
		fi
		addr=$(sed -n 's/.*"msg":"serving","addr":"\([^"]*\)".*/\1/p' "$log" | head -1 || true)
		[ -n "$addr" ] && break
		sleep 0.1
	done
	if [ -z "$addr" ]; then
		echo "jitai serve ($name) did not start within 30 s:" >&2
		cat "$log" >&2
		exit 1
	fi
	base="http://$addr"
	if command -v curl >/dev/null; then
		for _ in $(seq 1 100); do
			curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && return 0
			sleep 0.1
		done
		echo "jitai serve ($name) is not ready (/readyz) after 10 s:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
}

stop_server() {
	kill "$pid"
	wait "$pid" || true
	pid=""
}

# run_load NAME PREFIX: the load against $base.
run_load() {
	"$LOAD" --url "$base" --study "$STUDY" --participants "$PARTICIPANTS" --prefix "$2" \
		--concurrency "$CONC" --duration "$DUR" --days "$DAYS" --start tomorrow --enrol --label "$1" --summary "$tmp/summary"
}

echo "bench-redis: study $STUDY, $PARTICIPANTS participants over $DAYS days, $CONC workers, $DUR per store, $(nproc 2>/dev/null || echo '?') CPUs"
echo

start_server embedded --store embedded --data "$tmp/data"
run_load embedded "bench-"
stop_server
echo

start_server redis --store redis --redis-url "$REDIS_URL"
run_load redis "bench-$(date +%s)-"
stop_server
echo

echo "== summary: same policy, same load, one after the other on this machine (Redis: $REDIS_URL)"
cat "$tmp/summary"
