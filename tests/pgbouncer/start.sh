#!/usr/bin/env bash
# Starts a PgBouncer in transaction mode (what Neon's pooled endpoint and most managed poolers
# run) in front of the local Postgres, for the `*::pgbouncer` tests. Idempotent: does nothing
# when something already listens on the port. Used by .ci/run; a developer runs it the same way:
#
#   tests/pgbouncer/start.sh
#   export TEST_PGBOUNCER_URL='postgres://postgres@127.0.0.1:6432/test?sslmode=disable'
#
# Settings (environment): PGBOUNCER_PORT (6432), PG_HOST/PG_PORT of the Postgres behind it
# (127.0.0.1:5432), PGBOUNCER_DIR for its config, log and pid file (/tmp/checkout-pgbouncer).
# Installs Debian's pgbouncer when it is missing and we are root. PgBouncer refuses to run as
# root: as root it is started with `-u postgres`.
set -euo pipefail

port="${PGBOUNCER_PORT:-6432}"
pg_host="${PG_HOST:-127.0.0.1}"
pg_port="${PG_PORT:-5432}"
dir="${PGBOUNCER_DIR:-/tmp/checkout-pgbouncer}"

if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer
  else
    echo "pgbouncer is not installed: sudo apt-get install pgbouncer" >&2
    exit 1
  fi
fi
bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

if pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; then
  echo "pgbouncer: already listening on 127.0.0.1:$port"
  exit 0
fi

mkdir -p "$dir"
# Trust auth, as the local test Postgres: the user names must still be listed.
cat >"$dir/userlist.txt" <<USERS
"postgres" ""
"shop_limited" ""
USERS
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
; The test suite runs many instances at once: clients queue here for a server connection.
max_client_conn = 1000
default_pool_size = 20
; Startup parameters some drivers send that PgBouncer cannot track per client.
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI

if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  "$bin" -d -u postgres "$dir/pgbouncer.ini"
else
  "$bin" -d "$dir/pgbouncer.ini"
fi
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null && break
  sleep 0.2
done
pg_isready -h 127.0.0.1 -p "$port" -q || { echo "pgbouncer did not start; see $dir/pgbouncer.log" >&2; exit 1; }
echo "pgbouncer: transaction pooling on 127.0.0.1:$port -> $pg_host:$pg_port"
