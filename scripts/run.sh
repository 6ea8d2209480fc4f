#!/usr/bin/env bash
# make run: find or start a PostgreSQL, migrate, mint an admin token once,
# index the sample runbooks and serve. Order of preference for the database:
#   1. DATABASE_URL, as given;
#   2. the local server on 127.0.0.1:$PGPORT (default 5432; database "opsbot",
#      created if missing);
#   3. a private cluster under .data/pg made with the installed PostgreSQL
#      binaries, reachable only through a Unix socket in .data/pg (no TCP), so
#      that other local users cannot connect to it;
#   4. otherwise, say how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data
# Tokens inside are mode 600; when root, the private cluster runs as postgres
# and must be able to reach .data/pg, hence search (x) but not read for others.
chmod 711 .data

say() { printf 'opsbot: %s\n' "$*" >&2; }

find_pg_bin() { # find_pg_bin NAME: a PostgreSQL server binary, on PATH or Debian's versioned dirs
  command -v "$1" 2>/dev/null && return
  ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n1
}

as_owner() { # run a server binary as a non-root user: initdb and postgres refuse root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

local_cluster() {
  # The socket lives in the cluster's own directory (mode 700, owned by the
  # cluster's owner): only that user (and root) can reach it, which is what
  # makes trust authentication on it safe. There is no TCP listener at all.
  local initdb pg_ctl dir=.data/pg port=5433 sock
  initdb=$(find_pg_bin initdb); pg_ctl=$(find_pg_bin pg_ctl)
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    return 1
  fi
  sock="$(pwd)/$dir"
  if [ ! -s "$dir/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $dir"
    mkdir -p "$dir" && chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir" || return 1; fi
    as_owner "$initdb" -D "$dir" -U postgres --auth-local=trust --auth-host=reject -E UTF8 >/dev/null || return 1
  fi
  if as_owner "$pg_ctl" -D "$dir" status >/dev/null 2>&1 && grep -q 'listen_addresses=127' "$dir/postmaster.opts" 2>/dev/null; then
    say "restarting the private cluster without its TCP listener"
    as_owner "$pg_ctl" -D "$dir" -m fast -w stop >/dev/null || return 1
  fi
  if ! as_owner "$pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    say "starting the private cluster on a Unix socket in $dir (no TCP)"
    as_owner "$pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-c listen_addresses='' -p $port -k $sock" start >/dev/null || return 1
  fi
  DATABASE_URL="postgres://postgres@/opsbot?host=$sock&port=$port&sslmode=disable"
  ensure_db "$sock" "$port" || return 1
}

ensure_db() { # ensure_db HOST PORT: create database opsbot when missing (HOST may be a socket directory)
  local have
  have=$(psql -h "$1" -p "$2" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'opsbot'") || return 1
  if [ "$have" != 1 ]; then
    say "creating database opsbot on $1:$2"
    psql -h "$1" -p "$2" -U postgres -d postgres -qc "CREATE DATABASE opsbot" >/dev/null || return 1
  fi
}

local_port=${PGPORT:-5432}
if [ -n "${DATABASE_URL:-}" ]; then
  say "using DATABASE_URL"
elif command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p "$local_port" -q; then
  say "using the local PostgreSQL on 127.0.0.1:$local_port"
  DATABASE_URL="postgres://postgres@127.0.0.1:$local_port/opsbot?sslmode=disable"
  ensure_db 127.0.0.1 "$local_port" || { say "cannot create database opsbot on 127.0.0.1:$local_port (set DATABASE_URL)"; exit 1; }
elif ! local_cluster; then
  cat >&2 <<'MSG'
opsbot: no PostgreSQL found. Any one of these will do:
  - set DATABASE_URL=postgres://user:pass@host:5432/dbname
  - start a local server on 127.0.0.1:5432 (Debian: apt-get install postgresql && pg_ctlcluster 15 main start)
  - install the PostgreSQL server binaries (initdb, pg_ctl) and run make run again: it makes a private cluster under .data/
MSG
  exit 1
fi
export DATABASE_URL

./bin/opsbot migrate

# One admin token per database, kept (mode 600) so later runs can print it again.
key=$(printf '%s' "$DATABASE_URL" | sha256sum | cut -c1-12)
token_file=".data/admin-token-$key"
if [ ! -s "$token_file" ]; then
  (umask 077; ./bin/opsbot token create --user admin --admin --name "make run" | tail -n1 > "$token_file")
fi
token=$(cat "$token_file")

./bin/opsbot runbooks sync docs/runbooks

addr=${OPSBOT_ADDR:-127.0.0.1:8080}
cat <<MSG

  opsbot is starting on http://$addr
  API:        http://$addr/api/v1/conversations   (OpenAPI: http://$addr/api/v1/openapi.json)
  Dashboard:  http://$addr/admin
  Health:     http://$addr/healthz  http://$addr/readyz  http://$addr/metrics
  Admin token (keep it secret):
    $token

  Try:  curl -s -H "Authorization: Bearer $token" -X POST http://$addr/api/v1/conversations -d '{"title":"first"}'

MSG
exec ./bin/opsbot serve
