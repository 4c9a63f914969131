#!/usr/bin/env bash
# Starts or stops a throwaway redis-server on a free loopback port, for the tests.
#   scripts/redis-test-server.sh start DIR   -> DIR/port holds the port; prints it
#   scripts/redis-test-server.sh stop DIR
# Nothing is persisted (no RDB, no AOF); the server binds 127.0.0.1 only.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
  start)
    if [[ -f "$dir/port" ]] && redis-cli -p "$(cat "$dir/port")" ping >/dev/null 2>&1; then
      cat "$dir/port"; exit 0
    fi
    for _ in $(seq 50); do
      port=$(( 20000 + RANDOM % 20000 ))
      redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize yes >/dev/null 2>&1 || continue
      for _ in $(seq 100); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
          echo "$port" > "$dir/port"
          echo "$port"
          exit 0
        fi
        sleep 0.05
      done
      [[ -f "$dir/redis.pid" ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    done
    echo "redis-test-server: could not start redis-server" >&2
    exit 1 ;;
  stop)
    if [[ -f "$dir/port" ]]; then
      redis-cli -p "$(cat "$dir/port")" shutdown nosave >/dev/null 2>&1 || true
      rm -f "$dir/port"
    fi
    if [[ -f "$dir/redis.pid" ]]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -f "$dir/redis.pid"; fi
    exit 0 ;;
  *) echo "usage: redis-test-server.sh start|stop DIR" >&2; exit 2 ;;
esac
