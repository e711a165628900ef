-- make test-slurm: a real one-node Slurm cluster runs examples/slurm (an array of 4 shards and
-- the merge chained with --dependency=afterok), and the merged folder must equal what one
-- machine writes for the same experiment.
local P = require("support.project")
local T = require("support.traces")
local C = require("slurm.cluster")

local REPO = require("fluxloop.fs").getcwd()
local SHARDS = 4

local S = require("support.sharded")
local AGENT = S.agent(5)
local inputs = S.inputs

describe("examples/slurm on a one-node Slurm cluster", function()
  local cluster, dir, array_id, merge_id

  setup(function()
    dir = P.project({ name = "slurm", iterations = 7, inputs = inputs(6), agent = AGENT }) -- 42 runs
    -- spec/slurm/run.sh gives the cluster its folder, and cleans it up whatever happens here.
    local home = os.getenv("FLUXLOOP_SLURM_DIR") or (dir .. "/cluster")
    os.execute("mkdir -p " .. P.quote(home))
    cluster = C.start(home)
  end)

  teardown(function()
    if cluster then C.stop(cluster) end
    P.remove(dir)
  end)

  it("submits the array of 4 shards and the merge chained after it", function()
    -- Two CPUs a task: --parallel comes from SLURM_CPUS_PER_TASK.
    local code, out = C.run(cluster, ("sh -c %s"):format(P.quote(("cd %s && FLUXLOOP=%s %s/examples/slurm/submit.sh "
      .. "--array=0-%d --cpus-per-task=%d"):format(P.quote(dir), P.quote(P.bin()), P.quote(REPO), SHARDS - 1,
      math.min(2, cluster.cpus)))))
    assert.are.equal(0, code, out)
    array_id, merge_id = out:match("^(%d+) (%d+)")
    assert.truthy(array_id, out)
  end)

  it("runs every shard and then the merge to completion", function()
    assert.truthy(merge_id, "nothing was submitted")
    local last
    local ok, err = pcall(C.wait, "the array and the merge job to finish", 300, function()
      local a, b = C.job_states(cluster, array_id), C.job_states(cluster, merge_id)
      last = table.concat(a, ",") .. " / " .. table.concat(b, ",")
      for _, s in ipairs(a) do if s == "PENDING" or s == "RUNNING" then return false end end
      return #a == SHARDS and #b == 1 and b[1] ~= "PENDING" and b[1] ~= "RUNNING"
    end)
    assert(ok, tostring(err) .. " (states " .. tostring(last) .. ")\n" .. C.logs(cluster))
    local a = C.job_states(cluster, array_id)
    assert.are.same({ "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED" }, a)
    local b, text = C.job_states(cluster, merge_id)
    assert.are.same({ "COMPLETED" }, b, text .. "\n" .. (P.read(dir .. "/slurm-" .. merge_id .. ".out") or ""))
  end)

  it("each array task ran one shard of the job's folder, with --parallel from SLURM_CPUS_PER_TASK", function()
    assert.truthy(array_id, "nothing was submitted")
    local exp = dir .. "/experiments/slurm_" .. array_id
    for k = 0, SHARDS - 1 do
      local s = P.read_json(("%s/shards/%d-of-%d/summary.json"):format(exp, k, SHARDS))
      assert.are.same({ index = k, count = SHARDS, job_id = array_id, traces = s.total_traces,
        experiment_planned_traces = 42 }, s.shard)
      assert.are.equal(math.min(2, cluster.cpus), s.parallel)
    end
    local log = P.read(dir .. "/slurm-" .. merge_id .. ".out") or ""
    assert.truthy(log:find("[INFO] Merged 4 shard(s): 42 runs, 41 succeeded, 1 failed. Results: " .. exp, 1, true), log)
  end)

  it("the merged folder equals a one-machine run of the same experiment (times and durations aside)", function()
    assert.truthy(array_id, "nothing was submitted")
    local exp = dir .. "/experiments/slurm_" .. array_id
    local code, _, err = P.run(dir, "run experiment --quiet --output-dir one")
    assert.are.equal(1, code, err)
    local one = P.experiments(dir, "one")[1]
    assert(T.same(one, exp))
    local a, b = P.read_json(one .. "/summary.json"), P.read_json(exp .. "/summary.json")
    for _, key in ipairs({ "total_traces", "successful", "failed", "planned_traces", "interrupted", "iterations",
      "inputs", "name", "target" }) do
      assert.are.same(a[key], b[key], key)
    end
    assert.is_nil(b.partial)
  end)
end)
