#!/bin/sh
# run.sh INTERP - `make test-slurm`: spec/slurm/cluster_test.lua against a one-node Slurm
# cluster of its own, in a temporary folder. The spec stops the daemons itself; if it cannot
# (killed, crashed), this script ends whatever is left by the pids in that folder's pid files.
interp=$1
cd "$(dirname "$0")/../.." || exit 2
FLUXLOOP_SLURM_DIR=$(mktemp -d /tmp/fluxloop-slurm.XXXXXX) || exit 2
export FLUXLOOP_SLURM_DIR

cleanup() {
  for name in slurmd slurmctld munged; do
    pid=$(cat "$FLUXLOOP_SLURM_DIR/$name.pid" 2>/dev/null)
    # Only a live process that is that daemon (a pid file can outlive its process).
    if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
      echo "test-slurm: $name (pid $pid) was still running; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  rm -rf "$FLUXLOOP_SLURM_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sh spec/run.sh "$interp" --pattern=_test spec/slurm
