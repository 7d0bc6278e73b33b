#!/bin/sh
# The Notefall image's entry point: one image runs every part of the cloud.
#
#   api                   the API on 0.0.0.0:8000 (migrations are NOT run here: see migrate)
#   worker [-c N] [-Q ..] a render/job worker (SIGTERM = warm shutdown, docs/renders.md)
#   beat                  the periodic-job scheduler: exactly one per deployment
#   flower [--basic-auth U:P]  Celery's monitor on 0.0.0.0:5555 (keep it private)
#   migrate               upgrade the database to the latest migration, once, then exit
#   wait-for-migrations   wait until the database is at the latest migration (init containers)
#   anything else         passed to `notefall` (e.g. `admin list-users`)
#
# Every setting comes from NOTEFALL_* variables (docs/operations.md). `exec` hands PID 1's
# child slot to the process itself, so tini's SIGTERM reaches it directly.
set -eu

tools="$(dirname "$0")/notefall-container.py"
command=${1:-api}
[ $# -gt 0 ] && shift

case "$command" in
api)
	exec notefall serve --no-migrate --host 0.0.0.0 --port 8000 "$@"
	;;
worker | beat)
	exec notefall "$command" "$@"
	;;
flower)
	exec notefall flower --address 0.0.0.0 --port 5555 "$@"
	;;
migrate)
	exec python "$tools" migrate "$@"
	;;
wait-for-migrations)
	exec python "$tools" wait-for-migrations "$@"
	;;
*)
	exec notefall "$command" "$@"
	;;
esac
