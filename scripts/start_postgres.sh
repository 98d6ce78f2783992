#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the shared-sweep tests; prints the URL to use.
# Installs Debian's postgresql when it is missing (needs root and the package registry).
set -euo pipefail
port=${1:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
data=$(mktemp -d /tmp/boltzmatch-pg.XXXXXX)
run=(bash -c)
if [ "$(id -u)" = 0 ]; then chown postgres "$data"; run=(su postgres -s /bin/bash -c); fi
"${run[@]}" "$bin/initdb -D $data -A trust -U postgres >/dev/null"
"${run[@]}" "$bin/pg_ctl -D $data -o '-c listen_addresses=127.0.0.1 -p $port -k $data' -l $data/log -w start >/dev/null"
echo "postgresql://postgres@127.0.0.1:$port/postgres"
