#!/bin/sh
# install-deps.sh - installs the Debian packages fluxloop builds and tests with, when missing.
# Build: compiler, pkg-config, Lua 5.4, libyaml, cJSON, libffi, libcurl. Tests: busted, and the
# real parts the specs start themselves: python3 (the Python bridge), procps (pgrep/ps in the
# isolation specs), chromium (the HTML report), slurm-wlm and munge (the sharding suite),
# curl (make bench compares fluxloop.http with the curl command), nodejs (the Node worker
# example of examples/process).
set -e
pkgs="build-essential pkg-config liblua5.4-dev lua5.4 libyaml-dev libcjson-dev libffi-dev libcurl4-openssl-dev libpcre2-dev
lua-busted procps python3 nodejs chromium slurm-wlm munge curl"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
