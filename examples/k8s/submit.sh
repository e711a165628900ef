#!/bin/sh
# submit.sh [RUN_ID] - runs examples/k8s: the Indexed Job of shards, then, once every index has
# succeeded, the merge Job. RUN_ID (default: the time) names the experiment folder
# <name>_<RUN_ID> on the shared volume; use a new one for each submission.
# Needs kubectl pointed at the cluster and the claim fluxloop-results.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
run_id=${1:-$(date -u +%Y%m%dT%H%M%S)}

# wait_job NAME: until the Job is Complete (exit 0) or Failed (exit 1).
wait_job() {
  while :; do
    state=$(kubectl get job "$1" -o jsonpath='{.status.conditions[?(@.status=="True")].type}')
    case " $state " in
      *" Complete "*) return 0 ;;
      *" Failed "*) echo "submit.sh: job $1 failed; see kubectl describe job $1" >&2; return 1 ;;
    esac
    sleep 10
  done
}

kubectl delete job fluxloop-shards fluxloop-merge --ignore-not-found
sed "s/\"RUN_ID\"/\"$run_id\"/" "$here/shards-job.yaml" | kubectl apply -f -
wait_job fluxloop-shards
sed "s/\"RUN_ID\"/\"$run_id\"/" "$here/merge-job.yaml" | kubectl apply -f -
wait_job fluxloop-merge
echo "merged: the experiment folder *_$run_id on the volume fluxloop-results"
