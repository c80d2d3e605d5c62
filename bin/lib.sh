# Shared set-up steps for bin/start, bin/test and .ci/run. Each step is idempotent and quick
# when there is nothing to do.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_system_packages() {
  local missing=()
  dpkg -s libmariadb-dev >/dev/null 2>&1 || missing+=(libmariadb-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing system packages: ${missing[*]} (mysqlclient compiles against them)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

apt_install() {  # package...: install Debian packages that are missing
  local missing=() package
  for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_node() {  # Node and npm build the pages; Debian's when the machine has none
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
}

ensure_assets() {  # the pages' JavaScript and CSS (npm ci, then esbuild), rebuilt when sources change
  ensure_node
  local stamp="$ROOT/node_modules/.weer-installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/package-lock.json" -nt "$stamp" ]; then
    say "Installing the pages' npm packages (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
  local built="$ROOT/frontend/static/frontend/dist/.built"
  if [ ! -f "$built" ] || [ -n "$(find "$ROOT/frontend/src" "$ROOT/frontend/build.mjs" "$ROOT/package-lock.json" -newer "$built" -print -quit 2>/dev/null)" ]; then
    say "Building the pages (esbuild)"
    (cd "$ROOT" && npm run --silent build)
    touch "$built"
  fi
}

ensure_chromium() {  # the browser tests drive Debian's Chromium (no test tool may download one)
  # fonts-nanum: Korean glyphs for the screenshots (a server has no CJK font by default)
  apt_install chromium fonts-nanum
}

python_311() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return
    fi
  done
  echo "WeER needs Python 3.11 (python3.11 or python3)." >&2; exit 1
}

ensure_venv() {
  local stamp="$VENV/.weer-installed"
  [ -x "$VENV/bin/python" ] || { say "Creating $VENV"; "$(python_311)" -m venv "$VENV"; }
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] ||
    [ "$ROOT/constraints.txt" -nt "$stamp" ]; then
    say "Installing WeER and its dependencies into .venv"
    "$VENV/bin/pip" install -q --upgrade pip wheel
    "$VENV/bin/pip" install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

redis_up() { "$VENV/bin/python" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1).ping()' 2>/dev/null; }

ensure_redis() {
  redis_up && return
  # Only the default local server is started here; a Redis on another port is someone else's.
  if command -v redis-server >/dev/null 2>&1 &&
    [[ "$REDIS_URL" =~ ^redis://(127\.0\.0\.1|localhost)(:6379)?(/|$) ]]; then
    say "Starting a local redis-server (keeps nothing on disk)"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/weer.log
    for _ in $(seq 50); do redis_up && return; sleep 0.1; done
  fi
  echo "No Redis at $REDIS_URL. Install one (Debian: apt-get install redis-server) or set REDIS_URL." >&2
  exit 1
}

demo_settings() {  # the environment bin/start runs the system with (tests/test_demo_exposure.py reads it)
  # Demo data and keys generated once into var/secrets.env (project/demo_secrets.py); never
  # Django's debug mode, whose error pages show the settings to whoever sends a bad request.
  export DEMO=true DEBUG=false
  export WEB_BIND="${WEB_BIND:-127.0.0.1}"  # the web server: loopback unless told otherwise
  export WEB_DRAIN_SECONDS="${WEB_DRAIN_SECONDS:-1}"  # Ctrl-C: honcho kills what is left after 5 s
  if [ -z "${UPSTREAM_BASE_URL:-}" ]; then
    # Polling the bundled simulator, which has no quota: poll often so changes show at once.
    export UPSTREAM_SERVICE_KEY="${UPSTREAM_SERVICE_KEY:-simulator-key}"
    export UPSTREAM_DAILY_CALL_BUDGET="${UPSTREAM_DAILY_CALL_BUDGET:-10000000}"
    export INGEST_BEDS_SECONDS="${INGEST_BEDS_SECONDS:-5}"
  fi
}

mariadb_up() { "$VENV/bin/python" -c 'import MySQLdb; MySQLdb.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2).close()' 2>/dev/null; }

ensure_mariadb() {
  mariadb_up && return
  if [ -x /usr/sbin/mariadbd ]; then
    say "Starting the local MariaDB server"
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 100); do mariadb_up && return; sleep 0.2; done
  fi
  echo "No MariaDB at 127.0.0.1:3306 (root, no password). Install mariadb-server or start it." >&2
  exit 1
}
