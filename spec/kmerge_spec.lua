-- fluxloop.kmerge (C): the scan of a shard's trace_summary.jsonl and the k-way merge.
local kmerge = require("fluxloop.kmerge")
local P = require("support.project")

local function summary_line(k, ms, ok, output)
  return ('{"trace_id":"trace_%03d","input":"q","output":%s,"duration_ms":%s,"iteration":0,"persona":null,'
    .. '"success":%s,"error":%s}\n'):format(k, output or '"a"', ms, ok and "true" or "false", ok and "null" or '"e"')
end

local function lines_of(ks, fn)
  local out = {}
  for _, k in ipairs(ks) do out[#out + 1] = fn(k) end
  return table.concat(out)
end

describe("fluxloop.kmerge", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  describe("scan", function()
    it("counts a shard's runs, its failures and the traces it lacks, and keeps every duration", function()
      local m = kmerge.new(10, 3) -- shard 1 owns 2, 5, 8
      local path = P.write(dir, "s.jsonl", summary_line(2, "1.5", true) .. summary_line(8, "4.5", false))
      local r = assert(m:scan(path, 1))
      assert.are.same({ traces = 2, failed = 1, missing = 1, first_missing = { 5 }, torn = false }, r)
      assert.is_true(m:has(2))
      assert.is_false(m:has(5))
      local s = m:summary()
      assert.are.same({ 2, 1, 1, 1.5, 4.5, 3.0 }, { s.count, s.successful, s.failed, s.min, s.max, s.p50 })
    end)

    it("reads duration_ms and success of the trace, not of an output object that has such keys", function()
      local m = kmerge.new(1, 1)
      local output = '{"x":1,"duration_ms":999,"success":false}'
      local path = P.write(dir, "s.jsonl", summary_line(1, "2.25", true, output))
      assert(m:scan(path, 0))
      local s = m:summary()
      assert.are.same({ 2.25, 1 }, { s.max, s.successful })
    end)

    it("lists at most five missing trace numbers and counts the rest, up to the end of the plan", function()
      local m = kmerge.new(40, 2)
      local path = P.write(dir, "s.jsonl", summary_line(1, "1", true) .. summary_line(21, "1", true))
      local r = assert(m:scan(path, 0))
      assert.are.same({ 3, 5, 7, 9, 11 }, r.first_missing)
      assert.are.equal(18, r.missing) -- 3..19 (9) and 23..39 (9)
    end)

    it("stops at the size it is given, and notes a torn last line without counting it", function()
      local m = kmerge.new(4, 1)
      local a, b = summary_line(1, "1", true), summary_line(2, "1", true)
      local path = P.write(dir, "s.jsonl", a .. b .. summary_line(3, "1", true):sub(1, 20))
      local r = assert(m:scan(path, 0, #a + #b + 20))
      assert.are.same({ 2, true, 2 }, { r.traces, r.torn, r.missing })
      local m2 = kmerge.new(4, 1)
      assert.are.equal(1, assert(m2:scan(path, 0, #a)).traces)
    end)

    local bad = {
      { "not a trace line", "{\"x\":1}\n", "s.jsonl:1: not a trace line" },
      { "another shard's trace", summary_line(2, "1", true), "s.jsonl:1: trace_002 belongs to shard 1-of-2, not to this shard 0-of-2" },
      { "a repeated trace", summary_line(1, "1", true) .. summary_line(1, "1", true), "s.jsonl:2: trace_001 comes after trace_001" },
      { "out of order", summary_line(3, "1", true) .. summary_line(1, "1", true), "s.jsonl:2: trace_001 comes after trace_003" },
      { "beyond the plan", summary_line(9, "1", true), "s.jsonl:1: trace_009 is beyond the plan's 6 traces" },
      { "no duration", '{"trace_id":"trace_001","success":true}\n', "s.jsonl:1: trace_001 has no duration_ms or success" },
    }
    for _, case in ipairs(bad) do
      it("refuses " .. case[1] .. ", naming the file and line", function()
        local m = kmerge.new(6, 2)
        local path = P.write(dir, "s.jsonl", case[2])
        local r, err = m:scan(path, 0)
        assert.is_nil(r)
        assert.truthy(err:find(case[3], 1, true), err)
      end)
    end

    it("says which file it cannot open", function()
      local r, err = kmerge.new(1, 1):scan(dir .. "/none.jsonl", 0)
      assert.is_nil(r)
      assert.truthy(err:find(dir .. "/none.jsonl: No such file", 1, true), err)
    end)
  end)

  describe("merge", function()
    -- Three shards of a 10-trace plan; trace k's observation lines are k mod 3 + 1 long.
    local function obs(k)
      local t = {}
      for i = 1, k % 3 + 1 do t[i] = ('{"trace_id":"trace_%03d","id":"trace_%03d.%d"}\n'):format(k, k, i) end
      return table.concat(t)
    end
    local function shard_files(index, ks)
      P.write(dir, index .. "/s.jsonl", lines_of(ks, function(k) return summary_line(k, "1", true) end))
      P.write(dir, index .. "/o.jsonl", lines_of(ks, obs))
    end

    it("writes the lines of every shard in trace order, a trace's lines together", function()
      local m = kmerge.new(10, 3)
      local own = { [0] = { 1, 4, 7, 10 }, { 2, 5, 8 }, { 3, 6, 9 } }
      local inputs, oinputs = {}, {}
      for k = 0, 2 do
        shard_files(k, own[k])
        assert(m:scan(dir .. "/" .. k .. "/s.jsonl", k))
        inputs[#inputs + 1] = { path = dir .. "/" .. k .. "/s.jsonl", index = k }
        oinputs[#oinputs + 1] = { path = dir .. "/" .. k .. "/o.jsonl", index = k }
      end
      assert.are.equal(10, m:merge(dir .. "/s.out", inputs, true))
      assert.are.equal(lines_of({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, function(k) return summary_line(k, "1", true) end),
        P.read(dir .. "/s.out"))
      assert.are.equal(20, m:merge(dir .. "/o.out", oinputs, false))
      assert.are.equal(lines_of({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, obs), P.read(dir .. "/o.out"))
    end)

    it("drops lines of traces the scan did not find (a shard that died mid-trace) and a torn tail", function()
      local m = kmerge.new(6, 2)
      P.write(dir, "s.jsonl", summary_line(1, "1", true))
      assert(m:scan(dir .. "/s.jsonl", 0))
      P.write(dir, "o.jsonl", obs(1) .. obs(3) .. '{"trace_id":"trace_005","id"')
      assert.are.equal(2, m:merge(dir .. "/o.out", { { path = dir .. "/o.jsonl", index = 0 } }, false))
      assert.are.equal(obs(1), P.read(dir .. "/o.out"))
    end)

    it("reads only up to a given size (what was there when it was scanned)", function()
      local m = kmerge.new(4, 1)
      local text = lines_of({ 1, 2, 3 }, function(k) return summary_line(k, "1", true) end)
      P.write(dir, "s.jsonl", text)
      assert(m:scan(dir .. "/s.jsonl", 0))
      local first = summary_line(1, "1", true)
      assert.are.equal(1, m:merge(dir .. "/out", { { path = dir .. "/s.jsonl", index = 0, limit = #first } }, true))
      assert.are.equal(first, P.read(dir .. "/out"))
    end)

    it("keeps lines far longer than its buffers whole", function()
      local m = kmerge.new(2, 2)
      local big = '"' .. ("x"):rep(3 * 1024 * 1024) .. '"'
      P.write(dir, "a.jsonl", summary_line(1, "1", true, big))
      P.write(dir, "b.jsonl", summary_line(2, "1", true))
      assert(m:scan(dir .. "/a.jsonl", 0))
      assert(m:scan(dir .. "/b.jsonl", 1))
      assert.are.equal(2, m:merge(dir .. "/out", { { path = dir .. "/b.jsonl", index = 1 },
        { path = dir .. "/a.jsonl", index = 0 } }, true))
      assert.are.equal(summary_line(1, "1", true, big) .. summary_line(2, "1", true), P.read(dir .. "/out"))
    end)

    it("never overwrites: the output must not exist", function()
      local m = kmerge.new(1, 1)
      P.write(dir, "s.jsonl", summary_line(1, "1", true))
      P.write(dir, "out", "kept")
      assert(m:scan(dir .. "/s.jsonl", 0))
      local n, err = m:merge(dir .. "/out", { { path = dir .. "/s.jsonl", index = 0 } }, true)
      assert.is_nil(n)
      assert.truthy(err:find(dir .. "/out: File exists", 1, true), err)
      assert.are.equal("kept", P.read(dir .. "/out"))
    end)

    it("refuses a file whose lines are out of order or of another shard", function()
      local m = kmerge.new(4, 2)
      P.write(dir, "s.jsonl", summary_line(1, "1", true) .. summary_line(3, "1", true))
      assert(m:scan(dir .. "/s.jsonl", 0))
      P.write(dir, "t.jsonl", summary_line(3, "1", true) .. summary_line(1, "1", true))
      local n, err = m:merge(dir .. "/out", { { path = dir .. "/t.jsonl", index = 0 } }, true)
      assert.is_nil(n)
      assert.truthy(err:find("t.jsonl:2: trace_001 comes after trace_003", 1, true), err)
      P.write(dir, "u.jsonl", summary_line(2, "1", true))
      n, err = m:merge(dir .. "/out2", { { path = dir .. "/u.jsonl", index = 0 } }, true)
      assert.is_nil(n)
      assert.truthy(err:find("u.jsonl:1: not a trace line of shard 0-of-2", 1, true), err)
    end)
  end)

  describe("check", function()
    local function trace_line(k, n_obs)
      local obs = {}
      for i = 1, n_obs do obs[i] = ('{"id":"trace_%03d.%d"}'):format(k, i) end
      return ('{"trace_id":"trace_%03d","observations":[%s]}\n'):format(k, table.concat(obs, ","))
    end
    local function obs_lines(k, n)
      local t = {}
      for i = 1, n do t[i] = ('{"trace_id":"trace_%03d","id":"trace_%03d.%d"}\n'):format(k, k, i) end
      return table.concat(t)
    end

    it("leaves out traces without a whole traces.jsonl line or with too few observation lines", function()
      local m = kmerge.new(6, 1)
      P.write(dir, "s.jsonl", lines_of({ 1, 2, 3, 4, 5, 6 }, function(k) return summary_line(k, "1", true) end))
      assert(m:scan(dir .. "/s.jsonl", 0))
      -- 2: no traces line; 3: damaged traces line; 4: one observation line of two; 5: a damaged one
      P.write(dir, "t.jsonl", trace_line(1, 1) .. trace_line(3, 0):sub(1, 15) .. "\n" .. trace_line(4, 2) .. trace_line(5, 1)
        .. trace_line(6, 0))
      P.write(dir, "o.jsonl", obs_lines(1, 1) .. obs_lines(4, 1) .. '{"trace_id":"trace_005","id":\n')
      local c = assert(m:check(0, dir .. "/t.jsonl", -1, dir .. "/o.jsonl", -1))
      assert.are.same({ 2, { 2, 3 }, 2, { 4, 5 }, 1, 2, 1, 3 }, { c.no_trace, c.first_no_trace, c.short_obs,
        c.first_short_obs, c.damaged_traces, c.first_damaged_trace, c.damaged_obs, c.first_damaged_obs })
      for k, want in ipairs({ true, false, false, false, false, true }) do assert.are.equal(want, m:has(k), k) end
      assert.are.equal(2, m:merge(dir .. "/s.out", { { path = dir .. "/s.jsonl", index = 0 } }, true, true))
      assert.are.equal(2, m:summary().count)
    end)
  end)

  it("checks its arguments", function()
    assert.has_error(function() kmerge.new(-1, 1) end)
    assert.has_error(function() kmerge.new(1, 0) end)
    local m = kmerge.new(1, 2)
    assert.has_error(function() m:scan("x", 2) end)
    m:close()
    m:close() -- idempotent
    assert.has_error(function() m:summary() end)
  end)
end)
