-- fluxloop.httplog: what a request made during a run leaves in its observation (the
-- recording itself is in http_spec.lua "inside a run"): masking and token counts.
local context = require("fluxloop.context")
local httplog = require("fluxloop.httplog")
local json = require("fluxloop.json")

describe("fluxloop.httplog", function()
  it("masks a URL's password and the values of secret query parameters", function()
    assert.are.equal("https://api.x.org/v1?api_key=***&model=gpt&token=***#f",
      httplog.mask_url("https://api.x.org/v1?api_key=sk-abc&model=gpt&token=t0k#f"))
    assert.are.equal("http://user:***@h/p?q=1", httplog.mask_url("http://user:pw@h/p?q=1"))
    assert.are.equal("http://h/p", httplog.mask_url("http://h/p"))
    assert.are.equal("http://h/p?sig=***", httplog.mask_url("http://h/p?sig=sk-abcdefghijklmnopqrstuvwxyz"))
  end)

  it("masks secret headers, given as a map or as lines", function()
    assert.are.same({ Authorization = "***", ["X-Api-Key"] = "***", ["api-key"] = "***", Cookie = "***",
      Accept = "text/plain", ["X-Note"] = "Bearer ***" },
      httplog.mask_headers({ Authorization = "Bearer sk-1", ["X-Api-Key"] = "k", "api-key: k2", Cookie = "c=1",
        Accept = "text/plain", ["X-Note"] = "Bearer abcdef" }))
  end)

  it("finds the model and usage of an answer, streamed or whole", function()
    local model, usage = httplog.usage_of({}, { model = "m", usage = { prompt_tokens = 1 } })
    assert.are.equal("m", model)
    assert.are.same({ prompt_tokens = 1 }, usage)
    model, usage = httplog.usage_of({ last_usage_event = json.encode({ model = "s", usage = { total_tokens = 9 } }) })
    assert.are.same({ "s", { total_tokens = 9 } }, { model, usage })
    assert.is_nil(httplog.usage_of({}, nil))
  end)
end)

describe("context.extra", function()
  it("turns OpenAI or Anthropic usage into the observation's token fields", function()
    assert.are.same({ model = "m", prompt_tokens = 3, completion_tokens = 4, total_tokens = 7 },
      context.extra("m", { prompt_tokens = 3, completion_tokens = 4, total_tokens = 7 }))
    assert.are.same({ prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
      context.extra(nil, { input_tokens = 10, output_tokens = 5 }))
    assert.is_nil(context.extra(nil, { prompt_tokens = "x" }))
    assert.is_nil(context.extra(nil, nil))
  end)

  it("ctx:observe{model=, usage=} writes them as the observation's own fields", function()
    local P = require("support.project")
    local dir = P.new()
    local rec = assert(require("fluxloop.recorder").open(dir))
    local ctx = setmetatable({}, context.class(rec))
    rec:begin("trace_001")
    ctx:observe({ type = "generation", name = "llm", model = "gpt-x", usage = { prompt_tokens = 2, completion_tokens = 1 } })
    ctx:observe({ name = "plain" })
    rec:stop()
    assert(rec:write({ trace_id = "trace_001", input = "i", output = "o", success = true, iteration = 0 }))
    assert(rec:close())
    local obs = P.read_jsonl(dir .. "/observations.jsonl")
    P.remove(dir)
    assert.are.same({ "gpt-x", 2, 1, 3 }, { obs[1].model, obs[1].prompt_tokens, obs[1].completion_tokens,
      obs[1].total_tokens })
    assert.is_nil(obs[2].model)
    assert.is_nil(obs[2].total_tokens)
  end)
end)
