-- --shard K/N and --shard auto: each shard runs its share of the plan into
-- <name>_<job id>/shards/K-of-N/, with global trace ids; --resume and --retry-failed per shard.
local P = require("support.project")

-- 5 inputs x 3 iterations of support.sharded's experiment.
local S = require("support.sharded")
local AGENT = S.agent()
local inputs = S.inputs

local function project(iterations, n_inputs)
  return P.project({ name = "sh", iterations = iterations or 3, inputs = inputs(n_inputs or 5), agent = AGENT })
end

local function trace_numbers(path)
  local ks = {}
  for _, row in ipairs(P.read_jsonl(path)) do ks[#ks + 1] = tonumber(row.trace_id:match("%d+")) end
  return ks
end

local function run_id(id) return "FLUXLOOP_RUN_ID=" .. id end

describe("--shard", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("shard K runs the plan indices i with i mod N = K, under their global trace ids", function()
    dir = project()
    for k = 0, 3 do
      local code, _, err = P.run(dir, ("run experiment --no-progress --shard %d/4"):format(k), run_id("j1"))
      assert.are.equal(k == 3 and 1 or 0, code, err) -- q3's failing run, trace_008, is shard 3's
      assert.truthy(err:find(("Shard %d-of-4: %d of the 15 runs"):format(k, k < 3 and 4 or 3), 1, true), err)
    end
    local seen = {}
    for k = 0, 3 do
      local shard_dir = ("%s/experiments/sh_j1/shards/%d-of-4"):format(dir, k)
      local ks = trace_numbers(shard_dir .. "/trace_summary.jsonl")
      assert.are.same(ks, trace_numbers(shard_dir .. "/traces.jsonl"))
      for i, t in ipairs(ks) do
        assert.are.equal(k, (t - 1) % 4)
        assert.are.equal(k + 1 + 4 * (i - 1), t)
        seen[t] = (seen[t] or 0) + 1
      end
      local plan = P.read_json(shard_dir .. "/plan.json")
      assert.are.same({ index = k, count = 4, job_id = "j1", traces = #ks, experiment_planned_traces = 15 }, plan.shard)
      assert.are.equal(15, plan.planned_traces)
      local s = P.read_json(shard_dir .. "/summary.json")
      assert.are.equal(#ks, s.total_traces)
      assert.are.equal(#ks, s.planned_traces)
      assert.are.equal(k, s.shard.index)
      assert.is_truthy(P.read(shard_dir .. "/config.yaml"))
    end
    for t = 1, 15 do assert.are.equal(1, seen[t], t) end
  end)
end)

describe("--shard (exit codes and bad values)", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("exits 0 for a shard whose runs all succeeded, 1 when one of its runs failed", function()
    dir = project()
    -- trace_008 (q3, iteration 1) fails: 8-1 = 7, 7 mod 2 = 1.
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --shard 0/2", run_id("e"))))
    assert.are.equal(1, (P.run(dir, "run experiment --quiet --shard 1/2", run_id("e"))))
  end)

  it("a shard given twice runs once: the second stops before writing anything", function()
    dir = project()
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --shard 0/2", run_id("twice"))))
    local shard_dir = dir .. "/experiments/sh_twice/shards/0-of-2"
    local before = P.read(shard_dir .. "/traces.jsonl")
    local summary = P.read(shard_dir .. "/summary.json")
    local code, _, err = P.run(dir, "run experiment --quiet --shard 0/2", run_id("twice"))
    assert.are.equal(2, code)
    assert.truthy(err:find("shard 0-of-2 of job twice already ran (or is running) in " .. shard_dir, 1, true), err)
    assert.truthy(err:find("--resume " .. shard_dir, 1, true), err)
    assert.are.equal(before, P.read(shard_dir .. "/traces.jsonl"))
    assert.are.equal(summary, P.read(shard_dir .. "/summary.json"))
  end)

  local bad = {
    { "--shard 4/4", run_id("x"), "--shard 4/4: shard K must be from 0 to N-1 = 3 (shards count from 0), got 4" },
    { "--shard 0/0", run_id("x"), "--shard 0/0: the number of shards N must be at least 1, got 0" },
    { "--shard one/two", run_id("x"), "--shard: expected K/N" },
    { "--shard 1/2", "", "--shard 1/2: the shards of one experiment share a folder named after their job, but "
      .. "neither SLURM_ARRAY_JOB_ID nor FLUXLOOP_RUN_ID is set" },
    { "--shard auto", "", "--shard auto: neither SLURM_ARRAY_TASK_ID" },
    { "--shard auto", "JOB_COMPLETION_INDEX=1 FLUXLOOP_RUN_ID=x",
      "--shard auto: JOB_COMPLETION_INDEX is set but FLUXLOOP_SHARDS is not" },
    { "--shard 1/2", run_id("'a b'"), "FLUXLOOP_RUN_ID 'a b': a job id" },
  }
  for _, case in ipairs(bad) do
    it(("refuses %s (%s) with exit 2 and no folder"):format(case[1], case[2]), function()
      dir = project()
      local code, _, err = P.run(dir, "run experiment " .. case[1], "env -u SLURM_ARRAY_JOB_ID " .. case[2])
      assert.are.equal(2, code)
      assert.truthy(err:find("fluxloop: error: " .. case[3], 1, true), err)
      assert.are.same({}, P.experiments(dir))
    end)
  end

  it("auto reads a Slurm array task (SLURM_ARRAY_JOB_ID names the folder)", function()
    dir = project()
    local env = "SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=0 "
      .. "SLURM_ARRAY_TASK_MAX=2 FLUXLOOP_RUN_ID=ignored"
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --shard auto", env)))
    assert.are.same({ 3, 6, 9, 12, 15 }, trace_numbers(dir .. "/experiments/sh_77/shards/2-of-3/trace_summary.jsonl"))
  end)

  it("auto reads a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with FLUXLOOP_SHARDS", function()
    dir = project()
    local env = "JOB_COMPLETION_INDEX=0 FLUXLOOP_SHARDS=5 FLUXLOOP_RUN_ID=kjob"
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --shard auto", env)))
    assert.are.same({ 1, 6, 11 }, trace_numbers(dir .. "/experiments/sh_kjob/shards/0-of-5/trace_summary.jsonl"))
  end)
end)

describe("--shard with --resume and --retry-failed", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("--resume of a shard killed with kill -9 runs only that shard's missing traces", function()
    dir = project(40, 5) -- 200 runs, 100 per shard
    local args = "run experiment --quiet --parallel 2 --shard 1/2"
    P.run_signalled(dir, args, { 0.4 }, "KILL", "PASS=1 AGENT_MS=20 " .. run_id("k9"))
    local shard_dir = dir .. "/experiments/sh_k9/shards/1-of-2"
    local before = #trace_numbers(shard_dir .. "/trace_summary.jsonl")
    assert.is_true(before < 100, "the kill came before the end")
    assert.is_nil(P.read(shard_dir .. "/summary.json"))
    local code, _, err = P.run(dir, "run experiment --no-progress --resume " .. P.quote(shard_dir), "PASS=1")
    assert.are.equal(0, code, err)
    assert.truthy(err:find(("Resuming %s: %d of 100 traces to run"):format(shard_dir, 100 - before), 1, true), err)
    local ks = trace_numbers(shard_dir .. "/trace_summary.jsonl")
    assert.are.equal(100, #ks)
    for i, t in ipairs(ks) do assert.are.equal(2 * i, t) end
    local s = P.read_json(shard_dir .. "/summary.json")
    assert.are.same({ 100, 100, false, 1 }, { s.total_traces, s.planned_traces, s.interrupted, s.shard.index })
  end)

  it("--resume EXPERIMENT_DIR with --shard finds the shard's folder (a requeued array task)", function()
    dir = project()
    P.run(dir, "run experiment --quiet --shard 0/2", run_id("rq"))
    local exp = dir .. "/experiments/sh_rq"
    local code, _, err = P.run(dir, "run experiment --no-progress --shard 0/2 --resume " .. P.quote(exp), run_id("rq"))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("Resuming " .. exp .. "/shards/0-of-2: 0 of 8 traces to run", 1, true), err)
    local code2, _, err2 = P.run(dir, "run experiment --quiet --shard 1/2 --resume " .. P.quote(exp .. "/shards/0-of-2"),
      run_id("rq"))
    assert.are.equal(2, code2)
    assert.truthy(err2:find("is shard 0-of-2, not shard 1-of-2", 1, true), err2)
  end)

  it("--retry-failed of a shard runs only its own failed traces again", function()
    dir = project()
    assert.are.equal(1, (P.run(dir, "run experiment --quiet --shard 1/2", run_id("rf"))))
    local shard_dir = dir .. "/experiments/sh_rf/shards/1-of-2"
    local code, _, err = P.run(dir, "run experiment --no-progress --retry-failed " .. P.quote(shard_dir), "PASS=1")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("Retrying failed traces in " .. shard_dir .. ": 1 of 7 traces to run", 1, true), err)
    local rows = P.read_jsonl(shard_dir .. "/trace_summary.jsonl")
    assert.are.equal(7, #rows)
    for _, row in ipairs(rows) do assert.is_true(row.success, row.trace_id) end
    assert.are.equal(7, P.read_json(shard_dir .. "/summary.json").successful)
  end)
end)
