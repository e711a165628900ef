-- parse_spec.lua - fluxloop.parse: the markdown of a trace, the per_trace.jsonl record, UTC arithmetic.
local parse = require("fluxloop.parse")
local json = require("fluxloop.json")

describe("fluxloop.parse", function()
  it("adds milliseconds to ISO times across days, months and years", function()
    assert.are.equal("2026-11-25T17:00:00.001512Z", parse.iso_plus("2026-11-25T17:00:00.000012Z", 1.5))
    assert.are.equal("2027-01-01T00:00:00.000500Z", parse.iso_plus("2026-12-31T23:59:59.999500Z", 1))
    assert.are.equal("2024-03-01T00:00:00.000000Z", parse.iso_plus("2024-02-29T23:59:59.000000Z", 1000))
    assert.is_nil(parse.iso_plus("yesterday", 1))
  end)

  it("writes front matter YAML can read, and fences that backticks in the text cannot close", function()
    local trace = { trace_id = "trace_007", iteration = 2, persona = "a: b", duration_ms = 12.345, success = false,
      input = "in ``` put", output = json.null,
      error = { type = "error", message = "boom\nsecond line", traceback = "boom\nstack traceback:\n\t[C]: in ?" } }
    local md = parse.markdown(trace, {})
    local front = md:match("^%-%-%-\n(.-)\n%-%-%-\n")
    local yaml = require("fluxloop.yaml").decode(front)
    assert.are.same({ trace_id = "trace_007", iteration = 2, persona = "a: b", duration_ms = 12.35, success = false }, yaml)
    assert.truthy(md:find('````json\n"in ``` put"\n````', 1, true), md)
    assert.truthy(md:find("- **Message**: boom second line\n", 1, true))
    assert.truthy(md:find("```text\nboom\nstack traceback:\n\t[C]: in ?\n```", 1, true))
    assert.truthy(md:find("_No observations._", 1, true))
  end)

  it("makes the per_trace.jsonl record of a decoded trace", function()
    local rec = parse.record({ trace_id = "trace_001", iteration = 0, input = "q", output = { a = 1 }, duration_ms = 1.5,
      success = true }, json.array({}))
    assert.are.same({ a = 1 }, rec.output)
    assert.are.same(rec.output, rec.final_output)
    assert.are.equal(json.null, rec.persona)
    assert.are.equal("trace_001", rec.summary.trace_id)
    assert.are.equal(0, rec.metrics.observation_count)
  end)
end)

describe("fluxloop.parse timeline", function()
  it("shows a failed observation as level ERROR with its error, in per_trace.jsonl and the markdown", function()
    local trace = { trace_id = "trace_001", observations = {
      { id = "trace_001.1", parent_id = json.null, type = "tool", name = "lookup", started_at = "2026-11-25T17:00:00.000000Z",
        duration_ms = 2, error = "KeyError: 'order_id'" },
      { id = "trace_001.2", parent_id = json.null, type = "event", name = "fine", started_at = "2026-11-25T17:00:00.000100Z",
        duration_ms = 0 },
    } }
    local steps = parse.timeline(trace)
    assert.are.same({ "ERROR", "KeyError: 'order_id'" }, { steps[1].level, steps[1].error })
    assert.are.same({ "DEFAULT" }, { steps[2].level, steps[2].error })
    local md = parse.markdown({ trace_id = "trace_001", iteration = 0, success = true, input = "q", output = "a" }, steps)
    assert.truthy(md:find("- Level: ERROR\n- Error: KeyError: 'order_id'\n", 1, true), md)
    assert.truthy(md:find("- Level: DEFAULT\n\nInput:", 1, true), md)
  end)
end)

-- A trace line longer than parse.max_line: its long values are written from traces.jsonl piece by
-- piece (a 200 MB output in a few MB of memory), and every file is the same, byte for byte, as when
-- the line is held whole. Here a limit of 100 bytes sends every line of the folder that way.
describe("fluxloop.parse of lines longer than its max_line", function()
  local P = require("support.project")
  local F = require("support.results_fixture")
  local dir, exp

  -- A JSON string body of about n bytes: escapes of every kind, raw UTF-8 (and bytes that are not),
  -- backtick runs (escaped too), newlines; seeded, so each run of the spec is the same.
  local function tricky(n, seed)
    local tokens = { "plain words ", "\\n", '\\"', "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\t", "\\u0000",
      "\\u001f", "\\u0060\\u0060", "\u{e9}", "\u{1F600}", "\xff", "\xc3(", "\x7f", "`", "```", "````", "\\r\\n", "x" }
    math.randomseed(seed)
    local out, size = {}, 0
    while size < n do
      local t = tokens[math.random(#tokens)]
      out[#out + 1] = t
      size = size + #t
    end
    return table.concat(out)
  end

  local function files(out)
    local list = {}
    for name in io.popen("ls " .. P.quote(out)):lines() do list[#list + 1] = name end
    return list
  end

  -- parse.main with parse.max_line = max_line; checks that its trace reader got that limit.
  local function parse_with(max_line, out, format)
    local jl = require("fluxloop.jsonlread")
    local saved, open, limits = parse.max_line, jl.open, {}
    parse.max_line = max_line
    jl.open = function(path, keys, opts)
      if path:find("traces.jsonl$") then limits[#limits + 1] = opts and opts.max_line end
      return open(path, keys, opts)
    end
    local code = parse.main({ dir = exp, output = out, format = format, overwrite = true, quiet = true })
    parse.max_line, jl.open = saved, open
    assert.are.equal(0, code)
    assert.are.same({ max_line }, limits)
    return exp .. "/" .. out
  end

  setup(function()
    dir, exp = F.experiment(nil, 1)
    local line = P.read(exp .. "/traces.jsonl"):match("^[^\n]+")
    local function with(id, fields)
      local l = line:gsub('"trace_id":"[^"]*"', '"trace_id":"' .. id .. '"', 1)
      for k, v in pairs(fields) do
        l = l:gsub('"' .. k .. '":', '"' .. k .. '":' .. v .. ',"was_' .. k .. '":', 1)
      end
      return l .. "\n"
    end
    local s1, s2 = '"' .. tricky(3 * 1000 * 1000, 1) .. '"', '"' .. tricky(300 * 1000, 2) .. '"'
    local f = assert(io.open(exp .. "/traces.jsonl", "ab"))
    f:write(with("trace_big1", { output = s1, input = s2 }),
      with("trace_big2", { output = '{"text":' .. s2 .. ',"list":[1,2.50,-0.0,1e3,true,null,"x"]}' }),
      with("trace_big3", { error = '{"type":"error","message":' .. s2 .. ',"traceback":' .. s2 .. '}',
        metadata = '{"note":' .. s2 .. '}', success = "false" }))
    f:close()
  end)
  teardown(function() P.remove(dir) end)

  it("writes per_trace.jsonl and the markdown files the same as with the lines held whole", function()
    for _, format in ipairs({ "md", "jsonl" }) do
      local whole, streamed = parse_with(1 << 40, "whole_" .. format, format), parse_with(100, "streamed_" .. format, format)
      local names = files(whole)
      assert.are.same(names, files(streamed))
      assert.are.equal(format == "md" and 7 or 1, #names)
      for _, name in ipairs(names) do
        local a, b = P.read(whole .. "/" .. name), P.read(streamed .. "/" .. name)
        assert.is_true(a == b, name .. " differs")
      end
    end
  end)

  it("writes a long output whole: per_trace.jsonl holds it four times, the markdown as JSON and as text", function()
    local out = parse_with(4096, "check", "md")
    local text = P.read(out .. "/per_trace.jsonl")
    local rec
    for l in text:gmatch("[^\n]+") do
      local r = json.decode(l)
      if r.trace_id == "trace_big1" then rec = r end
    end
    local want = json.decode('"' .. tricky(3 * 1000 * 1000, 1) .. '"')
    assert.is_true(rec.output == want and rec.final_output == want and rec.summary.output == want
      and rec.conversation[2].content == want)
    local md = P.read(out .. "/00_trace_big1.md")
    local encoded, longest = json.encode(want), 2
    for run in encoded:gmatch("`+") do longest = math.max(longest, #run) end
    assert.is_true(longest >= 4) -- runs of backticks inside: the fence is longer
    local fence = ("`"):rep(longest + 1)
    assert.truthy(md:find("\n" .. fence .. "json\n" .. encoded .. "\n" .. fence .. "\n", 1, true))
    assert.truthy(md:find("\n- **Assistant**: " .. want:gsub("\n", " ") .. " _(source=agent)_\n", 1, true))
  end)
end)
