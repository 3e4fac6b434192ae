#!/usr/bin/env bash
# with-redis.sh CMD...: run CMD with REDIS_ADDR pointing at a Redis that
# answers.
#
# By default it starts a redis-server of its own on a free loopback port
# (installing Debian's redis-server package if it is missing), keeps its
# data in memory only, and stops that process, by its PID, when CMD exits:
# the tests then write to no Redis that anything else uses, whatever
# answers on 6379. To test against a Redis of your choosing instead, set
# REDIS_ADDR explicitly (e.g. REDIS_ADDR=127.0.0.1:6379); the tests keep
# their keys under prefixes of their own there and delete them.
set -euo pipefail

redis_ping() { # host port
	local reply
	{ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=""
	exec 3<&- 3>&-
	[[ "$reply" == +PONG* ]]
}

if [ -n "${REDIS_ADDR:-}" ]; then
	host="${REDIS_ADDR%:*}"
	port="${REDIS_ADDR##*:}"
	if ! redis_ping "$host" "$port"; then
		echo "with-redis: REDIS_ADDR=$REDIS_ADDR does not answer PING; unset it to use a redis-server of our own" >&2
		exit 1
	fi
	echo "with-redis: using the Redis at REDIS_ADDR=$REDIS_ADDR"
	exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "with-redis: no redis-server; installing Debian's redis-server package"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

dir=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		if kill -0 "$pid" 2>/dev/null; then
			echo "with-redis: redis-server (pid $pid) is still running after SIGTERM" >&2
			exit 1
		fi
		echo "with-redis: stopped redis-server (pid $pid)"
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port: a random one that nothing listens on. Another process may
# take it before redis-server binds it, so a start that fails is tried
# again with another port.
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
		exec 3<&- 3>&-
		continue # something listens there
	fi
	redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --save "" --appendonly no \
		--dir "$dir" --logfile "$dir/redis.log" --daemonize no &
	pid=$!
	for _ in $(seq 1 100); do
		redis_ping 127.0.0.1 "$port" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null && redis_ping 127.0.0.1 "$port"; then
		break
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
	echo "with-redis: redis-server did not start on port $port (attempt $attempt):" >&2
	tail -n 5 "$dir/redis.log" >&2 || true
done
if [ -z "$pid" ]; then
	echo "with-redis: could not start redis-server" >&2
	exit 1
fi
echo "with-redis: started redis-server (pid $pid) on 127.0.0.1:$port; it stops when the tests end"
export REDIS_ADDR="127.0.0.1:$port"
set +e
"$@"
status=$?
set -e
exit "$status"
