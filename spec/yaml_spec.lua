-- yaml_spec.lua - specs for fluxloop.yaml: decoding with marks, errors with positions, encoding.
local yaml = require("fluxloop.yaml")
local json = require("fluxloop.json")

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local function fixture(name)
  local f = assert(io.open(here .. "/fixtures/yaml/" .. name, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- decode that must succeed
local function dec(text, want_marks)
  local v, m = yaml.decode(text, "t.yaml", want_marks)
  assert(v ~= nil, m)
  return v, m
end

-- decode that must fail: returns the message
local function fails(text, name)
  local v, err = yaml.decode(text, name or "t.yaml")
  assert.is_nil(v)
  assert.is_string(err)
  return err
end

local function is_array(t) return getmetatable(t) == yaml.array_mt end

describe("yaml.decode", function()
  describe("plain scalars", function()
    local cases = {
      { "~", yaml.null }, { "null", yaml.null }, { "Null", yaml.null }, { "NULL", yaml.null },
      { "true", true }, { "True", true }, { "TRUE", true }, { "yes", true }, { "Yes", true },
      { "YES", true }, { "on", true }, { "On", true }, { "ON", true },
      { "false", false }, { "False", false }, { "FALSE", false }, { "no", false }, { "No", false },
      { "NO", false }, { "off", false }, { "Off", false }, { "OFF", false },
      { "0", 0 }, { "42", 42 }, { "-17", -17 }, { "+5", 5 }, { "1_000", 1000 },
      { "0x1F", 31 }, { "0o17", 15 }, { "0b101", 5 }, { "-0x10", -16 },
      { "0755", 755 }, -- leading zero: decimal (our choice, see yamlscalar.c)
      { "9223372036854775807", math.maxinteger }, { "-9223372036854775808", math.mininteger },
      { "1.5", 1.5 }, { "-0.25", -0.25 }, { ".5", 0.5 }, { "1.", 1.0 }, { "1e3", 1000.0 },
      { "1.5E-2", 0.015 }, { "1_000.5", 1000.5 }, { ".inf", math.huge }, { "-.Inf", -math.huge },
      { "+.INF", math.huge },
      { "hello", "hello" }, { "y", "y" }, { "n", "n" }, { "1.2.3", "1.2.3" }, { "12:30", "12:30" },
      { "2024-01-01", "2024-01-01" }, { "0x", "0x" }, { "1e", "1e" }, { "yes please", "yes please" },
      { "é ü", "é ü" },
    }
    for _, c in ipairs(cases) do
      it(string.format("reads %q", c[1]), function()
        local v = dec("v: " .. c[1] .. "\n").v
        assert.equal(c[2], v)
        if type(c[2]) == "number" then assert.equal(math.type(c[2]), math.type(v)) end
      end)
    end

    it("reads .nan as NaN", function()
      for _, s in ipairs({ ".nan", ".NaN", ".NAN" }) do
        local v = dec("v: " .. s).v
        assert.is_true(v ~= v)
      end
    end)

    it("reads an empty value as null, the same null as json.null", function()
      local v = dec("a:\nb: 1\n")
      assert.equal(yaml.null, v.a)
      assert.equal(json.null, yaml.null)
    end)

    it("turns integers beyond 64 bits into floats", function()
      local v = dec("a: 99999999999999999999\nb: 0x10000000000000000\n")
      assert.equal("float", math.type(v.a))
      assert.equal(1e20, v.a)
      assert.equal(2 ^ 64, v.b)
    end)
  end)

  it("keeps quoted and block scalars as strings", function()
    local v = dec("a: \"yes\"\nb: '10'\nc: ''\nd: |\n  yes\ne: >\n  null\nf: \"~\"\n")
    assert.same({ a = "yes", b = "10", c = "", d = "yes\n", e = "null\n", f = "~" }, v)
  end)

  it("honours explicit tags", function()
    local v = dec("a: !!str 10\nb: !!int '12'\nc: !!float 3\nd: !!bool 'yes'\ne: !!null ''\n"
      .. "f: !!str yes\ng: ! 5\nh: !!map {x: 1}\ni: !!seq [1]\n")
    assert.equal("10", v.a)
    assert.equal(12, v.b)
    assert.equal("float", math.type(v.c))
    assert.equal(3.0, v.c)
    assert.is_true(v.d)
    assert.equal(yaml.null, v.e)
    assert.equal("yes", v.f)
    assert.equal("5", v.g)
    assert.same({ x = 1 }, v.h)
    assert.same({ 1 }, v.i)
  end)

  it("builds nested mappings and sequences, sequences marked as arrays", function()
    local v = dec("a:\n  b:\n    - 1\n    - [x, {y: z}]\n  c: {}\n  d: []\n")
    assert.same({ b = { 1, { "x", { y = "z" } } }, c = {}, d = {} }, v.a)
    assert.is_true(is_array(v.a.b))
    assert.is_true(is_array(v.a.b[2]))
    assert.is_true(is_array(v.a.d))
    assert.is_false(is_array(v.a.c))
    assert.is_false(is_array(v))
  end)

  it("converts non-string keys to their text", function()
    local v = dec("1: a\n0x10: b\ntrue: c\n~: d\n\"q\": e\n1.50: f\n")
    assert.same({ ["1"] = "a", ["0x10"] = "b", ["true"] = "c", ["~"] = "d", q = "e", ["1.50"] = "f" }, v)
  end)

  it("decodes an empty or comment-only document to null", function()
    assert.equal(yaml.null, dec(""))
    assert.equal(yaml.null, dec("# just a comment\n\n# another\n"))
    assert.equal(yaml.null, dec("---\n"))
    assert.equal(yaml.null, dec("~"))
  end)

  it("reads the first document only", function()
    assert.same({ a = 1 }, dec("---\na: 1\n---\nb: 2\n"))
  end)

  it("returns only the value unless marks are asked for", function()
    assert.equal(1, select("#", yaml.decode("a: 1")))
    assert.equal(2, select("#", yaml.decode("a: 1", "x", true)))
  end)

  it("raises on misuse", function()
    assert.has_error(function() yaml.decode(nil) end)
    assert.has_error(function() yaml.decode({}) end)
  end)

  describe("marks", function()
    local v, m = dec(fixture("marks.yaml"), true)

    local function at(path, line, col, key_line, key_col)
      local mk = m[path]
      assert(mk, "no mark for " .. path)
      assert.same({ line, col, key_line, key_col }, { mk.line, mk.col, mk.key_line, mk.key_col })
    end

    it("are given for the root, mappings, lists, items and scalars", function()
      assert.equal("demo", v.name)
      at("", 2, 1)
      at("name", 2, 7, 2, 1)
      at("runner", 4, 3, 3, 1)
      at("runner.target", 4, 11, 4, 3)
      at("runner.iterations", 5, 15, 5, 3)
      at("generated_inputs", 7, 3, 6, 1)
      at("generated_inputs.1", 7, 5)
      at("generated_inputs.1.input", 7, 12, 7, 5)
      at("generated_inputs.1.persona", 8, 14, 8, 5)
      at("generated_inputs.2", 9, 5)
      at("generated_inputs.2.input", 9, 12, 9, 5)
      at("generated_inputs.2.metadata", 10, 15, 10, 5)
      at("generated_inputs.2.metadata.strategy", 10, 26, 10, 16)
    end)

    it("list mapping keys in document order", function()
      assert.same({ "name", "runner", "generated_inputs" }, m[""].keys)
      assert.same({ "target", "iterations" }, m.runner.keys)
      assert.same({ "input", "persona" }, m["generated_inputs.1"].keys)
      assert.same({ "input", "metadata" }, m["generated_inputs.2"].keys)
      assert.is_nil(m.generated_inputs.keys)
      assert.is_nil(m.name.keys)
    end)

    it("cover every node and nothing else", function()
      local n = 0
      for _ in pairs(m) do n = n + 1 end
      assert.equal(13, n)
    end)

    it("are given for an empty document", function()
      local _, em = dec("", true)
      assert.same({ line = 1, col = 1 }, em[""])
    end)
  end)

  describe("anchors and aliases", function()
    it("share the anchored value", function()
      local v = dec("a: &x {k: 1}\nb: *x\nc: &s text\nd: *s\ne: [&n 5, *n]\n")
      assert.equal(v.a, v.b)
      assert.equal("text", v.d)
      assert.same({ 5, 5 }, v.e)
    end)

    it("mark the alias itself and the anchored node's members", function()
      local _, m = dec("a: &x\n  k: 1\nb: *x\n", true)
      assert.same({ 3, 4, 3, 1 }, { m.b.line, m.b.col, m.b.key_line, m.b.key_col })
      assert.same({ "k" }, m.b.keys)
      assert.same({ 2, 6, 2, 3 }, { m["b.k"].line, m["b.k"].col, m["b.k"].key_line, m["b.k"].key_col })
    end)

    it("accept an alias as a mapping key", function()
      local v = dec("a: &k name\nb: {*k : 1}\n")
      assert.equal(1, v.b.name)
    end)

    it("fail on an unknown alias, with its position", function()
      assert.equal("t.yaml:2:6: unknown alias '*nope'", fails("a: 1\nb: [ *nope ]\n"))
    end)

    it("fail on an alias to a node that contains it", function()
      assert.equal("t.yaml:1:11: alias '*a' refers to a node that contains it", fails("a: &a [1, *a]\n"))
    end)

    it("stop alias bombs, with or without marks, at the alias that goes too far", function()
      local lines = { "a: &a [x, x, x, x, x, x, x, x, x, x]" }
      for i = 2, 9 do
        local name, prev = string.char(96 + i), string.char(95 + i)
        lines[i] = string.format("%s: &%s [%s*%s]", name, name, string.rep("*" .. prev .. ", ", 9), prev)
      end
      local text = table.concat(lines, "\n")
      -- Values are shared, but a trace or a snapshot would write every copy.
      for _, marks in ipairs({ false, true }) do
        local v, err = yaml.decode(text, "bomb.yaml", marks)
        assert.is_nil(v)
        assert.equal("bomb.yaml:5:36: aliases expand to too many nodes", err)
      end
      assert.is_table(dec(table.concat(lines, "\n", 1, 4))) -- 10^4 copies are fine
    end)
  end)

  describe("merge keys", function()
    local v, m = dec(fixture("merge.yaml"), true)

    it("copy the members of one mapping, explicit keys win", function()
      assert.same({ iterations = 10, timeout_ms = 100 }, v.fast)
    end)

    it("copy a list of mappings, earlier mappings win", function()
      assert.same({ name = "both", iterations = 10, timeout_ms = 500, parallel = 4 }, v.both)
    end)

    it("accept an inline mapping", function()
      assert.same({ a = 1, b = 3 }, v.inline)
    end)

    it("give merged members the marks of their definition", function()
      assert.same({ 2, 15, 2, 3 }, { m["fast.iterations"].line, m["fast.iterations"].col,
        m["fast.iterations"].key_line, m["fast.iterations"].key_col })
      assert.same({ 9, 15 }, { m["fast.timeout_ms"].line, m["fast.timeout_ms"].col })
      assert.same({ 5, 13 }, { m["both.parallel"].line, m["both.parallel"].col })
      assert.same({ 3, 15 }, { m["both.timeout_ms"].line, m["both.timeout_ms"].col })
      assert.is_nil(m["fast.<<"])
    end)

    it("put merged keys where the merge key stood", function()
      assert.same({ "iterations", "timeout_ms" }, m.fast.keys)
      assert.same({ "name", "iterations", "timeout_ms", "parallel" }, m.both.keys)
      assert.same({ "a", "b" }, m.inline.keys)
    end)

    it("reject anything but mappings", function()
      assert.equal("t.yaml:2:5: '<<' needs a mapping or a list of mappings", fails("a: 1\n<<: 5\n"))
      assert.equal("t.yaml:1:5: '<<' needs a mapping or a list of mappings", fails("<<: [{a: 1}, 2]\n"))
    end)

    it("treat a quoted '<<' as an ordinary key", function()
      assert.same({ ["<<"] = "x" }, dec("'<<': x\n"))
    end)
  end)

  describe("errors", function()
    it("name a duplicate key at the duplicate", function()
      assert.equal("t.yaml:3:3: duplicate key 'b'", fails("a:\n  b: 1\n  b: 2\n"))
    end)

    it("name a tab used for indentation", function()
      assert.equal("cfg.yaml:2:1: a tab character; YAML indents with spaces only: replace the tab with spaces",
        fails("a:\n\tb: 1\n", "cfg.yaml"))
    end)

    it("name an unclosed quote and where it started", function()
      assert.equal("t.yaml:3:1: found unexpected end of stream (while scanning a quoted scalar at 1:4)",
        fails("a: \"abc\nb: 1\n"))
    end)

    it("name bad indentation", function()
      assert.equal("t.yaml:3:2: did not find expected key (while parsing a block mapping at 1:1)",
        fails("a:\n  b: 1\n c: 2\n"))
      assert.equal("t.yaml:2:3: mapping values are not allowed in this context", fails("a: 1\n b: 2\n"))
    end)

    it("name an unclosed flow sequence", function()
      assert.equal("t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:4)",
        fails("a: [1, 2\n"))
    end)

    it("name invalid UTF-8 by line and column", function()
      assert.equal("t.yaml:2:6: invalid leading UTF-8 octet", fails("a: 1\nb: xy\xff\n"))
    end)

    it("reject complex keys, unknown tags and bad tagged values", function()
      assert.equal("t.yaml:1:3: mapping keys must be scalars", fails("? [a]\n: 1\n"))
      assert.equal("t.yaml:1:4: unsupported tag '!env'", fails("a: !env HOME\n"))
      assert.equal("t.yaml:1:4: unsupported tag '!!str' on a mapping", fails("a: !!str {b: 1}\n"))
      assert.equal("t.yaml:1:4: invalid !!int value 'ten'", fails("a: !!int ten\n"))
    end)

    it("use \"yaml\" as the default name", function()
      local _, err = yaml.decode("a: *x")
      assert.equal("yaml:1:4: unknown alias '*x'", err)
    end)

    it("stop nesting deeper than 128 levels", function()
      assert.is_table(dec(string.rep("[", 128) .. string.rep("]", 128)))
      assert.equal("t.yaml:1:129: nested deeper than 128 levels",
        fails(string.rep("[", 129) .. string.rep("]", 129)))
      assert.equal("t.yaml:1:257: nested deeper than 128 levels", fails(string.rep("- ", 200) .. "x\n"))
    end)
  end)
end)

describe("yaml.encode", function()
  local function round(v) return (dec(yaml.encode(v))) end

  it("writes block-style YAML", function()
    assert.equal("a: 1\nb:\n- x\n- true\n- null\nc:\n  d: 1.5\n",
      yaml.encode({ a = 1, b = { "x", true, yaml.null }, c = { d = 1.5 } }))
  end)

  it("quotes strings that would read back as something else", function()
    local t = { a = "yes", b = "10", c = "", d = "null", e = "~", f = "1.5", g = "Off", h = "0x1F",
      i = "1e3", j = ".inf", k = "2024-01-01", l = "y" }
    local text = yaml.encode(t)
    for k, s in pairs(t) do
      assert.truthy(text:find(k .. ': "' .. s:gsub("%p", "%%%0") .. '"\n', 1), k)
    end
    assert.same(t, round(t))
  end)

  it("leaves ordinary strings plain", function()
    assert.equal("a: hello world\nb: examples.my_agent:run\nc: héllo\n",
      yaml.encode({ a = "hello world", b = "examples.my_agent:run", c = "héllo" }))
  end)

  it("round-trips awkward strings", function()
    local strings = { "yes", "10", "", "a: b", "- x", "#c", "'q'", '"dq"', " lead", "trail ", "<<",
      "multi\nline", "multi\nline\n", "keep\n\n", "\n", " indented\nblock", "with trailing \nspace",
      "tab\there", "cr\r\nlf", "nul\0byte", "ünïcödé ✓", "emoji 😀", "\u{feff}bom", "%x", "@x",
      "`x", "&a", "*a", "!t", "|", ">", "{a}", "[1]", "?", "a #b", "..." , "---" }
    for _, s in ipairs(strings) do
      assert.equal(s, round(s))
      assert.equal(s, round({ k = s }).k)
      assert.equal(1, round({ [s] = 1 })[s])
      assert.equal(s, round({ { s } })[1][1])
    end
  end)

  it("writes multi-line strings as literal blocks", function()
    assert.equal("text: |-\n  line one\n  line two\n", yaml.encode({ text = "line one\nline two" }))
  end)

  it("keeps UTF-8 text as is", function()
    assert.equal("s: ünïcödé ✓\n", yaml.encode({ s = "ünïcödé ✓" }))
  end)

  it("replaces invalid UTF-8 bytes", function()
    assert.equal("ab\u{FFFD}c", round("ab\xffc"))
  end)

  it("keeps numbers, booleans and null", function()
    local t = { 1, -7, math.maxinteger, math.mininteger, 1.0, -0.5, 0.1, 1e300, 2 ^ 63, math.huge,
      -math.huge, true, false, yaml.null }
    local back = round(t)
    for i, x in ipairs(t) do
      assert.equal(x, back[i])
      if type(x) == "number" then assert.equal(math.type(x), math.type(back[i])) end
    end
    local nan = round({ 0 / 0 })[1]
    assert.is_true(nan ~= nan)
    assert.equal("- 1.0\n- .nan\n- -.inf\n", yaml.encode({ 1.0, 0 / 0, -math.huge }))
  end)

  it("round-trips random numbers exactly", function()
    math.randomseed(7)
    for _ = 1, 2000 do
      local x = math.random() * 10 ^ math.random(-300, 300)
      local i = math.random(math.mininteger, math.maxinteger)
      local back = round({ x, i })
      assert.equal(x, back[1])
      assert.equal(i, back[2])
    end
  end)

  it("round-trips random strings", function()
    local alphabet = { "a", " ", "\n", "\t", ":", "-", "#", "'", '"', "y", "1", ".", "é", "\r", "\\",
      "{", "[", "0", "e", "&", "*", "!", "|", ">", "?", "~", ",", "%", "@", "\u{85}", "😀", "- ", "---" }
    math.randomseed(42)
    for _ = 1, 3000 do
      local parts = {}
      for i = 1, math.random(0, 10) do parts[i] = alphabet[math.random(#alphabet)] end
      local s = table.concat(parts)
      local back = round({ [s] = { s } })
      assert(back[s] and back[s][1] == s, string.format("%q", s))
    end
  end)

  it("writes empty tables in flow style: {} or [] when array-marked", function()
    assert.equal("a: {}\nb: []\nc: []\n", yaml.encode({ a = {}, b = yaml.array({}), c = json.array({}) }))
    assert.equal("{}\n", yaml.encode({}))
  end)

  it("writes 1..n tables as sequences and other tables as mappings", function()
    assert.equal("- a\n- b\n", yaml.encode({ "a", "b" }))
    assert.equal('"1": a\n"3": b\n', yaml.encode({ [1] = "a", [3] = "b" }))
    assert.equal('"1": a\nx: 1\n', yaml.encode({ [1] = "a", x = 1 }))
  end)

  it("sorts keys when no order is given", function()
    assert.equal("a: 1\nb: 2\nc: 3\nz: 4\n", yaml.encode({ z = 4, c = 3, a = 1, b = 2 }))
  end)

  it("follows the key order of marks, then sorts new keys", function()
    local v, m = dec("zeta: 1\nalpha:\n  y: 1\n  b: 2\nmid: [{q: 1, a: 2}]\n", true)
    v.added = true
    v.alpha.a = 0
    assert.equal("zeta: 1\nalpha:\n  \"y\": 1\n  b: 2\n  a: 0\nmid:\n- q: 1\n  a: 2\nadded: true\n",
      yaml.encode(v, { order = m }))
  end)

  it("reproduces a document written in its own style", function()
    local text = fixture("canonical.yaml")
    local v, m = dec(text, true)
    assert.equal(text, yaml.encode(v, { order = m }))
  end)

  it("ignores order entries that do not fit", function()
    assert.equal("a: 1\nb: 2\n", yaml.encode({ b = 2, a = 1 }, { order = { [""] = { keys = { "x", 3, "a" } } } }))
    assert.equal("a: 1\n", yaml.encode({ a = 1 }, { order = { [""] = "junk" } }))
  end)

  it("raises on tables nested too deep or containing themselves", function()
    local t = {}
    t.self = t
    assert.has_error(function() yaml.encode(t) end,
      "yaml.encode: nested deeper than 128 levels (or a table contains itself)")
    local deep = {}
    local cur = deep
    for _ = 1, 127 do cur[1] = {}; cur = cur[1] end
    assert.is_string(yaml.encode(deep))
    cur[1] = {}
    assert.has_error(function() yaml.encode(deep) end)
  end)

  it("raises on misuse", function()
    assert.has_error(function() yaml.encode() end)
    assert.has_error(function() yaml.encode({}, "x") end)
    assert.has_error(function() yaml.encode({ [{}] = 1 }) end, "yaml.encode: cannot use a table as a mapping key")
  end)
end)
