#!/bin/sh
# A small migration tool of an app's own, for the tests of `database.tool: command`: turnout
# knows nothing of its files or its table, and must find out what it changed.
#
#   app_migrate.sh up          applies every NNNN.up.sql of $APP_MIGRATIONS not yet applied
#   app_migrate.sh status      prints the newest applied version (0 when none)
#   app_migrate.sh down TO     reverts the versions above TO with their NNNN.down.sql
#
# The database is $DATABASE_URL; the versions it applied are in its own table app_migrations.
# Each migration runs in one transaction with its row. Only sh, psql and coreutils.
set -eu

: "${DATABASE_URL:?set DATABASE_URL}"
dir=${APP_MIGRATIONS:-migrations}

sql() { psql "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }

sql -c "CREATE TABLE IF NOT EXISTS app_migrations (version int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())" >/dev/null

current() { sql -c "SELECT coalesce(max(version), 0) FROM app_migrations"; }

case "${1:-}" in
  status)
    current
    ;;
  up)
    for f in $(ls "$dir" | grep -E '^[0-9]+\.up\.sql$' | sort -n); do
      v=${f%%.*}
      v=$(expr "$v" + 0)
      if [ "$(sql -c "SELECT count(*) FROM app_migrations WHERE version = $v")" = 0 ]; then
        echo "applying $f"
        { cat "$dir/$f"; echo; echo "INSERT INTO app_migrations (version) VALUES ($v);"; } |
          sql --single-transaction -f - >/dev/null
      fi
    done
    echo "at $(current)"
    ;;
  down)
    to=${2:?down needs the version to go back to}
    for v in $(sql -c "SELECT version FROM app_migrations WHERE version > $to ORDER BY version DESC"); do
      f=$(ls "$dir" | grep -E "^0*$v\.down\.sql$" | head -n 1)
      [ -n "$f" ] || { echo "no down file for version $v" >&2; exit 1; }
      echo "reverting $v"
      { cat "$dir/$f"; echo; echo "DELETE FROM app_migrations WHERE version = $v;"; } |
        sql --single-transaction -f - >/dev/null
    done
    echo "at $(current)"
    ;;
  *)
    echo "usage: app_migrate.sh up | status | down TO" >&2
    exit 2
    ;;
esac
