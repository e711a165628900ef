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

  local function open(text, keys, opts)
    local path, dir = file(text)
    dirs[#dirs + 1] = dir
    return assert(jl.open(path, keys, opts)), path
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

  it("with max_line, leaves the long values of a longer line in the file as spans", function()
    local big = string.rep("long text ", 50)
    local text = '{"id":1,"out":"' .. big .. '","arr":[1,[2,"' .. big .. '"]],"n":5,"s":"x\\ny' .. big .. '"}\n'
      .. '{"id":2,"out":"short"}\n'
    local r, path = open(text, { "id", "=out", "*arr", "#arr", "s", "n" }, { max_line = 100 })
    local n, id, out, count, hash, s, num = r:next()
    assert.are.same({ 1, 1, 2, 5 }, { n, id, count, num })
    assert.is_true(jl.is_span(out))
    assert.are.same({ "string", #big + 2 }, { out:kind(), out:length() })
    assert.are.equal('"' .. big .. '"', out:read())
    assert.are.equal(jl.hash('[1,[2,"' .. big .. '"]]'), hash) -- read back to be hashed, counted, decoded
    assert.are.equal("x\ny" .. big, s)
    local line = r:line()
    assert.are.equal('{"id":1,"out":null,"arr":null,"n":5,"s":null}', line)
    local spans = r:spans()
    assert.are.same({ "array", "string", "string" }, { spans.arr:kind(), spans.out:kind(), spans.s:kind() })
    local f = assert(io.open(path .. ".copy", "wb"))
    assert.is_true(out:write(f))
    assert.is_true(spans.arr:write(f, "raw"))
    f:close()
    assert.are.equal('"' .. big .. '"[1,[2,"' .. big .. '"]]', P.read(path .. ".copy"))
    n, id, out = r:next()
    assert.are.same({ 2, 2, '"short"' }, { n, id, out })
    assert.is_nil(r:spans())
    assert.is_false(jl.is_span(out))
    assert.is_false(jl.is_span(json.null))
    -- Misuse raises: JSON of a span that is no string, a span of a closed reader.
    assert.has_error(function() spans.arr:write(io.stderr, "json") end)
    r:close()
    assert.has_error(function() spans.out:read() end, "jsonlread: the span's reader is closed")
  end)

  it("says so when a span's file changed under it (nil, message naming the file)", function()
    local r, path = open('{"out":"' .. string.rep("z", 200) .. '"}\n', { "=out" }, { max_line = 64 })
    local _, span = r:next()
    assert(io.open(path, "wb")):close()
    local text, err = span:read()
    assert.is_nil(text)
    assert.are.equal(path .. ": the file ends before byte 209: it changed while it was read", err)
    local f = assert(io.open(path .. ".out", "wb"))
    assert.are.same({ nil, err }, { span:write(f, "json") })
    f:close()
  end)

  it("writes a string span decoded, as JSON again or with newlines as spaces, the same as whole", function()
    local body = string.rep('a\\nb\\"\\u00e9\\ud83d\\ude00\\ud800 \xc3\xa9\xf0\x9f\x98\x80\xff\xe2\x82 `\\u0060`\\/', 300)
    local text = '{"out":"' .. body .. '"}\n'
    local whole = select(2, open(text, { "out" }):next())
    for _, max_line in ipairs({ 64, 100, 333, 4096 }) do
      local r, path = open(text, { "=out" }, { max_line = max_line })
      local _, span = r:next()
      for mode, want in pairs({ text = whole, line = (whole:gsub("\n", " ")), json = json.encode(whole) }) do
        local f = assert(io.open(path .. ".out", "wb"))
        assert.is_true(span:write(f, mode))
        f:close()
        assert.is_true(P.read(path .. ".out") == want, mode .. " at max_line " .. max_line)
      end
      local longest = 0
      for run in json.encode(whole):gmatch("`+") do longest = math.max(longest, #run) end
      assert.are.equal(longest, span:longest_run("`", "json"))
    end
  end)

  it("with max_line, finds the same damaged lines as without it, and says why", function()
    local pad = '"pad":"' .. string.rep("p", 80) .. '",'
    local lines = { '{' .. pad .. '"a":1}', '{' .. pad .. '"a":"x\x01"}', '{' .. pad .. '"a":"\\q"}',
      '{' .. pad .. '"a":"\\u12g4"}', '{' .. pad .. '"a":-}', '{' .. pad .. '"a":1.}', '{' .. pad .. '"a":1e}',
      '{' .. pad .. '"a":01}', '{' .. pad .. '"a":tru}', '{' .. pad .. '"a":[1,]}', '{' .. pad .. '"a":{"b" 1}}',
      '{' .. pad .. '"a":1} x', '[' .. pad .. '1]', '{' .. pad .. '"a":1', '{' .. pad .. 'a:1}',
      '{' .. pad .. '"a":' .. string.rep("[", 129) .. string.rep("]", 129) .. '}',
      '{' .. pad .. '"a":' .. string.rep("[", 128) .. string.rep("]", 128) .. '}',
      '{' .. pad .. '"a":[1,{"b":[true,false,null,-0.5e+3,"\\u00e9"]}]}', '  {' .. pad .. '"a":2}  ', string.rep(" ", 120),
      '{' .. pad .. '"a":"ends inside' }
    local text = table.concat(lines, "\n")
    local function verdicts(opts)
      local r = open(text, { "a" }, opts)
      local ok = {}
      while true do
        local n = r:next()
        if not n then break end
        ok[#ok + 1] = n
      end
      local count, list = r:damaged()
      local why = {}
      for _, d in ipairs(list) do why[#why + 1] = d.line .. ": " .. d.reason:gsub(" at byte %d+", "") end
      return ok, count, why
    end
    local ok1, count1, why1 = verdicts(nil)
    local ok2, count2, why2 = verdicts({ max_line = 64 })
    assert.are.same({ 1, 17, 18, 19 }, ok1)
    assert.are.same(ok1, ok2)
    assert.are.equal(count1, count2)
    assert.are.same({ "2: control character in a string", "3: bad escape in a string", "4: bad \\u escape" },
      { why2[1], why2[2], why2[3] })
    assert.are.equal(#why1, #why2)
  end)

  it("returns nil, message, code for a missing file", function()
    local r, err, code = jl.open("/nonexistent/x.jsonl", { "a" })
    assert.is_nil(r)
    assert.matches("/nonexistent/x.jsonl", err)
    assert.are.equal("ENOENT", code)
  end)
end)
