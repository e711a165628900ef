-- json_spec.lua - fluxloop.json: encoding, decoding, errors and the null/array markers.
local json = require("fluxloop.json")

local FFFD = "\u{FFFD}"

local function valid_utf8(s)
  return utf8.len(s) ~= nil -- strict: no overlongs, surrogates or > U+10FFFF
end

local function nested_arrays(n)
  return string.rep("[", n) .. string.rep("]", n)
end

describe("fluxloop.json.encode", function()
  it("writes scalars", function()
    assert.are.equal("null", json.encode(nil))
    assert.are.equal("true", json.encode(true))
    assert.are.equal("false", json.encode(false))
    assert.are.equal('"hi"', json.encode("hi"))
    assert.are.equal("null", json.encode(json.null))
  end)

  it("keeps integers and floats apart", function()
    assert.are.equal("3", json.encode(3))
    assert.are.equal("3.0", json.encode(3.0))
    assert.are.equal("-0.0", json.encode(-0.0))
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.are.equal("9007199254740992.0", json.encode(2.0 ^ 53))
    assert.are.equal("1e+300", json.encode(1e300))
    assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
  end)

  it("writes floats that read back to the same value and type", function()
    for _, x in ipairs({ 1 / 3, 2 / 3, 0.1, 1e-7, 123456.789, 2.0 ^ 63, 5e-324,
                         1.7976931348623157e308, -2.5, 1e21, 100.0 }) do
      local back = json.decode(json.encode(x))
      assert.are.equal(x, back)
      assert.are.equal("float", math.type(back))
    end
  end)

  it("writes NaN and infinities as null", function()
    assert.are.equal("null", json.encode(0 / 0))
    assert.are.equal("null", json.encode(math.huge))
    assert.are.equal("null", json.encode(-math.huge))
    assert.are.equal('{"x":null,"y":[null]}', json.encode({ x = 0 / 0, y = { math.huge } }))
  end)

  it("writes sequences as arrays and {} as an object", function()
    assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[]", json.encode(json.array({})))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal('{"a":[],"b":{}}', json.encode({ a = json.array(), b = {} }))
  end)

  it("writes tables with other keys as objects", function()
    assert.are.equal('{"1":1,"2":2,"x":3}', json.encode({ 1, 2, x = 3 }))
    assert.are.equal('{"2":"b"}', json.encode({ [2] = "b" }))
    local holes = { 1, 2 }
    holes[4] = 4
    assert.are.equal('{"1":1,"2":2,"4":4}', json.encode(holes))
  end)

  it("sorts object keys bytewise", function()
    assert.are.equal('{"B":4,"a":2,"aa":5,"b":1,"c":3}',
      json.encode({ b = 1, a = 2, c = 3, B = 4, aa = 5 }))
    local t, keys = {}, {}
    for i = 1, 300 do
      local k = "k" .. (i * 7919 % 1000)
      t[k] = i
      keys[#keys + 1] = k
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%q:%d", k, t[k]) end
    assert.are.equal("{" .. table.concat(parts, ",") .. "}", json.encode(t))
  end)

  it("writes number and boolean keys as text and rejects other keys", function()
    assert.are.equal('{"1.5":"f","10":"i","true":"b","x":"s"}',
      json.encode({ [1.5] = "f", [10] = "i", [true] = "b", x = "s" }))
    assert.are.equal('{"1":"s","1":"n"}', json.encode({ [1] = "n", ["1"] = "s" }))
    local ok, err = pcall(json.encode, { [print] = 1 })
    assert.is_false(ok)
    assert.are.equal("cannot encode value: table key of type function", err)
  end)

  it("pretty-prints with indent", function()
    local v = { a = { 1, { x = 2 } }, b = {}, c = json.array(), d = "s" }
    assert.are.equal(table.concat({
      "{",
      '  "a": [',
      "    1,",
      "    {",
      '      "x": 2',
      "    }",
      "  ],",
      '  "b": {},',
      '  "c": [],',
      '  "d": "s"',
      "}" }, "\n"), json.encode(v, { indent = 2 }))
    assert.are.equal('[\n1,\n{\n"a": true\n}\n]', json.encode({ 1, { a = true } }, { indent = 0 }))
    assert.are.equal("[1,2]", json.encode({ 1, 2 }, {}))
    assert.has_error(function() json.encode({}, { indent = "x" }) end)
    assert.has_error(function() json.encode({}, { indent = -1 }) end)
  end)

  it("escapes quotes, backslashes and control characters only", function()
    assert.are.equal([["\"\\/\b\f\n\r\t\u0001\u001f]] .. "\127" .. [["]],
      json.encode("\"\\/\b\f\n\r\t\1\31\127"))
    assert.are.equal('"é 中 😀"', json.encode("é 中 😀"))
  end)

  it("escapes embedded NUL bytes and reads them back", function()
    local s = "a\0b\0"
    assert.are.equal([["a\u0000b\u0000"]], json.encode(s))
    local back = json.decode(json.encode(s))
    assert.are.equal(4, #back)
    assert.are.equal(s, back)
    assert.are.equal(s, json.decode(json.encode({ [s] = s }))[s])
  end)

  it("replaces each byte of invalid UTF-8 with U+FFFD", function()
    local cases = {
      { "\xff", FFFD },                                   -- never valid
      { "a\x80b", "a" .. FFFD .. "b" },                   -- lone continuation
      { "\xc0\xaf", FFFD:rep(2) },                        -- overlong '/'
      { "\xe0\x80\xaf", FFFD:rep(3) },                    -- overlong, 3 bytes
      { "\xed\xa0\x80", FFFD:rep(3) },                    -- UTF-16 surrogate
      { "\xf4\x90\x80\x80", FFFD:rep(4) },                -- above U+10FFFF
      { "\xf8\x88\x80\x80\x80", FFFD:rep(5) },            -- 5-byte form
      { "x\xe2\x82", "x" .. FFFD:rep(2) },                -- truncated at the end
      { "\xe2\x82A\xf0\x9f\x98", FFFD:rep(2) .. "A" .. FFFD:rep(3) },
      { "ok \xe2\x82\xac \xf0\x9f\x98\x80", "ok € 😀" },  -- valid, kept
    }
    for _, c in ipairs(cases) do
      local text = json.encode(c[1])
      assert.is_true(valid_utf8(text))
      assert.are.equal(c[2], json.decode(text))
      assert.are.equal(c[2], (next(json.decode(json.encode({ [c[1]] = 1 })))))
    end
  end)

  it("escapes a special byte wherever it falls in a long plain run", function()
    local specials = { { '"', '\\"' }, { "\\", "\\\\" }, { "\n", "\\n" }, { "\1", "\\u0001" },
                       { "\127", "\127" }, { "\255", FFFD }, { "é", "é" }, { " ", " " } }
    for len = 1, 40 do
      for i = 1, len do
        for _, c in ipairs(specials) do
          local s = ("a"):rep(i - 1) .. c[1] .. ("b"):rep(len - i)
          assert.are.equal('"' .. ("a"):rep(i - 1) .. c[2] .. ("b"):rep(len - i) .. '"', json.encode(s))
        end
      end
    end
  end)

  it("always writes valid UTF-8 that decodes back, for random bytes", function()
    math.randomseed(42)
    for _ = 1, 300 do
      local bytes = {}
      for i = 1, math.random(0, 40) do bytes[i] = math.random(0, 255) end
      local s = string.char(table.unpack(bytes))
      local text = json.encode({ s, { [s] = s } })
      assert.is_true(valid_utf8(text))
      local back = assert(json.decode(text))
      assert.are.equal(text, json.encode(back))
      if valid_utf8(s) then
        assert.are.equal(s, back[1])
        assert.are.equal(s, back[2][s])
      end
    end
  end)

  it("round-trips a 10 MB string", function()
    local s = string.rep("abcdefghi\n", 1000000) .. "é\0\"\\"
    local text = json.encode({ output = s })
    assert.are.equal(#s + #'{"output":""}' + 1000000 + 7, #text)
    assert.are.equal(s, json.decode(text).output)
  end)

  it("writes a function as <callable:KEY>, or as its name in json.function_names", function()
    local named = function() end
    json.function_names[named] = "<builtin:collector.send>"
    assert.are.equal('"<callable:function>"', json.encode(print))
    assert.are.equal('{"cb":"<callable:cb>","list":["<callable:function>"],"send":"<builtin:collector.send>"}',
      json.encode({ cb = print, list = { print }, send = named }))
    assert.are.equal('{"a\\"b":"<callable:a\\"b>","n":{"2":"<callable:function>"}}',
      json.encode({ ['a"b'] = print, n = { [2] = print } }))
    json.function_names[named] = nil
    assert.are.equal('{"send":"<callable:send>"}', json.encode({ send = named }))
  end)

  it("writes userdata and threads as their tostring text", function()
    assert.truthy(json.encode(io.stdout):match('^"file %(.+%)"$'))
    assert.truthy(json.encode(coroutine.create(print)):match('^"thread: .+"$'))
    local t = setmetatable({ 1 }, { __tostring = function() return "T" end })
    assert.are.equal("[1]", json.encode(t)) -- tables stay tables
  end)

  it("lets a __tostring call encode again, and survives its errors", function()
    local co = coroutine.create(print)
    local mt = { __tostring = function() return json.encode({ inner = true }) end }
    debug.setmetatable(co, mt)
    local ok, text = pcall(json.encode, { co, "x" })
    mt.__tostring = function() error("boom", 0) end
    local ok2, err = pcall(json.encode, { co })
    debug.setmetatable(co, nil)
    assert.is_true(ok)
    assert.are.equal([=[["{\"inner\":true}","x"]]=], text)
    assert.is_false(ok2)
    assert.are.equal("boom", err)
    assert.are.equal('{"after":1}', json.encode({ after = 1 }))
  end)

  it("accepts 128 levels of nesting and refuses 129", function()
    local function nest(n)
      local t = {}
      for _ = 2, n do t = { t } end
      return t
    end
    assert.are.equal(string.rep("[", 127) .. "{}" .. string.rep("]", 127), json.encode(nest(128)))
    local ok, err = pcall(json.encode, nest(129))
    assert.is_false(ok)
    assert.are.equal("cannot encode value: nested deeper than 128 levels (is there a cycle?)", err)
  end)

  it("reports tables that contain themselves", function()
    local t = { name = "loop" }
    t.self = t
    local ok, err = pcall(json.encode, t)
    assert.is_false(ok)
    assert.are.equal("cannot encode value: nested deeper than 128 levels (is there a cycle?)", err)
    local a, b = {}, {}
    a[1], b[1] = b, a
    assert.has_error(function() json.encode(a) end,
      "cannot encode value: nested deeper than 128 levels (is there a cycle?)")
  end)

  it("encodes big arrays and objects", function()
    local arr, obj = {}, {}
    for i = 1, 100000 do
      arr[i] = i
      obj["k" .. i] = i
    end
    local back = json.decode(json.encode(arr))
    assert.are.equal(100000, #back)
    assert.are.equal(99999, back[99999])
    local o = json.decode(json.encode(obj))
    assert.are.equal(77777, o.k77777)
    assert.truthy(json.encode(obj):match('^{"k1":1,"k10":10,"k100":100,"k1000":1000,'))
  end)
end)

describe("fluxloop.json.decode", function()
  it("reads objects, arrays and scalars", function()
    local v = json.decode(' {"a": [1, "two", true, false, null], "b": {"c": -2.5}} ')
    assert.are.same({ 1, "two", true, false, json.null }, v.a)
    assert.are.equal(-2.5, v.b.c)
    assert.are.equal("x", json.decode('"x"'))
    assert.are.equal(false, json.decode("false"))
  end)

  it("keeps integers and floats apart by their spelling", function()
    local v = json.decode("[1, 1.0, 1e2, -0, 9223372036854775807, 9223372036854775808, " ..
      "-9223372036854775808, 2.5E-3]")
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal("float", math.type(v[2]))
    assert.are.equal(100.0, v[3])
    assert.are.equal("float", math.type(v[3]))
    assert.are.equal("integer", math.type(v[4]))
    assert.are.equal(math.maxinteger, v[5])
    assert.are.equal("float", math.type(v[6]))
    assert.are.equal(math.mininteger, v[7])
    assert.are.equal(0.0025, v[8])
    assert.are.equal("[1,1.0,100.0,0,9223372036854775807,9.223372036854776e+18," ..
      "-9223372036854775808,0.0025]", json.encode(v))
  end)

  it("reads escapes and surrogate pairs", function()
    assert.are.equal("\"\\/\b\f\n\r\t", json.decode([["\"\\\/\b\f\n\r\t"]]))
    assert.are.equal("é€😀", json.decode([["\u00e9\u20AC\ud83d\ude00"]]))
    assert.are.equal("a\0b", json.decode([["a\u0000b"]]))
  end)

  it("gives null as json.null, both ways", function()
    assert.are.equal(json.null, json.decode("null"))
    assert.are.equal(json.null, json.decode('{"a": null}').a)
    assert.are.equal(json.null, json.decode("[null]")[1])
    assert.are.equal("userdata", type(json.null))
    assert.are.equal('{"a":null,"b":[null,1]}', json.encode(json.decode('{"a":null,"b":[null,1]}')))
  end)

  it("shares null and the array marker with fluxloop.yaml", function()
    local yaml = require("fluxloop.yaml")
    assert.are.equal(json.null, yaml.null)
    assert.are.equal(json.array_mt, getmetatable(yaml.decode("[]")))
  end)

  it("marks arrays so that empty ones stay arrays", function()
    assert.are.equal(json.array_mt, getmetatable(json.decode("[]")))
    assert.are.equal(json.array_mt, getmetatable(json.decode("[[1]]")[1]))
    assert.is_nil(getmetatable(json.decode("{}")))
    assert.are.equal('{"a":[],"b":{}}', json.encode(json.decode('{"a":[],"b":{}}')))
  end)

  it("takes the last of repeated keys, a BOM and any white space", function()
    assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
    assert.are.same({ 1 }, json.decode("\xEF\xBB\xBF[1]"))
    assert.are.same({ 1, 2 }, json.decode("\r\n\t [ 1 ,\n 2 ] \n"))
  end)

  it("reports syntax errors with line and column", function()
    local cases = {
      { '{\n  "a": [1,\n  2,,]\n}', "cfg.json:3:5: invalid JSON near ',]'" },
      { '{"a": 1,\n "b" 2}', "cfg.json:2:6: invalid JSON near '2}'" },
      { '{"a": 1}\n[2]', "cfg.json:2:1: invalid JSON near '[2]'" },
      { '["é", x]', "cfg.json:1:7: invalid JSON near 'x]'" },
      { '[1,', "cfg.json:1:4: invalid JSON at end of text" },
      { '{"a":\n', "cfg.json:2:1: invalid JSON at end of text" },
      { '{"a": "b', "cfg.json:1:7: unterminated string" },
      { '[tru]', "cfg.json:1:2: invalid JSON near 'tru]'" },
      { '[1.5.3]', "cfg.json:1:2: invalid JSON near '1.5.3]'" },
      { '{"a":1,}', "cfg.json:1:8: invalid JSON near '}'" },
      { '["\\x"]', "cfg.json:1:3: invalid JSON near '\\x\"]'" },
      { '["\\uZZZZ"]', "cfg.json:1:3: invalid JSON near '\\uZZZZ\"]'" },
      { '"\\ud800"', "cfg.json:1:2: invalid JSON near '\\ud800\"'" },
      { "[1, 'a']", "cfg.json:1:5: invalid JSON near ''a']'" },
      { "{\"k\": 12345678901234567890123456789x}",
        "cfg.json:1:36: invalid JSON near 'x}'" },
    }
    for _, c in ipairs(cases) do
      local v, err = json.decode(c[1], "cfg.json")
      assert.is_nil(v)
      assert.are.equal(c[2], err)
    end
  end)

  it("cuts the quoted context at 20 bytes and at the end of the line", function()
    local _, err = json.decode("[1, " .. string.rep("x", 50) .. "]")
    assert.are.equal("json:1:5: invalid JSON near '" .. string.rep("x", 20) .. "'", err)
    _, err = json.decode("[1, @\n2]")
    assert.are.equal("json:1:5: invalid JSON near '@'", err)
  end)

  it("refuses empty text", function()
    assert.are.same({ nil, "json:1:1: empty JSON text" }, { json.decode("") })
    assert.are.same({ nil, "x.json:1:1: empty JSON text" }, { json.decode(" \n\t ", "x.json") })
  end)

  it("accepts 128 levels of nesting and refuses deeper", function()
    local v = assert(json.decode(nested_arrays(128)))
    assert.are.equal(nested_arrays(128), json.encode(v))
    assert.are.same({ nil, "json:1:129: nested deeper than 128 levels" },
      { json.decode(nested_arrays(129)) })
    -- deeper than cJSON's own limit: still our message
    assert.are.same({ nil, "json:1:129: nested deeper than 128 levels" },
      { json.decode(nested_arrays(5000)) })
    local deep = string.rep('{"a":\n', 130) .. "1" .. string.rep("}", 130)
    assert.are.same({ nil, "json:129:1: nested deeper than 128 levels" }, { json.decode(deep) })
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() json.decode({}) end)
    assert.has_error(function() json.decode() end)
  end)
end)

describe("fluxloop.json.array", function()
  it("marks the table given or a new one", function()
    local t = { 1 }
    assert.are.equal(t, json.array(t))
    assert.are.equal(json.array_mt, getmetatable(t))
    assert.are.equal(json.array_mt, getmetatable(json.array()))
    assert.has_error(function() json.array("x") end)
  end)

  it("makes a marked table encode as an array", function()
    assert.are.equal("[1,2]", json.encode(json.array({ 1, 2, x = 3 })))
  end)
end)
