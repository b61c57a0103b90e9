#!/usr/bin/env bash
# Builds one image per service from deploy/docker/Dockerfile: every folder under services/
# and the gateway (when gateway/pyproject.toml exists), or the ones named. Each one's Python
# package is its folder name with "_" for "-".
#   deploy/docker/build.sh                    # all, tagged recovery/<service>:latest
#   REGISTRY=registry.example.org/recovery TAG=1.0.0 deploy/docker/build.sh goals risk
#   DRY_RUN=1 deploy/docker/build.sh          # print the commands only
set -euo pipefail
cd "$(dirname "$0")/../.."

registry=${REGISTRY:-recovery}
tag=${TAG:-latest}
if (($# == 0)); then
  set -- $(find services -mindepth 2 -maxdepth 2 -name pyproject.toml -printf '%h\n' \
    | sed 's|^services/||' | sort) $([[ -f gateway/pyproject.toml ]] && echo gateway)
fi

for service in "$@"; do
  source=services/$service
  [[ $service == gateway ]] && source=gateway
  [[ -f "$source/pyproject.toml" ]] || { echo "no service $source" >&2; exit 1; }
  command=(docker build -f deploy/docker/Dockerfile --build-arg "SERVICE=$service"
    --build-arg "PACKAGE=recovery.${service//-/_}" --build-arg "SOURCE=$source"
    -t "$registry/$service:$tag" .)
  if [[ -n "${DRY_RUN:-}" ]]; then
    echo "${command[*]}"
  else
    "${command[@]}"
  fi
done
