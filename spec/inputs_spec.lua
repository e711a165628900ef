-- inputs_spec.lua - specs for fluxloop.inputs: the three file shapes, bad entries, metadata rules.
local inputs = require("fluxloop.inputs")
local json = require("fluxloop.json")

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local FIX = here .. "/fixtures/inputs/"
local EXPECTED = "(expected a list under generated_inputs:, inputs:, or a top-level list)"

local function fixture(name)
  return inputs.load(FIX .. name, "inputs/" .. name)
end

local temps = {}
local function temp_file(text)
  local p = os.tmpname()
  temps[#temps + 1] = p
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

teardown(function()
  for _, p in ipairs(temps) do os.remove(p) end
end)

describe("inputs.load", function()
  it("reads entries under generated_inputs:", function()
    local entries = assert(fixture("generated.yaml"))
    assert.equal(2, #entries)
    assert.equal("How do I start?", entries[1].input)
    assert.equal("novice_user", entries[1].persona)
    assert.equal("rephrase", entries[2].metadata.strategy)
  end)

  it("reads entries under inputs: (the Python tool's files), ignoring other keys", function()
    local entries = assert(fixture("python_inputs.yaml"))
    assert.equal(2, #entries)
    assert.equal("How do I get started?", entries[1].input)
    assert.equal(0, entries[1].base_index)
    assert.equal("expert_user", entries[2].metadata.persona)
  end)

  it("reads a top-level list, with any non-null input value", function()
    local entries = assert(fixture("list.yaml"))
    assert.equal(3, #entries)
    assert.equal("second", entries[2].input)
    assert.equal("structured", entries[3].input.text)
  end)

  it("accepts an empty string and false as input", function()
    local entries = assert(inputs.load(temp_file("- input: ''\n- input: false\n")))
    assert.equal("", entries[1].input)
    assert.is_false(entries[2].input)
  end)

  it("says when the file is missing", function()
    local entries, err = inputs.load(FIX .. "nope.yaml", "inputs/nope.yaml")
    assert.is_nil(entries)
    assert.equal("inputs file not found: inputs/nope.yaml (create it, or pass --inputs FILE)",
      err)
  end)

  it("uses the path as the name when no display name is given", function()
    local p = FIX .. "nope.yaml"
    local _, err = inputs.load(p)
    assert.equal("inputs file not found: " .. p .. " (create it, or pass --inputs FILE)", err)
  end)

  it("says when the file or the list is empty", function()
    local entries, err = fixture("empty.yaml")
    assert.is_nil(entries)
    assert.equal("inputs/empty.yaml: no inputs found " .. EXPECTED, err)
    entries, err = fixture("empty_list.yaml")
    assert.is_nil(entries)
    assert.equal("inputs/empty_list.yaml: no inputs found " .. EXPECTED, err)
    local p = temp_file("generated_inputs:\n")
    entries, err = inputs.load(p, "x.yaml")
    assert.is_nil(entries)
    assert.equal("x.yaml: no inputs found " .. EXPECTED, err)
  end)

  it("names a mapping without a list", function()
    local entries, err = inputs.load(temp_file("# header\nstats: {total: 0}\n"), "x.yaml")
    assert.is_nil(entries)
    assert.equal("x.yaml:2:1: no inputs found " .. EXPECTED .. ", got a mapping", err)
  end)

  it("names a list key that holds something else", function()
    local entries, err = inputs.load(temp_file("inputs:\n  input: one\n"), "x.yaml")
    assert.is_nil(entries)
    assert.equal("x.yaml:2:3: inputs: expected a list of entries (- input: ...), got a mapping",
      err)
  end)

  it("names the entry without an input, with its line and column", function()
    local entries, err = fixture("no_input.yaml")
    assert.is_nil(entries)
    assert.equal("inputs/no_input.yaml:4:5: entry 3: missing 'input'", err)
  end)

  it("names the entry that is not a mapping", function()
    local entries, err = fixture("not_mapping.yaml")
    assert.is_nil(entries)
    assert.equal("inputs/not_mapping.yaml:4:5: entry 3: expected a mapping with an 'input' "
      .. "key, got a string", err)
  end)

  it("names bad entries of a top-level list", function()
    local _, err = inputs.load(temp_file("- input: a\n- [1, 2]\n"), "x.yaml")
    assert.equal("x.yaml:2:3: entry 2: expected a mapping with an 'input' key, got a list", err)
    _, err = inputs.load(temp_file("- input: a\n- input: null\n"), "x.yaml")
    assert.equal("x.yaml:2:3: entry 2: missing 'input'", err)
    _, err = inputs.load(temp_file("- input: a\n- input: b\n  persona: [1, 2]\n"), "x.yaml")
    assert.equal("x.yaml:3:12: entry 2: 'persona' must be a name (a string), got a list", err)
  end)

  it("passes YAML syntax errors through with line and column", function()
    local entries, err = fixture("bad_syntax.yaml")
    assert.is_nil(entries)
    assert.matches("^inputs/bad_syntax%.yaml:%d+:%d+: ", err)
  end)

  it("loads 100,000 entries", function()
    local parts = { "generated_inputs:\n" }
    for i = 1, 100000 do
      parts[#parts + 1] = '  - input: "question number ' .. i .. '"\n    persona: p'
        .. (i % 3) .. "\n"
    end
    local p = temp_file(table.concat(parts))
    local entries = assert(inputs.load(p))
    assert.equal(100000, #entries)
    assert.equal("question number 100000", entries[100000].input)
  end)
end)

describe("inputs.metadata_of", function()
  it("keeps every key but input, persona and metadata", function()
    assert.same({ strategy = "typo", base_index = 2 },
      inputs.metadata_of({ input = "x", persona = "p", strategy = "typo", base_index = 2 }))
  end)

  it("merges the metadata mapping, whose keys win", function()
    assert.same({ strategy = "meta", extra = 1, source = "file", persona = "in_meta" },
      inputs.metadata_of({ input = "x", strategy = "top", extra = 1,
        metadata = { strategy = "meta", source = "file", persona = "in_meta" } }))
  end)

  it("is an empty table when there is nothing", function()
    assert.same({}, inputs.metadata_of({ input = "x" }))
    assert.same({}, inputs.metadata_of({ input = "x", persona = "p", metadata = json.null }))
  end)

  it("does not change the entry", function()
    local entry = { input = "x", a = 1, metadata = { b = 2 } }
    local meta = inputs.metadata_of(entry)
    meta.c = 3
    assert.same({ input = "x", a = 1, metadata = { b = 2 } }, entry)
  end)
end)

describe("inputs.persona_of", function()
  it("reads entry.persona, else entry.metadata.persona", function()
    assert.equal("novice", inputs.persona_of({ input = "x", persona = "novice" }))
    assert.equal("expert", inputs.persona_of({ input = "x", metadata = { persona = "expert" } }))
    assert.equal("top", inputs.persona_of({ input = "x", persona = "top",
      metadata = { persona = "meta" } }))
    assert.is_nil(inputs.persona_of({ input = "x" }))
    assert.is_nil(inputs.persona_of({ input = "x", persona = json.null }))
  end)
end)
