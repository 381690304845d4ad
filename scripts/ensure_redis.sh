#!/bin/sh
# Makes sure that redis-server is installed, for the DistributedPool tests, which start their own
# (on a Unix socket in a temporary folder, never a TCP port). Installs Debian's package when it is
# missing; as root directly, otherwise through sudo. Starts nothing.
set -eu
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
echo "Installing redis-server (Debian's package) for the DistributedPool tests"
if [ "$(id -u)" = 0 ]; then
  apt-get update && apt-get install -y --no-install-recommends redis-server
elif command -v sudo >/dev/null 2>&1; then
  sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server
else
  echo "error: redis-server is missing: install it with 'apt-get install redis-server'" >&2
  exit 1
fi
