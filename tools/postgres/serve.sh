#!/usr/bin/env bash
# A throwaway PostgreSQL (Debian's package) on 127.0.0.1:PORT with its data in DIR, for the local stack
# and the tests: initdb (trust auth, user postgres) as an unprivileged user, start, and once WATCHED_PID is
# gone, stop and remove DIR. Runs in the foreground; the caller backgrounds it.
#   tools/postgres/serve.sh DIR PORT WATCHED_PID
set -euo pipefail
dir=$1 port=$2 watched=$3
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
# initdb refuses root: as root, the cluster belongs to the postgres user the package made.
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
"${as_owner[@]}" "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >"$dir.initdb.log" 2>&1
# Every user is trusted but one, `rotating`, whose password is checked: the tests of a rotated
# password (the mirror reads its secret again when the server refuses it) log in as that one.
sed -i '1i host all rotating 127.0.0.1/32 scram-sha-256' "$dir/pg_hba.conf"
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir" "$dir.initdb.log"
}
trap stop EXIT
trap 'exit 0' TERM INT
while kill -0 "$watched" 2>/dev/null; do sleep 0.3; done
