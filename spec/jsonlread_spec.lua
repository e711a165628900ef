-- jsonlread_spec.lua - fluxloop.jsonlread: fields of each line, raw text and hashes, damaged lines.
local jl = require("fluxloop.jsonlread")
local json = require("fluxloop.json")
local P = require("support.project")

local function file(text)
  local dir = P.new()
  return P.write(dir, "f.jsonl", text), dir
end

describe("fluxloop.jsonlread", function()
  local dirs = {}
  after_each(function() for _, d in ipairs(dirs) do P.remove(d) end end)

  local function open(text, keys)
    local path, dir = file(text)
    dirs[#dirs + 1] = dir
    return assert(jl.open(path, keys)), path
  end

  it("returns the chosen fields of each line, decoded", function()
    local r = open('{"a":1,"b":"x\\n\\u00e9\\ud83d\\ude00","c":true,"d":null,"e":{"k":[1,2]},"f":2.5}\n'
      .. '{"b":"plain","a":-3e2}\n', { "a", "b", "c", "d", "e", "f", "missing" })
    local n, a, b, c, d, e, f, m = r:next()
    assert.are.equal(1, n)
    assert.are.equal(1, a)
    assert.are.equal("integer", math.type(a))
    assert.are.equal("x\n\u{e9}\u{1F600}", b)
    assert.is_true(c)
    assert.is_nil(d)
    assert.are.equal('{"k":[1,2]}', e)
    assert.are.equal(2.5, f)
    assert.is_nil(m)
    n, a, b = r:next()
    assert.are.equal(2, n)
    assert.are.equal(-300, a)
    assert.are.equal("plain", b)
    assert.is_nil(r:next())
  end)

  it("gives raw JSON text with '=' and a hash with '#'", function()
    local r = open('{"o":"same"}\n{"o":"same"}\n{"o":["other"]}\n', { "=o", "#o" })
    local _, raw1, h1 = r:next()
    local _, raw2, h2 = r:next()
    local _, raw3, h3 = r:next()
    assert.are.equal('"same"', raw1)
    assert.are.equal(raw1, raw2)
    assert.are.equal(h1, h2)
    assert.are_not.equal(h1, h3)
    assert.are.equal('["other"]', raw3)
    assert.are.equal(jl.hash('"same"'), h1)
  end)

  it("counts the elements of an array with '*' (nil for anything else)", function()
    local r = open('{"a":[],"b":1}\n{"a":[1,[2,3],{"x":[4]},"s,]"]}\n{"a":"x"}\n{"b":2}\n', { "*a" })
    local got = {}
    for _ = 1, 4 do
      local n, c = r:next()
      got[n] = c == nil and "nil" or c
    end
    assert.are.same({ 0, 4, "nil", "nil" }, got)
  end)

  it("skips damaged lines, counts them and names them", function()
    local r = open('{"a":1}\n{"a":2,\n\n{"a":"x\n{"a":3} junk\n[1]\n{"a":4}\n{"a":5', { "a" })
    local seen = {}
    while true do
      local n, a = r:next()
      if not n then break end
      seen[#seen + 1] = n .. "=" .. a
    end
    assert.are.same({ "1=1", "7=4" }, seen)
    local count, list, partial = r:damaged()
    assert.are.equal(5, count)
    assert.are.same({ 2, 4, 5, 6, 8 }, { list[1].line, list[2].line, list[3].line, list[4].line, list[5].line })
    assert.matches("expected a key at byte 8", list[1].reason)
    assert.matches("unterminated string", list[2].reason)
    assert.matches("text after the object", list[3].reason)
    assert.matches("not a JSON object", list[4].reason)
    assert.matches("ends inside this line", list[5].reason)
    assert.is_true(partial)
  end)

  it("reads lines longer than its buffer and gives their offsets", function()
    local big = string.rep("y", 700000)
    local text = '{"a":"' .. big .. '"}\n{"a":"z"}\n'
    local r, path = open(text, { "a" })
    local _, a = r:next()
    assert.are.equal(big, a)
    local _, z = r:next()
    assert.are.equal("z", z)
    local line, off = r:line()
    assert.are.equal('{"a":"z"}', line)
    assert.are.equal(#big + 9, off)
    assert.are.equal('{"a":"z"}', jl.line_at(path, off))
    assert.are.same({ a = "z" }, json.decode(jl.line_at(path, off)))
  end)

  it("returns nil, message, code for a missing file", function()
    local r, err, code = jl.open("/nonexistent/x.jsonl", { "a" })
    assert.is_nil(r)
    assert.matches("/nonexistent/x.jsonl", err)
    assert.are.equal("ENOENT", code)
  end)
end)
