-- tokens_spec.lua - fluxloop.tokens: the token counts of the model calls, added up per run, and
-- the report's "Model tokens" section.
local tokens = require("fluxloop.tokens")
local P = require("support.project")

local function obs(trace, extra)
  return ('{"trace_id":"%s","id":"%s.1","type":"generation"%s}\n'):format(trace, trace, extra or "")
end

describe("fluxloop.tokens", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("adds up each run's calls, per model, and keeps the heaviest runs", function()
    P.write(dir, "observations.jsonl", table.concat({
      obs("trace_001", ',"model":"small","prompt_tokens":10,"completion_tokens":5,"total_tokens":15'),
      obs("trace_001", ',"model":"small","prompt_tokens":1,"completion_tokens":1,"total_tokens":2'),
      obs("trace_001", ''), -- a tool call: no counts
      obs("trace_002", ',"model":"big","prompt_tokens":100,"completion_tokens":20'), -- no total: the sum
      obs("trace_003", ''),
      obs("trace_004", ',"prompt_tokens":3,"completion_tokens":0,"total_tokens":3'),
    }))
    local t = assert(tokens.read(dir))
    assert.are.same({ 3, 4, 114, 26, 140 }, { t.runs, t.calls, t.prompt, t.completion, t.total })
    assert.are.same({ "trace_002", "trace_001", "trace_004" }, { t.top[1].trace_id, t.top[2].trace_id, t.top[3].trace_id })
    assert.are.same({ 120, 17, 3 }, { t.top[1].total, t.top[2].total, t.top[3].total })
    assert.are.equal(2, t.top[2].calls)
    assert.are.same({ "big", "small", "(no model named)" }, { t.models[1].model, t.models[2].model, t.models[3].model })
    assert.are.equal(17, t.models[2].total)
    assert.are.equal(120, t.sample:summary().max)
  end)

  it("is nil when no observation has counts, or there is no observations.jsonl", function()
    assert.is_nil(tokens.read(dir))
    P.write(dir, "observations.jsonl", obs("trace_001", ',"model":"x"'))
    assert.is_nil(tokens.read(dir))
    assert.are.equal("", tokens.section(dir, 1))
  end)

  it("renders the section with the totals and per run figures", function()
    P.write(dir, "observations.jsonl", obs("trace_001", ',"model":"m<1>","prompt_tokens":1200,"completion_tokens":34'))
    local html = tokens.section(dir, 4)
    assert.truthy(html:find('data-figure="tokens-total">1,234<', 1, true), html)
    assert.truthy(html:find("in 1 of 4 runs", 1, true), html)
    assert.truthy(html:find('<tr data-model="m&lt;1&gt;">', 1, true), html)
    assert.truthy(html:find('<tr data-trace="trace_001">', 1, true), html)
    assert.are.equal("1,234,567", tokens.thousands(1234567))
    assert.are.equal("999", tokens.thousands(999))
  end)

  it("adds a cost per model with a pricing table, and names the models it has no price for", function()
    P.write(dir, "observations.jsonl", table.concat({
      obs("trace_001", ',"model":"gpt-4o-mini-2024-07-18","prompt_tokens":1000000,"completion_tokens":500000'),
      obs("trace_002", ',"model":"local","prompt_tokens":10,"completion_tokens":10'),
    }))
    local html = tokens.section(dir, 2, { ["gpt-4o-mini"] = { input_per_1m = 0.15, output_per_1m = 0.6 } })
    assert.truthy(html:find('data-figure="tokens-cost">0.45<', 1, true), html)
    assert.truthy(html:find("1 of 2 models priced; 0.225 a run", 1, true), html)
    assert.truthy(html:find('<tr data%-model="gpt%-4o%-mini%-2024%-07%-18">.-data%-field="cost">0.45<'), html)
    assert.truthy(html:find('<tr data%-model="local">.-data%-field="cost">%-<'), html)
    assert.truthy(html:find("No price in pricing: for local", 1, true))
    local plain = tokens.section(dir, 2)
    assert.is_nil(plain:find("cost", 1, true))
  end)

  it("fluxloop report shows the section when runs recorded tokens, and not otherwise", function()
    dir = P.project({ iterations = 2, agent = [[
return { run = function(input, ctx)
  if input == "hello" then ctx:observe{ type = "generation", name = "m", model = "small",
    usage = { prompt_tokens = 10, completion_tokens = 2 } } end
  return input
end }]] })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "report " .. P.quote(exp) .. " --quiet")
    assert.are.equal(0, code, err)
    local html = P.read(exp .. "/report.html")
    assert.truthy(html:find('data-figure="tokens-total">24<', 1, true))
    assert.truthy(html:find("in 2 of 4 runs", 1, true))
    assert.is_nil(html:find('data-figure="tokens-cost"', 1, true))
    -- the config's pricing: table (in the folder's config.yaml) gives the cost: 20 x 1 + 4 x 2 per million
    P.write(dir, "configs/simulation.yaml", P.read(dir .. "/configs/simulation.yaml")
      .. "pricing:\n  small: {input_per_1m: 1, output_per_1m: 2}\n")
    os.execute("rm -rf " .. P.quote(exp))
    local code2, _, err2 = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code2, err2)
    local priced = P.experiments(dir)[1]
    assert.are.equal(0, (P.run(dir, "report " .. P.quote(priced) .. " --quiet")))
    assert.truthy(P.read(priced .. "/report.html"):find('data-figure="tokens-cost">0.000028<', 1, true))
    P.remove(dir)
    dir = P.project({ iterations = 1 })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    exp = P.experiments(dir)[1]
    assert.are.equal(0, (P.run(dir, "report " .. P.quote(exp) .. " --quiet")))
    assert.falsy(P.read(exp .. "/report.html"):find('id="tokens"', 1, true))
  end)
end)

describe("fluxloop.tokens on a large file", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("finds counts past the first read, and a key split across two reads", function()
    dir = P.new()
    local last = obs("trace_002", ',"completion_tokens":7')
    local at = last:find('_tokens":', 1, true)
    for _, cut in ipairs({ 3, 0, -3 }) do -- the key straddles the 256 KB read, or starts/ends at it
      local head = '{"trace_id":"trace_001","output":"'
      local pad = (1 << 18) - (at - 1) - cut - #head - 3
      P.write(dir, "observations.jsonl", head .. ("x"):rep(pad) .. '"}\n' .. last)
      local t = assert(tokens.read(dir), cut)
      assert.are.same({ 1, 7, "trace_002" }, { t.runs, t.total, t.top[1].trace_id })
    end
  end)
end)
