-- fluxloop merge: shards into the experiment folder's own files, equal to a one-machine run
-- (times and durations aside); and every way the shards can be unfit, refused with nothing written.
local P = require("support.project")
local T = require("support.traces")

local S = require("support.sharded")
local AGENT = S.agent()
local inputs = S.inputs

local function project(iterations, n_inputs)
  return P.project({ name = "mg", iterations = iterations or 3, inputs = inputs(n_inputs or 5), agent = AGENT })
end

-- Runs shard k of n of job `id` (extra: more flags) and returns its exit code.
local function shard(dir, k, n, id, extra, env)
  local code, _, err = P.run(dir, ("run experiment --quiet --shard %d/%d %s"):format(k, n, extra or ""),
    ("FLUXLOOP_RUN_ID=%s %s"):format(id, env or ""))
  assert(code == 0 or code == 1, err)
  return code
end

local function one_machine(dir, extra)
  local code, _, err = P.run(dir, "run experiment --quiet --output-dir one " .. (extra or ""))
  assert(code == 0 or code == 1, err)
  return P.experiments(dir, "one")[1]
end

-- The experiment folder's own files, name -> content (nil when absent).
local function merged_files(exp)
  local files = {}
  for _, name in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl", "config.yaml", "plan.json",
    "summary.json" }) do
    files[name] = P.read(exp .. "/" .. name)
  end
  return files
end

local function assert_nothing_merged(exp)
  assert.are.same({}, merged_files(exp))
  assert.is_false(require("fluxloop.fs").exists(exp .. "/.merge"))
end

describe("fluxloop merge", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("merges 4 shards into the folder one machine would have written", function()
    dir = project(7, 5)
    for k = 0, 3 do shard(dir, k, 4, "m1", k == 1 and "--parallel 3" or "") end
    local exp = dir .. "/experiments/mg_m1"
    local code, _, err = P.run(dir, "merge experiments/mg_m1")
    assert.are.equal(1, code, err) -- one run failed (q3, iteration 1), as in the one-machine run
    assert.truthy(err:find("[INFO] Merged 4 shard(s): 35 runs, 34 succeeded, 1 failed. Results: " .. exp, 1, true), err)
    local one = one_machine(dir)
    assert(T.same(one, exp))
    local a, b = P.read_json(one .. "/summary.json"), P.read_json(exp .. "/summary.json")
    for _, key in ipairs({ "name", "total_traces", "successful", "failed", "success_rate", "iterations", "inputs",
      "inputs_file", "planned_traces", "interrupted", "config_file", "target", "inputs_dropped" }) do
      assert.are.same(a[key], b[key], key)
    end
    assert.are.same({ count = 4, job_id = "m1", merged = 4 }, b.shards)
    assert.is_nil(b.partial)
    -- The statistics are over every run: each shard's durations, not an average of averages.
    local all = {}
    for _, row in ipairs(P.read_jsonl(exp .. "/trace_summary.jsonl")) do all[#all + 1] = row.duration_ms end
    table.sort(all)
    assert.are.equal(all[1], b.duration_ms.min)
    assert.are.equal(all[#all], b.duration_ms.max)
    assert.is_true(math.abs(b.duration_ms.p50 - all[18]) < 1e-6, "p50 is the middle of 35 runs")
    local plan = P.read_json(exp .. "/plan.json")
    assert.are.equal(P.read_json(exp .. "/shards/0-of-4/plan.json").plan_hash, plan.plan_hash)
    assert.is_nil(plan.shard)
    assert.are.equal(P.read(exp .. "/shards/2-of-4/config.yaml"), P.read(exp .. "/config.yaml"))
    -- The merged folder is a whole experiment: --resume has nothing to do.
    local rcode, _, rerr = P.run(dir, "run experiment --no-progress --resume experiments/mg_m1")
    assert.are.equal(0, rcode, rerr)
    assert.truthy(rerr:find(": 0 of 35 traces to run", 1, true), rerr)
  end)

  it("accepts shards made with --isolate and with --resume, and shard folders named one by one", function()
    dir = project(6, 4)
    shard(dir, 0, 3, "iso", "--isolate --parallel 2")
    shard(dir, 1, 3, "iso", "--isolate")
    P.run_signalled(dir, "run experiment --quiet --shard 2/3", { 0.5 }, "KILL", "AGENT_MS=100 FLUXLOOP_RUN_ID=iso")
    local s2 = dir .. "/experiments/mg_iso/shards/2-of-3"
    assert.is_nil(P.read(s2 .. "/summary.json"), "the kill came before the end")
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(s2))
    assert(code == 0 or code == 1, err)
    local exp = dir .. "/experiments/mg_iso"
    local mcode, _, merr = P.run(dir, "merge --quiet experiments/mg_iso/shards/2-of-3 experiments/mg_iso/shards/0-of-3 "
      .. "experiments/mg_iso/shards/1-of-3")
    assert.are.equal(1, mcode, merr)
    assert.are.equal("", merr)
    assert(T.same(one_machine(dir), exp))
  end)

  it("refuses shards of two different plans, naming both", function()
    dir = project(3, 5)
    shard(dir, 0, 2, "two")
    P.write(dir, "configs/simulation.yaml", 'name: mg\nrunner:\n  target: "agents.agent:run"\n  iterations: 4\n')
    shard(dir, 1, 2, "two")
    local code, _, err = P.run(dir, "merge experiments/mg_two")
    assert.are.equal(2, code)
    assert.truthy(err:find("fluxloop: error: the shards are not of one experiment: ", 1, true), err)
    assert.truthy(err:find("5 inputs x 3 iterations", 1, true), err)
    assert.truthy(err:find("5 inputs x 4 iterations", 1, true), err)
    assert_nothing_merged(dir .. "/experiments/mg_two")
  end)

  it("refuses shards of one plan split into different N", function()
    dir = project()
    shard(dir, 0, 2, "n2")
    shard(dir, 1, 3, "n3")
    local code, _, err = P.run(dir, "merge --output out experiments/mg_n2/shards/0-of-2 experiments/mg_n3/shards/1-of-3")
    assert.are.equal(2, code)
    assert.truthy(err:find("the shards are not of one experiment: .* 2 shards, but .* 3 shards"), err)
    assert.is_false(require("fluxloop.fs").exists(dir .. "/out/summary.json"))
  end)

  it("refuses a shard given twice (a shard run twice under two job ids)", function()
    dir = project()
    shard(dir, 0, 2, "a")
    shard(dir, 0, 2, "b")
    shard(dir, 1, 2, "a")
    local code, _, err = P.run(dir, "merge --output out experiments/mg_a/shards/0-of-2 experiments/mg_b/shards/0-of-2 "
      .. "experiments/mg_a/shards/1-of-2")
    assert.are.equal(2, code)
    assert.truthy(err:find("shard 0-of-2 appears twice: " .. dir .. "/experiments/mg_a/shards/0-of-2 and "
      .. dir .. "/experiments/mg_b/shards/0-of-2", 1, true), err)
    assert.is_false(require("fluxloop.fs").exists(dir .. "/out/summary.json"))
  end)

  it("names a missing shard and writes nothing; --partial writes what is there, marked, and --resume completes it",
    function()
      dir = project(3, 5)
      shard(dir, 0, 3, "miss")
      shard(dir, 2, 3, "miss")
      local exp = dir .. "/experiments/mg_miss"
      local code, _, err = P.run(dir, "merge experiments/mg_miss")
      assert.are.equal(2, code)
      assert.truthy(err:find("fluxloop: error: " .. exp .. " is not complete, so nothing was written:\n"
        .. "  missing shard 1-of-3: run it (same config and inputs, FLUXLOOP_RUN_ID=miss) with "
        .. "fluxloop run experiment --shard K/3\n", 1, true), err)
      assert.truthy(err:find("--partial", 1, true), err)
      assert_nothing_merged(exp)

      local pcode, _, perr = P.run(dir, "merge --partial experiments/mg_miss")
      assert.are.equal(0, pcode, perr) -- the failing run, trace_008, is in the missing shard
      assert.truthy(perr:find("warning: merged anyway (--partial): missing shard 1-of-3", 1, true), perr)
      local s = P.read_json(exp .. "/summary.json")
      assert.are.same({ true, 5, { "1-of-3" }, 10, 15, true }, { s.partial, s.missing_traces, s.missing_shards,
        s.total_traces, s.planned_traces, s.interrupted })
      local rows = P.read_jsonl(exp .. "/traces.jsonl")
      assert.are.equal(10, #rows)
      for _, row in ipairs(rows) do assert.are_not.equal(1, (tonumber(row.trace_id:match("%d+")) - 1) % 3) end

      local rcode, _, rerr = P.run(dir, "run experiment --quiet --resume experiments/mg_miss")
      assert.are.equal(1, rcode, rerr)
      assert(T.same(one_machine(dir), exp))
      assert.is_false(P.read_json(exp .. "/summary.json").interrupted)
    end)

  it("names an interrupted shard's missing runs and how to finish them", function()
    dir = project(30, 4) -- 120 runs
    shard(dir, 0, 2, "int")
    local code = P.run_signalled(dir, "run experiment --quiet --shard 1/2", { 0.6 }, "INT", "AGENT_MS=30 FLUXLOOP_RUN_ID=int")
    assert.are.equal(130, code)
    local s1 = dir .. "/experiments/mg_int/shards/1-of-2"
    assert.is_true(P.read_json(s1 .. "/summary.json").interrupted)
    local done = #P.read_jsonl(s1 .. "/trace_summary.jsonl")
    local mcode, _, err = P.run(dir, "merge experiments/mg_int")
    assert.are.equal(2, mcode)
    local first = ("trace_%03d"):format(2 * done + 2)
    assert.truthy(err:find(("shard 1-of-2 lacks %d of its 60 runs (%s, "):format(60 - done, first), 1, true), err)
    assert.truthy(err:find("it was interrupted; fluxloop run experiment --resume " .. s1 .. " runs them", 1, true), err)
    assert_nothing_merged(dir .. "/experiments/mg_int")
  end)

  it("refuses a shard that is still running (no summary.json yet), and --partial takes only its whole traces", function()
    dir = project(50, 4) -- 200 runs, 100 in the running shard, 40 ms each
    shard(dir, 0, 2, "run")
    local s1 = dir .. "/experiments/mg_run/shards/1-of-2"
    local pidfile = dir .. "/shard.pid"
    os.execute(("cd %s && { AGENT_MS=40 FLUXLOOP_RUN_ID=run %s run experiment --quiet --shard 1/2 </dev/null "
      .. ">/dev/null 2>&1 & echo $! > %s; }"):format(P.quote(dir), P.quote(P.bin()), P.quote(pidfile)))
    local pid = assert(tonumber(P.read(pidfile)))
    local ok, perr = pcall(function()
      -- Wait (generously) until the shard has written some traces.
      for _ = 1, 300 do
        local text = P.read(s1 .. "/trace_summary.jsonl")
        if text and #text > 0 then break end
        os.execute("sleep 0.05")
      end
      local code, _, err = P.run(dir, "merge experiments/mg_run")
      assert.are.equal(2, code)
      assert.truthy(err:find("shard 1-of-2 has no summary.json: it is still running, or it died (then "
        .. "fluxloop run experiment --resume " .. s1 .. " finishes it)", 1, true), err)
      assert_nothing_merged(dir .. "/experiments/mg_run")
      local pcode, _, perr2 = P.run(dir, "merge --partial --output part experiments/mg_run")
      assert(pcode == 0 or pcode == 1, perr2)
    end)
    os.execute("kill " .. pid .. " 2>/dev/null")
    assert(ok, perr)
    -- Whole lines only, the same traces in the three files, each trace's observations with it.
    local part = dir .. "/part"
    local ids = {}
    for _, row in ipairs(P.read_jsonl(part .. "/trace_summary.jsonl")) do ids[#ids + 1] = row.trace_id end
    local ids2 = {}
    for _, row in ipairs(P.read_jsonl(part .. "/traces.jsonl")) do ids2[#ids2 + 1] = row.trace_id end
    assert.are.same(ids, ids2)
    assert.is_true(#ids > 100 and #ids < 200, #ids)
    local has = {}
    for _, id in ipairs(ids) do has[id] = true end
    for _, row in ipairs(P.read_jsonl(part .. "/observations.jsonl")) do assert.is_true(has[row.trace_id], row.trace_id) end
    assert.are.equal(#ids, P.read_json(part .. "/summary.json").total_traces)
  end)

  it("refuses a target that already holds merged files, and changes none of them", function()
    dir = project()
    shard(dir, 0, 2, "again")
    shard(dir, 1, 2, "again")
    assert.are.equal(1, (P.run(dir, "merge --quiet experiments/mg_again")))
    local exp = dir .. "/experiments/mg_again"
    local before = merged_files(exp)
    local code, _, err = P.run(dir, "merge experiments/mg_again")
    assert.are.equal(2, code)
    assert.truthy(err:find("fluxloop: error: " .. exp .. " already holds merged results (trace_summary.jsonl, "
      .. "traces.jsonl, observations.jsonl, config.yaml, plan.json, summary.json); nothing was changed", 1, true), err)
    assert.are.same(before, merged_files(exp))
    -- Even one merged file left behind is enough to refuse.
    os.remove(exp .. "/summary.json")
    assert.are.equal(2, (P.run(dir, "merge experiments/mg_again")))
    assert.is_nil(P.read(exp .. "/summary.json"))
  end)

  it("names the file and line of a damaged shard line", function()
    dir = project()
    shard(dir, 0, 2, "dmg")
    shard(dir, 1, 2, "dmg")
    local path = dir .. "/experiments/mg_dmg/shards/1-of-2/trace_summary.jsonl"
    local text = P.read(path)
    P.write(dir, "experiments/mg_dmg/shards/1-of-2/trace_summary.jsonl", text:gsub("trace_006", "trace_007", 1))
    local code, _, err = P.run(dir, "merge experiments/mg_dmg")
    assert.are.equal(2, code)
    assert.truthy(err:find(path .. ":3: trace_007 belongs to shard 0-of-2, not to this shard 1-of-2", 1, true), err)
    assert_nothing_merged(dir .. "/experiments/mg_dmg")
  end)

  it("usage errors: no folder, a folder that is not an experiment, an unknown option", function()
    dir = project()
    local cases = {
      { "merge", "name the experiment folder" },
      { "merge nowhere", "nowhere: no such folder" },
      { "merge agents", "agents is neither an experiment folder (it has no shards/) nor a shard folder (its "
        .. "plan.json is missing)" },
      { "merge --partal x", "unknown option '--partal' (did you mean '--partial'?)" },
    }
    for _, c in ipairs(cases) do
      local code, _, err = P.run(dir, c[1])
      assert.are.equal(2, code, c[1])
      assert.truthy(err:find(c[2], 1, true), err)
    end
    local code, out = P.run(dir, "merge --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("Usage: fluxloop merge", 1, true))
  end)
end)
