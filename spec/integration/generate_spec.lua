-- `fluxloop generate inputs` end to end: the real binary against a local OpenAI-style server
-- (spec/support/mock_llm.py on 127.0.0.1, an ephemeral port) in llm mode, with 429, 500 and
-- empty replies, --parallel and --rate-limit measured at the server; deterministic mode; each
-- bad input; --overwrite, --dry-run, --limit; and the written file run as an experiment.
local mock = require("support.mock_server")
local P = require("support.project")
local yaml = require("fluxloop.yaml")

local KEY = "sk-spec-gen-0a1b2c3d4e5f6789"

-- 2 base inputs x 2 personas x 3 strategies = 12 prompts.
local INPUT = [[
personas:
  - name: novice_user
    description: A user new to the product
  - name: expert_user
    description: A user who knows the product well
base_inputs:
  - input: "How do I start?"
    expected_intent: help
  - input: "Where are the logs?"
variation_strategies: [rephrase, verbose, concise]
input_generation:
  mode: llm
  llm:
    model: spec-model
    retries: %d
  deterministic:
    templates:
      rephrase: "Put another way: {input}"
      verbose: "Hello ({persona})! {input} Please explain."
      concise: "{input}"
]]

local AGENT = [[
return { run = function(input, ctx)
  return { said = input, persona = ctx.persona, strategy = ctx.metadata.strategy,
    description = ctx.persona_info and ctx.persona_info.description }
end }
]]

local function project(opts)
  opts = opts or {}
  local dir = P.new()
  P.write(dir, "configs/input.yaml", opts.input or INPUT:format(opts.retries or 3))
  P.write(dir, "configs/simulation.yaml", "runner:\n  target: agents.agent:run\n  iterations: 1\n")
  P.write(dir, "agents/agent.lua", AGENT)
  return dir
end

local function rows_of(path)
  local doc = assert(yaml.decode(assert(P.read(path), "missing " .. path)))
  return doc.inputs, doc
end

describe("fluxloop generate inputs", function()
  local server, dir, env
  setup(function()
    server = mock.start("--api-key " .. KEY)
    env = ("OPENAI_BASE_URL=%s/v1 OPENAI_API_KEY=%s FLUXLOOP_LLM_API_KEY="):format(server.base, KEY)
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:control({ chat_rules = {}, latency_ms = 0 })
    server:reset()
  end)
  after_each(function() P.remove(dir) end)

  it("llm: one request per base input x persona x strategy; the file runs as an experiment", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs --no-progress", env)
    assert.are.equal(0, code, err)
    assert.truthy(err:find("Generated 12 inputs in [%d.]+s%. Written: inputs/generated.yaml"), err)
    assert.is_nil(err:find(KEY, 1, true), err)
    local rows, doc = rows_of(dir .. "/inputs/generated.yaml")
    assert.are.equal(12, #rows)
    assert.are.equal(12, server:stats().requests)
    assert.are.same({ total_generated = 12, base_inputs = 2, personas = 2, strategies = 3 }, doc.stats)
    assert.are.equal("spec-model", doc.generation_config.model)
    assert.are.equal("llm", doc.generation_config.generation_mode)
    assert.are.same({ "rephrase", "verbose", "concise" }, doc.generation_config.strategies)
    local r = rows[2]
    assert.truthy(r.input:find("^echo: ") and r.input:find("Original message: How do I start?", 1, true), r.input)
    assert.truthy(r.input:find("Strategy: Make it longer", 1, true), r.input)
    assert.are.same({ "verbose", 0, "novice_user", "A user new to the product", "help" },
      { r.strategy, r.base_index, r.persona, r.persona_description, r.expected_intent })
    assert.truthy(r.prompt_hash:match("^%x+$") and #r.prompt_hash == 16, r.prompt_hash)
    assert.are.equal("expert_user", rows[4].persona)
    assert.are.equal(1, rows[7].base_index)
    assert.is_nil(P.read(dir .. "/inputs/generated.yaml"):find(KEY, 1, true))

    code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local traces = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(12, #traces)
    assert.are.equal("novice_user", traces[2].persona)
    assert.are.equal("verbose", traces[2].output.strategy)
    assert.are.equal("A user new to the product", traces[2].output.description)
    assert.are.equal("help", traces[2].metadata.expected_intent)
  end)

  it("llm: a 429 with Retry-After is waited for and retried; every input is kept", function()
    dir = project()
    server:control({ chat_rules = { { match = "Make it as short", status = 429, times = 4, retry_after = 1 } } })
    local code, _, err = P.run(dir, "generate inputs --quiet --parallel 4", env)
    assert.are.equal(0, code, err)
    assert.are.equal(12, #rows_of(dir .. "/inputs/generated.yaml"))
    local stats = server:stats()
    assert.are.equal(4, stats.statuses["429"])
    assert.are.equal(12, stats.statuses["200"])
  end)

  it("llm: a prompt that keeps failing (500) is reported, the others are kept, exit 1", function()
    dir = project({ retries = 1 })
    server:control({ chat_rules = { { match = "Make it longer", status = 500 } } })
    local code, _, err = P.run(dir, "generate inputs --no-progress", env)
    assert.are.equal(1, code, err)
    local rows = rows_of(dir .. "/inputs/generated.yaml")
    assert.are.equal(8, #rows)
    for _, r in ipairs(rows) do assert.are_not.equal("verbose", r.strategy) end
    assert.truthy(err:find("warning: prompt 2 of 12 (base_inputs[0], persona novice_user, strategy verbose) failed: "
      .. "HTTP 500 from POST 127.0.0.1:", 1, true), err)
    assert.truthy(err:find("after 2 attempts: ", 1, true), err)
    assert.truthy(err:find("Generated 8 inputs in [%d.]+s %(of 12 prompts; 4 failed%)"), err)
    assert.are.equal(8, server:stats().statuses["500"])
  end)

  it("llm: an empty reply drops its row and says so", function()
    dir = project()
    server:control({ chat_rules = { { match = "Rephrase it", content = "  \n " } } })
    local code, _, err = P.run(dir, "generate inputs --no-progress", env)
    assert.are.equal(1, code, err)
    assert.are.equal(8, #rows_of(dir .. "/inputs/generated.yaml"))
    assert.truthy(err:find("prompt 1 of 12 (base_inputs[0], persona novice_user, strategy rephrase): the reply was "
      .. "empty; no input from it", 1, true), err)
    assert.truthy(err:find("4 empty", 1, true), err)
  end)

  it("llm: when every prompt fails nothing is written; a key the server quotes back is masked", function()
    dir = project({ retries = 0 })
    server:control({ chat_rules = { { match = "", status = 400, echo_headers = true } } })
    local code, _, err = P.run(dir, "generate inputs --no-progress", env)
    assert.are.equal(1, code, err)
    assert.is_nil(P.read(dir .. "/inputs/generated.yaml"))
    assert.truthy(err:find("none of the 12 prompts gave an input; nothing was written", 1, true), err)
    assert.truthy(err:find("Bearer ***", 1, true), err)
    assert.is_nil(err:find(KEY, 1, true), err)
  end)

  it("llm: --parallel N keeps at most N requests in flight, and makes them at once", function()
    dir = project()
    server:control({ latency_ms = 300 })
    local code, _, err = P.run(dir, "generate inputs --quiet --parallel 2 --limit 6", env)
    assert.are.equal(0, code, err)
    assert.are.equal(2, server:stats().max_in_flight)
    server:reset()
    code, _, err = P.run(dir, "generate inputs --quiet --parallel 6 --limit 6 --overwrite", env)
    assert.are.equal(0, code, err)
    local stats = server:stats()
    assert.are.equal(6, stats.requests)
    assert.is_true(stats.max_in_flight >= 4, stats.max_in_flight) -- 6 threads; a loaded machine may lag one
  end)

  it("llm: --rate-limit R paces the requests at the server", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs --quiet --parallel 8 --limit 8 --rate-limit 5", env)
    assert.are.equal(0, code, err)
    local stats = server:stats()
    assert.are.equal(8, stats.requests)
    assert.is_true(stats.rate <= 5.5, stats.rate)
  end)

  it("llm: Ctrl-C asks nothing more and writes what finished (exit 130)", function()
    dir = project()
    server:control({ latency_ms = 600 })
    local code, _, err = P.run_signalled(dir, "generate inputs --no-progress --parallel 2", { 0.9 }, "INT", env)
    assert.are.equal(130, code, err)
    local rows = rows_of(dir .. "/inputs/generated.yaml")
    assert.is_true(#rows >= 2 and #rows < 12, #rows)
    assert.truthy(err:find("Interrupted: " .. #rows .. " inputs", 1, true), err)
    assert.is_true(server:stats().requests < 12)
  end)

  it("--dry-run prints the prompts and their count, sends and writes nothing, needs no key", function()
    dir = project()
    local code, out, err = P.run(dir, "generate inputs --dry-run --limit 3",
      "OPENAI_API_KEY= FLUXLOOP_LLM_API_KEY= OPENAI_BASE_URL=" .. server.base .. "/v1")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("--- prompt 1 of 3 (base_inputs[0], persona novice_user, strategy rephrase)\n", 1, true), out)
    assert.truthy(out:find("Original message: How do I start?", 1, true), out)
    local last = out:match("\n([^\n]*)\n$")
    assert.are.equal("3 prompts for spec-model at " .. server.base .. "/v1/chat/completions (key: none); "
      .. "dry run: nothing sent, nothing written", last)
    assert.are.equal(0, server:stats().requests)
    assert.is_nil(P.read(dir .. "/inputs/generated.yaml"))
  end)

  it("--limit N caps the prompts; --output FILE writes there", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs --quiet --limit 5 --output out/five.yaml", env)
    assert.are.equal(0, code, err)
    local rows, doc = rows_of(dir .. "/out/five.yaml")
    assert.are.equal(5, #rows)
    assert.are.equal(5, doc.generation_config.limit)
    assert.are.equal(5, server:stats().requests)
  end)

  it("an existing file is kept without --overwrite (exit 2, nothing asked) and replaced with it", function()
    dir = project()
    P.write(dir, "inputs/generated.yaml", "inputs:\n  - input: mine\n")
    local code, _, err = P.run(dir, "generate inputs", env)
    assert.are.equal(2, code, err)
    assert.truthy(err:find("inputs/generated.yaml exists; nothing was generated (--overwrite replaces it", 1, true), err)
    assert.are.equal("inputs:\n  - input: mine\n", P.read(dir .. "/inputs/generated.yaml"))
    assert.are.equal(0, server:stats().requests)
    code, _, err = P.run(dir, "generate inputs --quiet --overwrite --limit 2", env)
    assert.are.equal(0, code, err)
    assert.are.equal(2, #rows_of(dir .. "/inputs/generated.yaml"))
  end)

  it("deterministic: rows from the config's templates, no model; the file runs as an experiment", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs --mode deterministic --strategy verbose --strategy concise",
      "OPENAI_API_KEY= OPENAI_BASE_URL=")
    assert.are.equal(0, code, err)
    local rows, doc = rows_of(dir .. "/inputs/generated.yaml")
    assert.are.equal(8, #rows)
    assert.are.equal("Hello (novice_user)! How do I start? Please explain.", rows[1].input)
    assert.are.equal("How do I start?", rows[2].input)
    assert.are.equal("deterministic", doc.generation_config.generation_mode)
    assert.is_nil(doc.generation_config.model)
    assert.are.equal(0, server:stats().requests)
    code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    assert.are.equal(8, P.read_json(P.experiments(dir)[1] .. "/summary.json").successful)
  end)

  local BAD = {
    { "no base_inputs", "personas: []\ninput_generation: {llm: {model: m}}\n",
      "configs/input.yaml:1:1: base_inputs: missing" },
    { "an unknown strategy without a prompt", "base_inputs: [{input: hi}]\nvariation_strategies: [sarcastic]\n"
      .. "input_generation: {llm: {model: m}}\n", "configs/input.yaml:2:24: variation_strategies.1: unknown strategy" },
    { "a missing model", "base_inputs: [{input: hi}]\ninput_generation:\n  llm: {provider: openai}\n",
      "configs/input.yaml:3:8: input_generation.llm.model: missing" },
    { "a YAML error", "base_inputs: [{input: hi}\n", "configs/input.yaml:2:1:" },
  }
  for _, case in ipairs(BAD) do
    it("bad input, " .. case[1] .. ": exit 2 naming the key with file:line, nothing asked", function()
      dir = project({ input = case[2] })
      local code, _, err = P.run(dir, "generate inputs", env)
      assert.are.equal(2, code, err)
      assert.truthy(err:find("fluxloop: error: " .. case[3], 1, true), err)
      assert.are.equal(0, server:stats().requests)
      assert.is_nil(P.read(dir .. "/inputs/generated.yaml"))
    end)
  end

  it("no API key for the OpenAI API: exit 2 before any request, saying where a key goes", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs", "OPENAI_API_KEY= FLUXLOOP_LLM_API_KEY= OPENAI_BASE_URL=")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("no API key for the OpenAI API: set OPENAI_API_KEY", 1, true), err)
    assert.truthy(err:find("--mode deterministic", 1, true), err)
  end)

  it("an OPENAI_BASE_URL that is no URL: exit 2 naming it, nothing asked", function()
    dir = project()
    local code, _, err = P.run(dir, "generate inputs", "OPENAI_API_KEY=k OPENAI_BASE_URL=127.0.0.1:9/v1")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("OPENAI_BASE_URL '127.0.0.1:9/v1' is not a URL fluxloop can ask", 1, true), err)
  end)

  it("the key in the project's .env is used", function()
    dir = project()
    P.write(dir, ".env", "# from init\nOPENAI_API_KEY=" .. KEY .. "\n")
    local code, _, err = P.run(dir, "generate inputs --quiet --limit 1",
      "OPENAI_API_KEY=wrong FLUXLOOP_LLM_API_KEY= OPENAI_BASE_URL=" .. server.base .. "/v1")
    assert.are.equal(0, code, err)
    assert.are.equal(0, server:stats().auth_failures)
  end)

  it("usage errors exit 2 and say what to type", function()
    dir = P.new()
    for _, c in ipairs({ { "generate", "missing 'inputs' after 'generate'" },
        { "generate input", "unknown command 'generate input'" }, { "generate inputs --limit 0", "--limit: expected" },
        { "generate inputs --mode magic", "--mode: expected llm or deterministic" },
        { "generate inputs --parallel 0", "--parallel: expected an integer from 1 to 256" },
        { "generate inputs --overwrit", "did you mean '--overwrite'" } }) do
      local code, _, err = P.run(dir, c[1])
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.truthy(err:find(c[2], 1, true), c[1] .. ": " .. err)
    end
    local code, out = P.run(dir, "generate inputs --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("Usage: fluxloop generate inputs", 1, true))
  end)
end)
