#!/usr/bin/env bash
# A private Docker engine for `make images` / `make compose-*` on a machine that has none running.
#
#   docker/engine.sh start   install docker.io if missing, start dockerd, print `export DOCKER_HOST=...`
#   docker/engine.sh stop    stop it (containers first), unmount what it left, remove its run folder
#   docker/engine.sh host    print the DOCKER_HOST to use (an engine already reachable wins)
#   docker/engine.sh apt-install PKG...   apt-get install, updating the lists first if needed
#
# The engine leaves the host's network alone: --bridge=none --iptables=false --ip-forward=false (no docker0,
# no NAT or FORWARD rules); containers use `network_mode: host` (docker/compose.hostnet.yaml) or none.
# Its images live in $AIRLOOP_IMAGE_CACHE/engine (kept between runs on purpose: the image build cache;
# `make images-clean` removes it). Its sockets, pid file and exec root live in $AIRLOOP_ENGINE_RUN.
set -euo pipefail

CACHE=${AIRLOOP_IMAGE_CACHE:-/var/cache/airloop-images}
RUN=${AIRLOOP_ENGINE_RUN:-/run/airloop-docker}
SOCK=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid

# apt-get install, refreshing the package lists first when they are missing or stale (a fresh machine)
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}

reachable() { DOCKER_HOST=$1 timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

host() {
  if [[ -n ${DOCKER_HOST:-} ]] && reachable "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return; fi
  if [[ -S /var/run/docker.sock ]] && reachable unix:///var/run/docker.sock; then echo unix:///var/run/docker.sock; return; fi
  echo "unix://$SOCK"
}

start() {
  local found; found=$(host)
  if [[ $found != "unix://$SOCK" ]] || reachable "$found"; then echo "export DOCKER_HOST=$found"; return; fi
  if ! command -v dockerd >/dev/null; then
    echo "engine: installing Debian's docker.io (needs root and the Debian mirror)" >&2
    apt_install docker.io
  fi
  unmount_leftovers  # a previous engine killed without `stop` (e.g. its session ended) may have left mounts
  rm -f "$PIDFILE" "$SOCK"
  mkdir -p "$RUN" "$CACHE/engine"
  # the engine must not touch the host's network: no bridge, no iptables, no ip_forward
  dockerd --data-root "$CACHE/engine" --exec-root "$RUN/exec" --pidfile "$PIDFILE" -H "unix://$SOCK" \
    --iptables=false --ip6tables=false --ip-forward=false --bridge=none --storage-driver=overlay2 \
    >"$RUN/dockerd.log" 2>&1 &
  local deadline=$((SECONDS + 60))
  until reachable "unix://$SOCK"; do
    if ((SECONDS > deadline)) || ! kill -0 $! 2>/dev/null; then
      echo "engine: dockerd did not come up; its log:" >&2; tail -20 "$RUN/dockerd.log" >&2; exit 1
    fi
    sleep 0.2
  done
  echo "engine: dockerd $(DOCKER_HOST=unix://$SOCK docker version --format '{{.Server.Version}}') on unix://$SOCK" >&2
  echo "export DOCKER_HOST=unix://$SOCK"
}

# what dockerd can leave behind: netns and overlay mounts under its exec root / data root
unmount_leftovers() {
  { grep -E " ($RUN|$CACHE/engine)/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

stop() {
  [[ -f $PIDFILE ]] || { rm -rf "$RUN"; return 0; }
  local pid; pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    local running; running=$(DOCKER_HOST=unix://$SOCK docker ps -q 2>/dev/null || true)
    [[ -z $running ]] || DOCKER_HOST=unix://$SOCK docker rm -f $running >/dev/null 2>&1 || true
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS < deadline)) || { kill -9 "$pid" 2>/dev/null || true; break; }
      sleep 0.2
    done
  fi
  unmount_leftovers
  rm -rf "$RUN"
  echo "engine: stopped" >&2
}

case ${1:-} in
  apt-install) shift; apt_install "$@" ;;
  start) start ;;
  stop) stop ;;
  host) host ;;
  *) echo "usage: $0 start|stop|host" >&2; exit 2 ;;
esac
