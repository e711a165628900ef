#!/bin/sh
# submit.sh [SBATCH OPTIONS...] - submits the shard array (examples/slurm/shards.sbatch) and the
# merge chained after it with --dependency=afterok; run it from the project folder. Options go
# to the array's sbatch (they win over its #SBATCH lines), e.g. --array=0-15 --cpus-per-task=8.
# Prints "ARRAY_JOB_ID MERGE_JOB_ID".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
jid=$(sbatch --parsable "$@" "$here/shards.sbatch")
jid=${jid%%;*} # "id;cluster" on a multi-cluster setup
mid=$(sbatch --parsable --dependency=afterok:"$jid" "$here/merge.sbatch" "$jid")
echo "${jid} ${mid%%;*}"
