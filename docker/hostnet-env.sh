#!/usr/bin/env bash
# Write the env file of a host-network stack (docker/compose.hostnet.yaml) to $1: loopback addresses and
# ports, fresh random passwords, this engine's socket, the images `make images` built (test stand-ins for
# PostgreSQL and Redis). Used by the compose test and the container benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
project=${2:-airloop-ci}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SOCK=${DOCKER_HOST#unix://}
{
  cat docker/compose.hostnet.env
  echo "POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
  echo "AIRLOOP_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
  echo "AIRLOOP_SERVING_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  echo "DOCKER_SOCKET=$SOCK"
  echo "DOCKER_GID=$(stat -c %g "$SOCK")"
  echo "AIRLOOP_RUNTIME_IMAGE=airloop-runtime:$VERSION"
  echo "AIRLOOP_SERVING_IMAGE=airloop-serving:$VERSION"
  echo "AIRLOOP_MLFLOW_IMAGE=airloop-mlflow:$VERSION"
  echo "AIRLOOP_POSTGRES_IMAGE=airloop-test-postgres:bookworm"
  echo "AIRLOOP_REDIS_IMAGE=airloop-test-redis:bookworm"
  echo "AIRLOOP_LAKE_VOLUME=$project-lake"
  echo "AIRLOOP_SERVING_WATCH_SECONDS=3"
  echo "AIRLOOP_DRIFT_POLL_SECONDS=5"
} >"$out"
chmod 600 "$out"
