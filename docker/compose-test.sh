#!/usr/bin/env bash
# `make compose-test`: the production stack end to end on a fresh machine, and the host restored after.
#   engine (private dockerd, --bridge=none) -> images (offline) -> tests/compose (stack up on the host
#   network, the loop through Airflow's REST API, down and up again) -> down -v, engine stopped.
# Nothing it starts outlives it: the EXIT trap takes the stack down and stops the engine it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
stamp() { echo "== compose-test: $1 at +$((SECONDS - T0)) s" >&2; }

WORK=$(mktemp -d /tmp/airloop-compose-test.XXXXXX)
PROJECT=${AIRLOOP_COMPOSE_PROJECT:-airloop-ci}
started_engine=0
COMPOSE=""

cleanup() {
  local rc=$?
  stamp "teardown (exit status $rc)"
  if [[ -n $COMPOSE && ${AIRLOOP_COMPOSE_KEEP:-0} != 1 ]]; then
    $COMPOSE -p "$PROJECT" -f docker-compose.yaml -f docker/compose.hostnet.yaml --env-file "$WORK/compose.env" \
      down -v --remove-orphans >/dev/null 2>&1 || true
    docker ps -aq --filter label=airloop.task_id | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume rm "$PROJECT-lake" >/dev/null 2>&1 || true
  fi
  if [[ $started_engine == 1 && ${AIRLOOP_COMPOSE_KEEP:-0} != 1 ]]; then docker/engine.sh stop || true; fi
  rm -rf "$WORK"
  stamp "done"
  exit $rc
}
trap cleanup EXIT INT TERM

stamp "engine"
if [[ -z ${DOCKER_HOST:-} ]] || ! timeout 5 docker version >/dev/null 2>&1; then
  [[ -S ${AIRLOOP_ENGINE_RUN:-/run/airloop-docker}/docker.sock ]] || started_engine=1
  eval "$(docker/engine.sh start)"
fi
export DOCKER_HOST

stamp "compose"
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"
else
  command -v docker-compose >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >&2
  COMPOSE=docker-compose
fi
echo "compose-test: $($COMPOSE version | head -1)" >&2

stamp "images"
AIRLOOP_TEST_IMAGES=1 docker/images.sh

stamp "tests"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SOCK=${DOCKER_HOST#unix://}
{
  cat docker/compose.hostnet.env
  echo "POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
  echo "AIRLOOP_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
  echo "DOCKER_SOCKET=$SOCK"
  echo "DOCKER_GID=$(stat -c %g "$SOCK")"
  echo "AIRLOOP_RUNTIME_IMAGE=airloop-runtime:$VERSION"
  echo "AIRLOOP_SERVING_IMAGE=airloop-serving:$VERSION"
  echo "AIRLOOP_MLFLOW_IMAGE=airloop-mlflow:$VERSION"
  echo "AIRLOOP_POSTGRES_IMAGE=airloop-test-postgres:bookworm"
  echo "AIRLOOP_REDIS_IMAGE=airloop-test-redis:bookworm"
  echo "AIRLOOP_LAKE_VOLUME=$PROJECT-lake"
  echo "AIRLOOP_SERVING_WATCH_SECONDS=3"
  echo "AIRLOOP_DRIFT_POLL_SECONDS=5"
} >"$WORK/compose.env"
chmod 600 "$WORK/compose.env"
mkdir -p bench/results
AIRLOOP_COMPOSE="$COMPOSE" AIRLOOP_COMPOSE_ENV_FILE="$WORK/compose.env" AIRLOOP_COMPOSE_PROJECT=$PROJECT \
AIRLOOP_COMPOSE_RESULTS=${AIRLOOP_COMPOSE_RESULTS:-bench/results/compose.jsonl} \
  .venv/bin/python -m pytest -q -p no:cacheprovider -o log_cli=true -o log_cli_level=WARNING tests/compose \
  ${PYTEST_ARGS:-}
