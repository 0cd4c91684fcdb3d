#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) are installed, for
# tests/test_postgres.py. Idempotent: when they are present this returns at once.
# Installs Debian's `postgresql` package with apt-get (needs root or passwordless sudo);
# without either it only says so, and the test skips with that reason.
set -euo pipefail

find_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if bindir=$(find_bindir); then
    echo "postgres binaries: $bindir"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_postgres: apt-get not found; install PostgreSQL server binaries by hand" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "ensure_postgres: not root and no passwordless sudo; run: apt-get install postgresql" >&2
    exit 0
fi

echo "ensure_postgres: installing Debian's postgresql package..."
# Install the binaries only: the package must not create and start a system cluster.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/lookout-no-main.conf >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
bindir=$(find_bindir)
echo "postgres binaries: $bindir"
