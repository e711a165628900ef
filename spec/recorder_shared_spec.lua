-- fluxloop.recorder: trace.shared (a conversation's transcript, turn count and termination
-- reason) in both trace files. The recorder writes transcript entries of the usual shape
-- without the generic encoder (src/lrecshared.c); these check that every shape, usual or
-- not, comes out byte for byte as json.encode (the generic encoder) writes it.
local recorder = require("fluxloop.recorder")
local json = require("fluxloop.json")
local P = require("support.project")

local NO_METADATA = setmetatable({}, { __newindex = function() error("read-only") end })

local function entry(turn, role, content, source, metadata)
  return { turn_index = turn, role = role, content = content, source = source, metadata = metadata or NO_METADATA }
end

local function transcript(...)
  return json.array({ ... })
end

local function usual()
  return transcript(entry(1, "user", "what is 1 plus 1?", "input"), entry(1, "assistant", "2", "agent"),
    entry(2, "user", "And the fee?", "supervisor"), entry(2, "assistant", "none", "agent"))
end

local function nested(depth)
  local t = {}
  for _ = 1, depth do t = { t } end
  return t
end

-- Each case: a name and the shared table of one trace.
local function cases()
  local with_key = entry(1, "user", "a", "input")
  with_key.extra = "kept"
  local no_source = entry(1, "user", "a", "input")
  no_source.source = nil
  local swapped = entry(1, "user", "a", "input") -- five keys, one of them not an entry's
  swapped.source, swapped.origin = nil, "input"
  local shared_meta = { tag = "same" }
  local list = {
    { "the usual conversation", { conversation = usual(), turn_count = 2, termination_reason = "script_complete" } },
    { "a closing turn", { conversation = transcript(entry(1, "user", "a", "input"),
      entry(2, "user", "bye", "supervisor", { closing = true })), turn_count = 1, termination_reason = "done" } },
    { "text to escape", { conversation = transcript(entry(1, "user", 'q"uote\\ \n\t\0 é \xff end', "input"),
      entry(1, "assistant", ("long "):rep(40) .. "\1", "agent")) } },
    { "an entry with one more key", { conversation = transcript(with_key, entry(1, "assistant", "b", "agent")) } },
    { "an entry without a key", { conversation = transcript(no_source) } },
    { "an entry with a key in place of another", { conversation = transcript(swapped) } },
    { "a number content, a float or string turn_index", { conversation = transcript(entry(1, "user", 42, "input"),
      entry(1.0, "assistant", "b", "agent"), entry("2", "user", "c", "supervisor"), entry(2.5, "user", "d", "x")) } },
    { "a role or source that is not a string", { conversation = transcript(entry(1, true, "a", "input"),
      entry(1, "user", "a", json.null)) } },
    { "entries with a metatable", { conversation = transcript(json.array(entry(1, "user", "a", "input")),
      setmetatable(entry(1, "user", "a", "input"), {})) } },
    { "metadata: marked empty, a string, nested, shared by two", { conversation = transcript(
      entry(1, "user", "a", "input", json.array({})), entry(1, "user", "a", "input", "text"),
      entry(1, "user", "a", "input", { b = { 1, 2, { c = json.null } }, a = 1.5 }),
      entry(1, "user", "a", "input", shared_meta), entry(2, "user", "a", "input", shared_meta),
      entry(3, "user", "a", "input", {})) } },
    { "a transcript that is a plain list", { conversation = { entry(1, "user", "a", "input") } } },
    { "an empty transcript, marked or not", { conversation = json.array({}), also = {} } },
    { "entries that are not tables", { conversation = transcript("text", 5, json.null, print, io.stdout,
      entry(1, "user", "a", "input")) } },
    { "a conversation that is text", { conversation = "text", turn_count = 0 } },
    { "a function in shared (named after its key)", { conversation = usual(), hook = print } },
    { "a key that is not a string", { conversation = usual(), [1] = "one", [2.5] = true } },
    { "more members than the fast path takes", { conversation = usual(), a = 1, b = 2, c = 3, d = 4, e = 5, f = 6,
      g = 7, h = 8 } },
    { "keys that sort by length", { conversation = usual(), conversation_id = "x", conv = "y", ["conversation\0"] = 1 } },
    { "metadata 125 containers deep (as deep as the whole allows)",
      { conversation = transcript(entry(1, "user", "a", "input", nested(124))) } },
  }
  return list
end

describe("fluxloop.recorder: shared fields (a conversation's transcript)", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function write_all(list)
    local rec = assert(recorder.open(dir))
    for i, c in ipairs(list) do
      local id = ("trace_%03d"):format(i)
      rec:begin(id)
      rec:stop()
      assert(rec:write({ trace_id = id, input = "in", output = "out", success = true, iteration = 0, metadata = {},
        shared = c[2] }))
    end
    assert(rec:close())
  end

  local function lines(path)
    local out = {}
    for line in P.read(path):gmatch("[^\n]+") do out[#out + 1] = line end
    return out
  end

  it("writes every shape of transcript as json.encode does, in both files", function()
    local list = cases()
    write_all(list)
    local sum, tr = lines(dir .. "/trace_summary.jsonl"), lines(dir .. "/traces.jsonl")
    assert.are.equal(#list, #sum)
    for i, c in ipairs(list) do
      local body = json.encode(c[2]):sub(2, -2)
      local want = (body == "" and "" or "," .. body) .. "}"
      assert.are.equal('"error":null' .. want, sum[i]:sub(-#want - 12), c[1])
      assert.are.equal('"observations":[]' .. want, tr[i]:sub(-#want - 17), c[1])
    end
  end)

  it("fails the write with the encoder's message where json.encode fails", function()
    local deep = { conversation = transcript(entry(1, "user", "a", "input", nested(125))) }
    local cycle = entry(1, "user", "a", "input", {})
    cycle.metadata.self = cycle
    local bad_key = { conversation = transcript(entry(1, "user", "a", "input", { [print] = 1 })) }
    local rec = assert(recorder.open(dir))
    for _, shared in ipairs({ deep, { conversation = transcript(cycle) }, bad_key }) do
      local want = select(2, pcall(json.encode, shared))
      rec:begin("trace_001")
      rec:stop()
      local ok, err = pcall(rec.write, rec, { trace_id = "trace_001", input = "in", output = "out", success = true,
        iteration = 0, shared = shared })
      assert.is_false(ok)
      assert.are.equal(want, err)
    end
    assert(rec:close())
    assert.are.equal("", P.read(dir .. "/traces.jsonl"), "nothing half-written")
  end)
end)
