#!/usr/bin/env bash
# `make run`: create the development issuer's keys, migrate every service in the Procfile,
# then start NATS and the services with honcho. Ctrl-C stops them all and leaves nothing
# behind, so it can be started again at once.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROCFILE=deploy/local/Procfile
export PATH="$PWD/.venv/bin:$PATH"
export NATS_PORT="${NATS_PORT:-4222}" NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-8222}"
export RECOVERY_NATS_URL="${RECOVERY_NATS_URL:-nats://127.0.0.1:$NATS_PORT}"

# name port pairs of the HTTP services, read from the Procfile's `--port` arguments.
http_services() {
  local name command port
  while IFS=: read -r name command; do
    [[ -z "$name" || "$name" == \#* || "$command" != *"--port "* ]] && continue
    port="${command#*--port }"
    port="${port%% *}"
    echo "$name $(eval echo "$port")"
  done < "$PROCFILE"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mapfile -t services < <(http_services)
for port in "$NATS_PORT" "$NATS_MONITOR_PORT" $(printf '%s\n' "${services[@]}" | cut -d' ' -f2); do
  if listening "$port"; then
    echo "Port $port is already in use: is another 'make run' still running?" \
      "Stop it, or choose other ports (NATS_PORT, GOALS_PORT, ...)." >&2
    exit 1
  fi
done

mkdir -p var/nats
python -c 'from recovery.common.dev_issuer import DevIssuer; DevIssuer().ensure_keys()'
for module in $(grep -o 'recovery\.[a-z_]*\.main' "$PROCFILE" | sort -u); do
  echo "Migrating ${module%.main} ..."
  python -m recovery.common.migrate "$module"
done

banner() {
  echo
  echo "Recovery Platform (Ctrl-C stops everything):"
  local name port
  for entry in "${services[@]}"; do
    read -r name port <<<"$entry"
    printf '  %-14s http://127.0.0.1:%s   (API docs /docs, readiness /readyz)\n' "$name" "$port"
  done
  printf '  %-14s nats://127.0.0.1:%s   (monitoring http://127.0.0.1:%s)\n' nats \
    "$NATS_PORT" "$NATS_MONITOR_PORT"
  cat <<'EOF'
Development tokens (printed alone on stdout):
  make -s token ROLE=clinician SUB=staff-1 TEAMS=team-a
  make -s token ROLE=service_user SUB=su-1 PATIENT=su-1
EOF
  echo
}

# Says once when every service answers /readyz (or that one did not); ends with honcho.
announce_ready() {
  local supervisor=$1 deadline=$((SECONDS + 60)) entry name port pending
  while ((SECONDS < deadline)) && kill -0 "$supervisor" 2>/dev/null; do
    pending=""
    for entry in "${services[@]}"; do
      read -r name port <<<"$entry"
      python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$port/readyz" 2>/dev/null || pending+=" $name"
    done
    if [[ -z "$pending" ]]; then
      echo "==> all services ready"
      return
    fi
    sleep 0.5
  done
  kill -0 "$supervisor" 2>/dev/null && echo "==> not ready after 60 s:$pending (see the logs above)"
}

banner
announce_ready $$ &
status=0
honcho start -f "$PROCFILE" -d . --no-colour || status=$?
# honcho answers Ctrl-C by stopping every process and exiting 130: that is a clean stop.
((status == 130)) && status=0
exit "$status"
