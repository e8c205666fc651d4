#!/usr/bin/env bash
# `make images`: build Airloop's images without a container registry.
#
#   1. base image (unless BASE_IMAGE is given): Debian bookworm minbase with python3 from Debian's packages
#      (debootstrap), imported with `docker import` as airloop-base:bookworm;
#   2. wheelhouse: every pin of requirements.txt as a wheel, downloaded on the host with the image's Python
#      (Debian's /usr/bin/python3 = 3.11.2; pip takes the CPU torch wheel this machine holds), cached per
#      requirements.txt hash in $AIRLOOP_IMAGE_CACHE;
#   3. docker build --network none of the three targets of docker/Dockerfile (runtime, serving, mlflow);
#   4. with AIRLOOP_TEST_IMAGES=1: PostgreSQL 15 and Redis images from the same base and Debian's packages,
#      stand-ins for the official images that the compose test cannot pull (docker/testing/).
# Prints the time of each stage. Uses $DOCKER_HOST (docker/engine.sh start gives a private engine).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${AIRLOOP_IMAGE_CACHE:-/var/cache/airloop-images}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WHEEL_PYTHON=${WHEEL_PYTHON:-/usr/bin/python3}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
TAG=${AIRLOOP_IMAGE_TAG:-$VERSION}
COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[[ -z $(git status --porcelain 2>/dev/null) ]] || COMMIT="$COMMIT-dirty"
mkdir -p "$CACHE"

stage() { STAGE=$1; STAGE_T0=$SECONDS; echo "== images: $1" >&2; }
done_stage() { echo "== images: $STAGE done in $((SECONDS - STAGE_T0)) s" >&2; }
T0=$SECONDS

if [[ -z ${BASE_IMAGE:-} ]]; then
  BASE_IMAGE=airloop-base:bookworm
  stage "base image $BASE_IMAGE"
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || docker/engine.sh apt-install debootstrap
    rootfs=$CACHE/rootfs.tmp
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,libgomp1,tini \
      bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
  fi
  done_stage
fi

stage "wheelhouse"
key=$(cat requirements.txt | sha1sum | cut -c1-12)
wheels=$CACHE/wheelhouse-$key
if [[ ! -f $wheels/.complete ]]; then
  image_py=$(docker run --rm --network none --entrypoint python3 "$BASE_IMAGE" -c 'import platform; print(platform.python_version())')
  host_py=$("$WHEEL_PYTHON" -c 'import platform; print(platform.python_version())')
  echo "wheelhouse: image Python $image_py, downloading with $WHEEL_PYTHON ($host_py)" >&2
  [[ ${image_py%.*} == "${host_py%.*}" ]] || { echo "images: $WHEEL_PYTHON is Python $host_py, the image has $image_py" >&2; exit 1; }
  rm -rf "$wheels" "$CACHE"/wheelhouse-*   # one wheelhouse at a time bounds the cache
  # async-timeout: redis needs it below Python 3.11.3 (Debian's 3.11.2); listed in case the host's Python is newer
  "$WHEEL_PYTHON" -m pip download -q --only-binary=:all: -r requirements.txt 'async-timeout==5.0.1' \
    -d "$wheels" ${AIRLOOP_WHEEL_PIP_ARGS:-} 2>&1 | grep -v "^WARNING: Location" >&2 || true
  if ls "$wheels" | grep -Eq '^nvidia_(cu|cuda)'; then
    echo "images: the wheelhouse holds CUDA wheels (a GPU torch build): point pip at the CPU torch wheel" >&2; exit 1
  fi
  n=$(ls "$wheels"/*.whl | wc -l)
  want=$(grep -c '==' requirements.txt)
  ((n >= want)) || { echo "images: wheelhouse has $n wheels, requirements.txt pins $want" >&2; exit 1; }
  touch "$wheels/.complete"
fi
rm -rf docker/wheelhouse
cp -al "$wheels" docker/wheelhouse 2>/dev/null || cp -a "$wheels" docker/wheelhouse
echo "wheelhouse: $(ls docker/wheelhouse/*.whl | wc -l) wheels, $(du -sh docker/wheelhouse | cut -f1)" >&2
done_stage

# The build stage (the pinned virtual environment) tagged per requirements hash: it stays the cache of the
# runtime stage, and the prune below can tell old environments (dangling images) from the current one.
for target in build runtime serving mlflow; do
  name=airloop-$target:$TAG
  [[ $target == build ]] && name=airloop-build:$key
  stage "$name"
  docker build -q --network none -f docker/Dockerfile --target "$target" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg AIRLOOP_VERSION="$VERSION" --build-arg GIT_COMMIT="$COMMIT" \
    -t "$name" . 2> >(grep -v -e "legacy builder is deprecated" -e "Install the buildx" -e "docs.docker.com/go/buildx" -e "^$" >&2) >/dev/null
  done_stage
done
rm -rf docker/wheelhouse

if [[ ${AIRLOOP_TEST_IMAGES:-0} == 1 ]]; then
  for name in postgres redis; do
    stage "airloop-test-$name (Debian packages on $BASE_IMAGE)"
    docker build -q --network host -f "docker/testing/$name.Dockerfile" --build-arg BASE_IMAGE="$BASE_IMAGE" \
      -t "airloop-test-$name:bookworm" docker/testing 2> >(grep -v -e "legacy builder is deprecated" -e "Install the buildx" -e "docs.docker.com/go/buildx" -e "^$" >&2) >/dev/null
    done_stage
  done
fi

# Bound the engine's disk: earlier builds' environments and layers (untagged, nothing built on them) go.
{ docker image ls --format '{{.Repository}}:{{.Tag}}' | grep '^airloop-build:' | grep -v ":$key\$" || true; } \
  | xargs -r docker rmi >/dev/null
docker image prune -f >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^airloop-' | grep -v '^airloop-build:' | sort >&2
echo "== images: all built in $((SECONDS - T0)) s" >&2
