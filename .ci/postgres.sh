#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the store tests and prints its DSN
# as the last line of stdout; everything else goes to stderr.
#
#   export GATEHOUSE_TEST_POSTGRES_DSN=$(bash .ci/postgres.sh | tail -1)
#
# The cluster listens on 127.0.0.1 only, port $PGPORT_TEST (default 55432),
# with trust authentication for loopback and its own Unix socket directory.
# It is a test fixture: fsync is off, data lives under $GATEHOUSE_PG_DIR
# (default /tmp/gatehouse-pg-<port>). Running the script again reuses a
# server already answering on the port, unless GATEHOUSE_CI_NO_REUSE is set
# (then it fails: .ci/run never reuses a server it did not start). Stop it with:
#   runuser -u postgres -- "$PGBIN/pg_ctl" -D "$GATEHOUSE_PG_DIR/data" stop
set -euo pipefail

PORT="${PGPORT_TEST:-55432}"
DB=gatehouse_test
DIR="${GATEHOUSE_PG_DIR:-/tmp/gatehouse-pg-${PORT}}"
DSN="postgres://postgres@127.0.0.1:${PORT}/${DB}?sslmode=disable"

log() { echo "postgres.sh: $*" >&2; }

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [[ -z "$PGBIN" || ! -x "$PGBIN/initdb" ]]; then
	log "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
	exit 1
fi

# PostgreSQL refuses to run as root; run the server tools as the postgres user.
as_pg() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres; }

if ready; then
	if [[ -n "${GATEHOUSE_CI_NO_REUSE:-}" ]]; then
		log "something already answers on 127.0.0.1:${PORT}, and GATEHOUSE_CI_NO_REUSE forbids reusing a server this run did not start"
		exit 1
	fi
	log "reusing the server already listening on 127.0.0.1:${PORT}"
else
	mkdir -p "$DIR"
	if [[ "$(id -u)" -eq 0 ]]; then
		chown postgres: "$DIR"
	fi
	chmod 700 "$DIR"
	if [[ ! -s "$DIR/data/PG_VERSION" ]]; then
		log "initdb in $DIR/data ($PGBIN)"
		rm -rf "$DIR/data"
		as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=reject >&2
		# Trust loopback only; everything else is rejected.
		cat >"$DIR/data/pg_hba.conf" <<-EOF
			local all all              trust
			host  all all 127.0.0.1/32 trust
		EOF
		cat >>"$DIR/data/postgresql.conf" <<-EOF
			# gatehouse test fixture
			listen_addresses = '127.0.0.1'
			port = ${PORT}
			unix_socket_directories = '${DIR}'
			max_connections = 200
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		EOF
		chown postgres: "$DIR/data/pg_hba.conf" "$DIR/data/postgresql.conf"
	fi
	log "starting PostgreSQL on 127.0.0.1:${PORT}"
	if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 300 start >&2; then
		log "server failed to start; last log lines:"
		tail -n 30 "$DIR/server.log" >&2 || true
		exit 1
	fi
fi

# Generous bounds (5 minutes here and for pg_ctl above) guard against a
# hang; a loaded machine that starts the server slowly is not a failure.
for _ in $(seq 1 600); do
	ready && break
	sleep 0.5
done
if ! ready; then
	log "server on 127.0.0.1:${PORT} is not ready"
	exit 1
fi

psql_pg() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
if [[ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" != 1 ]]; then
	log "creating database ${DB}"
	psql_pg -c "CREATE DATABASE ${DB}" >&2
fi

echo "$DSN"
