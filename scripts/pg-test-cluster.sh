#!/usr/bin/env bash
# scripts/pg-test-cluster.sh start DIR [PORT] | stop DIR
#
# A throwaway PostgreSQL cluster for the server's tests: `start` runs initdb in DIR (trust
# authentication, loopback only), starts the server on 127.0.0.1:PORT (default 55432) and
# prints the URL the tests read from RECO_TEST_POSTGRES_URL; `stop` stops it. Uses the newest
# PostgreSQL server binaries under /usr/lib/postgresql. initdb refuses to run as root, so as
# root the cluster belongs to the `postgres` user.
set -euo pipefail
cmd="${1:?usage: pg-test-cluster.sh start DIR [PORT] | stop DIR}"
dir="${2:?a directory for the cluster}"
port="${3:-55432}"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi
as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as "$bin/initdb" -D "$dir" -U reco --auth=trust -E UTF8 --no-instructions > "$dir.initdb.log"
    fi
    as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start > /dev/null
    echo "postgres://reco@127.0.0.1:$port/postgres"
    ;;
  stop)
    as "$bin/pg_ctl" -D "$dir" -m fast -w stop > /dev/null
    ;;
  *)
    echo "unknown command $cmd (start or stop)" >&2
    exit 2
    ;;
esac
