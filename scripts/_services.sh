# Sourced by scripts/test: start a throwaway PostgreSQL and Redis on 127.0.0.1 from Debian's
# packages (installing them when missing and we are root), export where they listen, and stop
# them when the calling script exits.
#
#   start_services            -> PIAUTH_TEST_POSTGRES_PORT, PIAUTH_TEST_POSTGRES_HOST,
#                                PIAUTH_TEST_REDIS_URL (unset when a service is not available)
#
# Under CI=true a service that cannot be started is an error; elsewhere it is a warning and
# the tests that need it skip.

_services_dir=""
_pg_bin=""
_pg_as=()

_free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  if [ -z "${_apt_updated:-}" ]; then apt-get update -qq >/dev/null; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

_find_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_service_missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "ERROR: $1 (CI=true: a missing service is a failure)" >&2
    exit 1
  fi
  echo "WARNING: $1; the tests that need it will skip" >&2
}

stop_services() {
  [ -n "$_services_dir" ] || return 0
  if [ -f "$_services_dir/redis.pid" ]; then
    kill "$(cat "$_services_dir/redis.pid")" 2>/dev/null || true
  fi
  if [ -n "$_pg_bin" ] && [ -f "$_services_dir/pg/postmaster.pid" ]; then
    "${_pg_as[@]}" "$_pg_bin/pg_ctl" -D "$_services_dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$_services_dir"
  _services_dir=""
}

start_services() {
  _services_dir=$(mktemp -d /tmp/piauth-services.XXXXXX)
  chmod 755 "$_services_dir"
  trap stop_services EXIT

  # Redis
  command -v redis-server >/dev/null || _apt_install redis-server || true
  if command -v redis-server >/dev/null; then
    local redis_port; redis_port=$(_free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
      --daemonize yes --pidfile "$_services_dir/redis.pid" --dir "$_services_dir" \
      --logfile "$_services_dir/redis.log"
    for _ in $(seq 1 50); do
      redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
      export PIAUTH_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    else
      _service_missing "Redis did not start: $(tail -n 5 "$_services_dir/redis.log")"
    fi
  else
    _service_missing "redis-server is not installed"
  fi

  # PostgreSQL (initdb refuses to run as root: run the server as the postgres user then)
  _pg_bin=$(_find_pg_bin)
  if [ -z "$_pg_bin" ]; then _apt_install postgresql || true; _pg_bin=$(_find_pg_bin); fi
  if [ -n "$_pg_bin" ]; then
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      _pg_as=(runuser -u postgres --)
    fi
    mkdir -p "$_services_dir/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$_services_dir/pg"
    local pg_port; pg_port=$(_free_port)
    if "${_pg_as[@]}" "$_pg_bin/initdb" -D "$_services_dir/pg" -A trust -U postgres \
         >"$_services_dir/initdb.log" 2>&1 \
       && "${_pg_as[@]}" "$_pg_bin/pg_ctl" -D "$_services_dir/pg" -w -l "$_services_dir/pg/server.log" \
         -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $_services_dir/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
         start >/dev/null; then
      export PIAUTH_TEST_POSTGRES_HOST=127.0.0.1 PIAUTH_TEST_POSTGRES_PORT="$pg_port"
    else
      _service_missing "PostgreSQL did not start: $(tail -n 5 "$_services_dir/initdb.log" "$_services_dir/pg/server.log" 2>/dev/null)"
    fi
  else
    _service_missing "PostgreSQL is not installed"
  fi
}
