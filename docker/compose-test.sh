#!/usr/bin/env bash
# `make compose-test` (through docker/with-engine.sh, which starts a private engine when none runs and stops it
# after): the production stack end to end on a fresh machine, and the host restored after.
#   images (offline) -> tests/compose (stack up on the host network, the loop through Airflow's REST API,
#   down and up again) -> down -v. Nothing it starts outlives it: the EXIT trap takes the stack, its task
#   containers and volumes down; with-engine.sh then stops the engine it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
stamp() { echo "== compose-test: $1 at +$((SECONDS - T0)) s" >&2; }

WORK=$(mktemp -d /tmp/airloop-compose-test.XXXXXX)
PROJECT=${AIRLOOP_COMPOSE_PROJECT:-airloop-ci}
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
  rm -rf "$WORK"
  stamp "done"
  exit $rc
}
trap cleanup EXIT INT TERM

timeout 5 docker version >/dev/null 2>&1 || { echo "compose-test: no Docker engine (run it through docker/with-engine.sh)" >&2; exit 1; }

stamp "compose"
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"
else
  command -v docker-compose >/dev/null || docker/engine.sh apt-install docker-compose
  COMPOSE=docker-compose
fi
echo "compose-test: $($COMPOSE version | head -1)" >&2

stamp "images"
AIRLOOP_TEST_IMAGES=1 docker/images.sh

stamp "tests"
docker/hostnet-env.sh "$WORK/compose.env" "$PROJECT"
mkdir -p bench/results
AIRLOOP_COMPOSE="$COMPOSE" AIRLOOP_COMPOSE_ENV_FILE="$WORK/compose.env" AIRLOOP_COMPOSE_PROJECT=$PROJECT \
AIRLOOP_COMPOSE_RESULTS=${AIRLOOP_COMPOSE_RESULTS:-bench/results/compose.jsonl} \
  .venv/bin/python -m pytest -q -p no:cacheprovider -o log_cli=true -o log_cli_level=WARNING tests/compose \
  ${PYTEST_ARGS:-}
