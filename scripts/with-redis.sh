#!/usr/bin/env bash
# with-redis.sh CMD...: run CMD with REDIS_ADDR pointing at a Redis that
# answers. It uses the one at $REDIS_ADDR (default 127.0.0.1:6379) when it
# answers PING; otherwise it starts its own redis-server on a free loopback
# port (installing Debian's redis-server package if it is missing), and stops
# that process, by its PID, when CMD exits.
set -euo pipefail

redis_ping() { # host port
	local reply
	{ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=""
	exec 3<&- 3>&-
	[[ "$reply" == +PONG* ]]
}

addr="${REDIS_ADDR:-127.0.0.1:6379}"
host="${addr%:*}"
port="${addr##*:}"

if redis_ping "$host" "$port"; then
	echo "with-redis: using the Redis that answers at $addr"
	export REDIS_ADDR="$addr"
	exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "with-redis: no Redis at $addr and no redis-server; installing Debian's redis-server"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

# A free port: let the kernel pick one, then hand it to redis-server.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16379)
dir=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
	--logfile "$dir/redis.log" --daemonize no &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 1 50); do
	redis_ping 127.0.0.1 "$port" && break
	sleep 0.1
done
redis_ping 127.0.0.1 "$port" || { echo "with-redis: redis-server did not start"; cat "$dir/redis.log"; exit 1; }
echo "with-redis: started redis-server (pid $pid) on 127.0.0.1:$port"
export REDIS_ADDR="127.0.0.1:$port"
set +e
"$@"
status=$?
exit "$status"
