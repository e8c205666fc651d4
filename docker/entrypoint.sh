#!/usr/bin/env bash
# Entry point of every Airloop container (runtime, serving, mlflow targets; DockerOperator task containers).
#   1. load the secrets the init job generated (never baked into an image); variables already set win;
#   2. docker/wait_for.py: exit at once, naming it, when a required variable is missing; otherwise wait
#      (with a deadline) until the PostgreSQL / Redis / MLflow this command needs answer, instead of
#      crash-looping while they start;
#   3. exec the command (tini, PID 1, forwards signals to it).
set -euo pipefail

secrets=${AIRLOOP_SECRETS_FILE:-/opt/airflow/secrets/secrets.env}
if [[ -r $secrets ]]; then
  while IFS= read -r line; do
    [[ $line == export\ *=* ]] || continue
    kv=${line#export }
    key=${kv%%=*}
    [[ -n ${!key:-} ]] || export "$kv"
  done <"$secrets"
fi

if [[ $# -eq 0 ]]; then set -- airflow version; fi
python /opt/airloop/docker/wait_for.py "$@"
exec "$@"
