-- fluxloop.shard: --shard K/N and auto, the shard's trace numbers, its folder.
local shard = require("fluxloop.shard")
local P = require("support.project")

local function env(t)
  return function(name) return t[name] end
end

describe("fluxloop.shard", function()
  describe("resolve", function()
    it("reads K/N and takes the job id from FLUXLOOP_RUN_ID", function()
      local s = assert(shard.resolve("1/4", env({ FLUXLOOP_RUN_ID = "run7" })))
      assert.are.same({ index = 1, count = 4, job_id = "run7", source = "--shard 1/4" }, s)
    end)

    it("prefers SLURM_ARRAY_JOB_ID to FLUXLOOP_RUN_ID", function()
      local s = assert(shard.resolve("0/1", env({ FLUXLOOP_RUN_ID = "x", SLURM_ARRAY_JOB_ID = "4242" })))
      assert.are.equal("4242", s.job_id)
    end)

    it("auto: a Slurm array task with SLURM_ARRAY_TASK_COUNT", function()
      local s = assert(shard.resolve("auto", env({ SLURM_ARRAY_TASK_ID = "2", SLURM_ARRAY_TASK_COUNT = "4",
        SLURM_ARRAY_TASK_MIN = "0", SLURM_ARRAY_TASK_MAX = "3", SLURM_ARRAY_JOB_ID = "17" })))
      assert.are.same({ 2, 4, "17" }, { s.index, s.count, s.job_id })
    end)

    it("auto: a Slurm array numbered from 1 with a step, from MIN/MAX/STEP", function()
      local s = assert(shard.resolve("auto", env({ SLURM_ARRAY_TASK_ID = "5", SLURM_ARRAY_TASK_MIN = "1",
        SLURM_ARRAY_TASK_MAX = "7", SLURM_ARRAY_TASK_STEP = "2", SLURM_ARRAY_JOB_ID = "9" })))
      assert.are.same({ 2, 4 }, { s.index, s.count })
    end)

    it("auto: a Kubernetes Indexed Job with FLUXLOOP_SHARDS", function()
      local s = assert(shard.resolve("auto", env({ JOB_COMPLETION_INDEX = "3", FLUXLOOP_SHARDS = "8",
        FLUXLOOP_RUN_ID = "job-a" })))
      assert.are.same({ 3, 8, "job-a" }, { s.index, s.count, s.job_id })
    end)

    local bad = {
      { "4/4", {}, "shard K must be from 0 to N%-1 = 3 %(shards count from 0%), got 4" },
      { "0/0", {}, "the number of shards N must be at least 1, got 0" },
      { "0/-2", {}, "N must be at least 1, got %-2" },
      { "x", {}, "expected K/N .* or auto, got 'x'" },
      { "1/", {}, "expected K/N" },
      { "-1/4", {}, "expected K/N" },
      { "1/4", {}, "neither SLURM_ARRAY_JOB_ID nor FLUXLOOP_RUN_ID is set; set FLUXLOOP_RUN_ID" },
      { "1/4", { FLUXLOOP_RUN_ID = "a/b" }, "FLUXLOOP_RUN_ID 'a/b': a job id .* only letters" },
      { "1/4", { FLUXLOOP_RUN_ID = ".." }, "FLUXLOOP_RUN_ID '%.%.'" },
      { "auto", {}, "neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX" },
      { "auto", { SLURM_ARRAY_TASK_ID = "1" }, "the number of shards is unknown" },
      { "auto", { SLURM_ARRAY_TASK_ID = "4", SLURM_ARRAY_TASK_COUNT = "4" }, "got 4" },
      { "auto", { SLURM_ARRAY_TASK_ID = "2", SLURM_ARRAY_TASK_MIN = "1", SLURM_ARRAY_TASK_MAX = "7",
        SLURM_ARRAY_TASK_STEP = "2" }, "array task 2 is not min 1 %+ a multiple of step 2" },
      { "auto", { JOB_COMPLETION_INDEX = "0" }, "FLUXLOOP_SHARDS is not" },
      { "auto", { JOB_COMPLETION_INDEX = "0", FLUXLOOP_SHARDS = "four" }, "FLUXLOOP_SHARDS is 'four'" },
      { "auto", { JOB_COMPLETION_INDEX = "0", FLUXLOOP_SHARDS = "0", FLUXLOOP_RUN_ID = "r" }, "at least 1" },
    }
    for _, case in ipairs(bad) do
      it(("refuses --shard %s with %s"):format(case[1], require("fluxloop.json").encode(case[2])), function()
        local s, err = shard.resolve(case[1], env(case[2]))
        assert.is_nil(s)
        assert.truthy(err:find(case[3]), err)
      end)
    end
  end)

  it("gives shard K the trace numbers k with (k-1) mod N = K, and every k to exactly one shard", function()
    assert.are.same({ 2, 5, 8 }, shard.traces(9, { index = 1, count = 3 }))
    assert.are.same({}, shard.traces(2, { index = 3, count = 4 }))
    for _, planned in ipairs({ 0, 1, 7, 12, 13 }) do
      local seen = {}
      for k = 0, 4 do
        local s = { index = k, count = 5 }
        local ks = shard.traces(planned, s)
        assert.are.equal(#ks, shard.count(planned, s))
        for _, t in ipairs(ks) do
          assert.is_nil(seen[t])
          assert.is_true(shard.owns(s, t))
          seen[t] = true
        end
      end
      for t = 1, planned do assert.is_true(seen[t], t) end
    end
  end)

  it("names shard folders K-of-N and reads the names back", function()
    assert.are.equal("2-of-4", shard.name({ index = 2, count = 4 }))
    assert.are.same({ 2, 4 }, { shard.parse_name("2-of-4") })
    assert.is_nil(shard.parse_name("2of4"))
  end)

  describe("create_dir", function()
    local dir
    before_each(function() dir = P.new() end)
    after_each(function() P.remove(dir) end)

    it("makes <base>/<name>_<job id>/shards/K-of-N, and refuses the same shard twice", function()
      local s = { index = 1, count = 2, job_id = "j1" }
      local path = assert(shard.create_dir(dir .. "/exp", "agent", s))
      assert.are.equal(dir .. "/exp/agent_j1/shards/1-of-2", path)
      P.write(path, "trace_summary.jsonl", "kept\n")
      local again, err = shard.create_dir(dir .. "/exp", "agent", s)
      assert.is_nil(again)
      assert.truthy(err:find("shard 1-of-2 of job j1 already ran (or is running) in " .. path, 1, true), err)
      assert.truthy(err:find("--resume " .. path, 1, true), err)
      assert.are.equal("kept\n", P.read(path .. "/trace_summary.jsonl"))
      -- Another shard of the same job goes beside it.
      assert.are.equal(dir .. "/exp/agent_j1/shards/0-of-2",
        assert(shard.create_dir(dir .. "/exp", "agent", { index = 0, count = 2, job_id = "j1" })))
    end)
  end)
end)
