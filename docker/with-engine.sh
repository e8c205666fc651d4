#!/usr/bin/env bash
# Run a command with DOCKER_HOST set to a reachable Docker engine: $DOCKER_HOST or the system socket when
# they answer, else a private engine (docker/engine.sh) started for the command and stopped after it, by
# its PID, whatever the command's outcome. Its images stay in $AIRLOOP_IMAGE_CACHE/engine (the build cache).
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER_HOST=$(docker/engine.sh host)
export DOCKER_HOST
started=0
if ! timeout 5 docker version >/dev/null 2>&1; then
  eval "$(docker/engine.sh start)"
  started=1
fi
stop() { if [[ $started == 1 && ${AIRLOOP_ENGINE_KEEP:-0} != 1 ]]; then docker/engine.sh stop; fi; }
trap stop EXIT
"$@"
