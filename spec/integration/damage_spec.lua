-- Damage in the middle of a results file (issue 22.5): --resume runs again every trace whose
-- line in any of the three files is damaged or missing, and merge refuses (or, --partial,
-- leaves out) the traces of a shard whose files do not hold them whole.
local P = require("support.project")

local AGENT = [[
return { run = function(input, ctx)
  ctx:observe{ type = "tool", name = "look", input = input }
  if ctx.iteration == 1 then ctx:observe{ type = "event", name = "second" } end
  return "ok " .. input
end }
]]

local function inputs(n)
  local lines = { "generated_inputs:" }
  for i = 1, n do lines[#lines + 1] = ("  - input: \"q%d\""):format(i) end
  return table.concat(lines, "\n") .. "\n"
end

local function lines_of(path)
  local list = {}
  for line in (P.read(path) or ""):gmatch("[^\n]*\n") do list[#list + 1] = line end
  return list
end

local function write_lines(path, list)
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(list))
  f:close()
end

-- Every file holds each trace once, whole, in order; observations.jsonl as many lines a trace as
-- its traces.jsonl line has observations.
local function assert_whole(exp, planned)
  for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl" }) do
    local rows = P.read_jsonl(exp .. "/" .. f)
    assert.are.equal(planned, #rows, f)
    for k, row in ipairs(rows) do assert.are.equal(("trace_%03d"):format(k), row.trace_id, f) end
  end
  local want = 0
  for _, row in ipairs(P.read_jsonl(exp .. "/traces.jsonl")) do want = want + #row.observations end
  assert.are.equal(want, #P.read_jsonl(exp .. "/observations.jsonl"))
  local s = P.read_json(exp .. "/summary.json")
  assert.are.equal(planned, s.total_traces)
end

describe("--resume of a folder damaged in the middle", function()
  local dir, exp
  before_each(function()
    dir = P.project({ iterations = 3, inputs = inputs(10), agent = AGENT })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    exp = P.experiments(dir)[1]
  end)
  after_each(function() P.remove(dir) end)

  it("runs again a trace whose traces.jsonl line was cut in the middle", function()
    local list = lines_of(exp .. "/traces.jsonl")
    list[12] = list[12]:sub(1, 40) .. "\n"
    write_lines(exp .. "/traces.jsonl", list)
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("1 of 30 traces to run", 1, true), err)
    assert.truthy(err:find("traces.jsonl:12: damaged line", 1, true), err)
    assert_whole(exp, 30)
  end)

  it("runs again a trace whose traces.jsonl line is gone", function()
    local list = lines_of(exp .. "/traces.jsonl")
    table.remove(list, 7)
    write_lines(exp .. "/traces.jsonl", list)
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("1 of 30 traces to run", 1, true), err)
    assert_whole(exp, 30)
  end)

  it("runs again the traces whose observation lines are damaged or gone", function()
    local list = lines_of(exp .. "/observations.jsonl")
    list[5] = "{\"trace_id\":\"trace_004\",\"id\":\n" -- cut: trace_004's second observation
    table.remove(list, 20)                             -- the observation of another trace
    write_lines(exp .. "/observations.jsonl", list)
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("2 of 30 traces to run", 1, true), err)
    assert_whole(exp, 30)
  end)

  it("runs again a trace whose trace_summary.jsonl line is damaged", function()
    local list = lines_of(exp .. "/trace_summary.jsonl")
    list[3] = list[3]:gsub('"success":true', '"success":tru')
    write_lines(exp .. "/trace_summary.jsonl", list)
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("1 of 30 traces to run", 1, true), err)
    assert_whole(exp, 30)
  end)

  it("with observations.jsonl emptied, runs again every trace that had observations", function()
    write_lines(exp .. "/observations.jsonl", {})
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("30 of 30 traces to run", 1, true), err)
    assert_whole(exp, 30)
  end)
end)

describe("merge of shards whose files are damaged in the middle", function()
  local S = require("support.sharded")
  local dir, exp
  before_each(function()
    dir = P.project({ name = "dm", iterations = 3, inputs = S.inputs(4), agent = S.agent() })
    for k = 0, 1 do
      local code, _, err = P.run(dir, ("run experiment --quiet --shard %d/2"):format(k), "FLUXLOOP_RUN_ID=d1 PASS=1")
      assert(code == 0, err)
    end
    exp = dir .. "/experiments/dm_d1"
  end)
  after_each(function() P.remove(dir) end)

  -- The merged folder holds each trace it claims whole in all three files.
  local function assert_consistent(total)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(total, s.total_traces)
    local ids = {}
    for _, row in ipairs(P.read_jsonl(exp .. "/trace_summary.jsonl")) do ids[#ids + 1] = row.trace_id end
    local traces = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(total, #ids)
    assert.are.equal(total, #traces)
    local want = 0
    for i, row in ipairs(traces) do
      assert.are.equal(ids[i], row.trace_id)
      want = want + #row.observations
    end
    assert.are.equal(want, #P.read_jsonl(exp .. "/observations.jsonl"))
  end

  it("refuses a shard that lost a traces.jsonl line, naming it; --partial leaves that trace out", function()
    local shard = exp .. "/shards/1-of-2"
    local list = lines_of(shard .. "/traces.jsonl")
    table.remove(list, 3) -- trace_006
    write_lines(shard .. "/traces.jsonl", list)
    local code, _, err = P.run(dir, "merge " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("shard 1-of-2: " .. shard .. "/traces.jsonl has no whole line for 1 of its traces (trace_006)",
      1, true), err)
    assert.is_nil(P.read(exp .. "/summary.json"))
    code, _, err = P.run(dir, "merge --partial " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_consistent(11)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.same({ true, 1 }, { s.partial, s.missing_traces })
  end)

  it("refuses a shard whose observations.jsonl was emptied; --partial merges the other shard's traces", function()
    local shard = exp .. "/shards/0-of-2"
    write_lines(shard .. "/observations.jsonl", {})
    local code, _, err = P.run(dir, "merge " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("shard 0-of-2: " .. shard .. "/observations.jsonl lacks observation lines of 6 traces", 1, true),
      err)
    code, _, err = P.run(dir, "merge --partial " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_consistent(6)
    assert.are.equal(6, P.read_json(exp .. "/summary.json").missing_traces)
    -- --resume of the merged folder runs what is missing, and the folder is whole again.
    code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp), "PASS=1")
    assert.are.equal(0, code, err)
    assert_consistent(12)
  end)

  it("refuses a shard with a damaged trace_summary.jsonl line in the middle, naming the line", function()
    local shard = exp .. "/shards/0-of-2"
    local list = lines_of(shard .. "/trace_summary.jsonl")
    list[2] = list[2]:sub(1, 30) .. "\n"
    write_lines(shard .. "/trace_summary.jsonl", list)
    local code, _, err = P.run(dir, "merge " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("trace_summary.jsonl has 1 damaged line (the first at line 2)", 1, true), err)
    code, _, err = P.run(dir, "merge --partial " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_consistent(11)
  end)

  it("a shard whose summary.json is damaged is said to be damaged", function()
    P.write(exp .. "/shards/1-of-2", "summary.json", "{\"total_traces\": 6,")
    local code, _, err = P.run(dir, "merge " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("shard 1-of-2: " .. exp .. "/shards/1-of-2/summary.json is damaged (", 1, true), err)
  end)
end)
