-- generate_spec.lua - the parts of `fluxloop generate inputs`: reading configs/input.yaml
-- (gen_config: every problem with its file and line), the prompts, the endpoint and key
-- (gen_llm), and the rows of the file (gen_output). The command itself, against a local
-- model, is spec/integration/generate_spec.lua.
local P = require("support.project")
local gen_config = require("fluxloop.gen_config")
local gen_llm = require("fluxloop.gen_llm")
local gen_output = require("fluxloop.gen_output")
local json = require("fluxloop.json")
local yaml = require("fluxloop.yaml")

local INPUT = [[
personas:
  - name: novice
    description: New here
    characteristics: [Asks basic questions]
base_inputs:
  - input: "How do I start?"
    expected_intent: help
  - input: ""
  - input: "Where are the logs?"
variation_strategies: [Rephrase, "error-prone", {type: concise}, rephrase]
inputs_file: inputs/out.yaml
input_generation:
  mode: llm
  llm:
    model: m1
    strategy_prompts:
      error_prone: "Add typos."
  deterministic:
    templates:
      rephrase: "R {input} / {persona}"
      error_prone: ["E1 {input}", "E2 {input}"]
      concise: "{input}"
]]

describe("generate: gen_config", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function load(text, flags, sim)
    P.write(dir, "configs/input.yaml", text)
    if sim then P.write(dir, "configs/simulation.yaml", sim) end
    return gen_config.load(flags or {}, dir)
  end

  it("reads base inputs, personas and strategies as the Python tool normalises them", function()
    local spec, warnings = load(INPUT)
    assert.is_not_nil(spec, warnings)
    assert.are.equal("llm", spec.mode)
    assert.are.equal(2, #spec.base_inputs)
    assert.are.equal(0, spec.base_inputs[1].index)
    assert.are.equal(2, spec.base_inputs[2].index) -- the empty one is skipped, indexes stay
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1]:find("configs/input.yaml:8:5: warning: base_inputs.2: no 'input' text", 1, true),
      warnings[1])
    local names = {}
    for i, s in ipairs(spec.strategies) do names[i] = s.name end
    assert.are.same({ "rephrase", "error_prone", "concise" }, names)
    assert.are.equal(dir .. "/inputs/out.yaml", spec.inputs_file)
    assert.are.equal("m1", spec.llm.model)
  end)

  it("makes a prompt per base input x persona x strategy, in that order, with the placeholders filled", function()
    local spec = assert(load(INPUT))
    local items = gen_config.prompts(spec, "{strategy}|{input}|{persona}|{metadata}|{other}")
    assert.are.equal(6, #items)
    assert.are.same({ 0, "rephrase" }, { items[1].base_index, items[1].strategy })
    assert.are.same({ 2, "concise" }, { items[6].base_index, items[6].strategy })
    local strategy, input, persona, meta, other = items[2].prompt:match("^(.-)|(.-)|(.-)|(.-)|(.*)$")
    assert.are.equal("Add typos.", strategy)
    assert.are.equal("How do I start?", input)
    assert.are.equal("User Persona: novice\nDescription: New here\nCharacteristics: Asks basic questions\n"
      .. "Language: en\nExpertise Level: intermediate", persona)
    assert.are.same({ input = "How do I start?", expected_intent = "help" }, json.decode(meta))
    assert.are.equal("{other}", other)
    assert.are.equal(gen_config.BUILTIN.rephrase, items[1].prompt:match("^(.-)|"))
    assert.are.equal(4, #gen_config.prompts(spec, "x", 4))
  end)

  it("deterministic: a row per template, {persona} is the persona's name", function()
    local spec = assert(load(INPUT, { mode = "deterministic" }))
    local items = gen_config.prompts(spec, nil)
    assert.are.equal(8, #items) -- 2 base inputs x (1 + 2 + 1) templates
    assert.are.equal("R How do I start? / novice", items[1].prompt)
    assert.are.equal("E2 How do I start?", items[3].prompt)
  end)

  it("no persona: one prompt per base input and strategy, for a 'Generic user'", function()
    local spec = assert(load('base_inputs: [{input: hi}]\ninput_generation: {llm: {model: m}}\n'))
    local items = gen_config.prompts(spec, "{persona}")
    assert.are.equal(3, #items) -- the default strategies
    assert.are.equal("Generic user", items[1].prompt)
    assert.is_nil(items[1].persona)
  end)

  it("--strategy replaces the config's strategies", function()
    local spec = assert(load(INPUT, { strategy = { "Concise" } }))
    assert.are.equal(1, #spec.strategies)
    assert.are.equal("concise", spec.strategies[1].name)
  end)

  it("merges the section files of configs/, as run does; a key may live in simulation.yaml", function()
    local spec, err = load('base_inputs: [{input: hi}]\n', nil,
      'runner: {target: "a.b:run"}\ninput_generation: {mode: deterministic, deterministic: {templates: '
      .. '{rephrase: "r {input}", verbose: "v", concise: "c"}}}\n')
    assert.is_not_nil(spec, err)
    assert.are.equal("deterministic", spec.mode)
  end)

  local BAD = {
    { "no base_inputs", "personas: []\ninput_generation: {llm: {model: m}}\n",
      "configs/input.yaml:1:1: base_inputs: missing" },
    { "empty base_inputs", "base_inputs: []\ninput_generation: {llm: {model: m}}\n",
      "configs/input.yaml:1:14: base_inputs: expected a list of mappings with 'input', got an empty list" },
    { "a base input that is not a mapping", "base_inputs:\n  - just text\ninput_generation: {llm: {model: m}}\n",
      "configs/input.yaml:2:5: base_inputs.1: expected a mapping with 'input'" },
    { "no model", "base_inputs: [{input: hi}]\ninput_generation:\n  llm:\n    provider: openai\n",
      "configs/input.yaml:4:5: input_generation.llm.model: missing: the model to ask" },
    { "an unknown strategy without a prompt",
      "base_inputs: [{input: hi}]\nvariation_strategies:\n  - rephrase\n  - sarcastic\ninput_generation: {llm: {model: m}}\n",
      "configs/input.yaml:4:5: variation_strategies.2: unknown strategy 'sarcastic' and no prompt for it: add "
      .. "input_generation.llm.strategy_prompts.sarcastic" },
    { "a strategy without a template (deterministic)",
      "base_inputs: [{input: hi}]\nvariation_strategies: [rephrase]\ninput_generation:\n  mode: deterministic\n"
      .. "  deterministic:\n    templates: {verbose: x}\n",
      "configs/input.yaml:2:24: variation_strategies.1: no template for strategy 'rephrase': add "
      .. "input_generation.deterministic.templates.rephrase" },
    { "an unknown mode", "base_inputs: [{input: hi}]\ninput_generation: {mode: magic}\n",
      "configs/input.yaml:2:26: input_generation.mode: expected llm or deterministic, got 'magic'" },
    { "a persona without a name", "base_inputs: [{input: hi}]\npersonas:\n  - description: x\n"
      .. "input_generation: {llm: {model: m}}\n", "configs/input.yaml:3:5: personas.1.name: expected the persona's name" },
    { "a base_url that is no URL", "base_inputs: [{input: hi}]\ninput_generation: {llm: {model: m, base_url: "
      .. "\"localhost:8000/v1\"}}\n", "configs/input.yaml:2:46: input_generation.llm.base_url: 'localhost:8000/v1' is "
      .. "not a URL fluxloop can ask" },
    { "another provider", "base_inputs: [{input: hi}]\ninput_generation: {llm: {model: m, provider: anthropic}}\n",
      "input_generation.llm.provider: 'anthropic': only OpenAI-compatible endpoints" },
  }
  for _, case in ipairs(BAD) do
    it("bad input, " .. case[1] .. ": names the key with file:line:col", function()
      local spec, err = load(case[2])
      assert.is_nil(spec)
      assert.truthy(err:find(case[3], 1, true), err)
    end)
  end

  it("an unknown strategy given with --strategy names the flag", function()
    local spec, err = load(INPUT, { strategy = { "sarcastic" } })
    assert.is_nil(spec)
    assert.truthy(err:find("--strategy sarcastic: unknown strategy 'sarcastic'", 1, true), err)
  end)

  it("a missing config says how to get one", function()
    local spec, err = gen_config.load({}, dir)
    assert.is_nil(spec)
    assert.truthy(err:find("configs/input.yaml", 1, true) and err:find("fluxloop init project", 1, true), err)
    spec, err = gen_config.load({ config = "nope.yaml" }, dir)
    assert.is_nil(spec)
    assert.truthy(err:find("config file not found: nope.yaml", 1, true), err)
  end)
end)

describe("generate: gen_llm", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function env(t) return function(name) return t[name] end end

  it("finds the endpoint: config, then .env, then the environment, then the OpenAI API", function()
    local e = gen_llm.endpoint({}, dir, env({}))
    assert.are.equal("https://api.openai.com/v1/chat/completions", e.url)
    assert.is_nil(e.key)
    e = gen_llm.endpoint({}, dir, env({ OPENAI_BASE_URL = "http://h:1/v1/", OPENAI_API_KEY = "k-env" }))
    assert.are.equal("http://h:1/v1/chat/completions", e.url)
    assert.are.same({ "k-env", "OPENAI_API_KEY (the environment)" }, { e.key, e.key_from })
    P.write(dir, ".env", "# OPENAI_API_KEY=commented\nexport FLUXLOOP_LLM_API_KEY=\"k-dot\"\n")
    e = gen_llm.endpoint({}, dir, env({ OPENAI_API_KEY = "k-env" }))
    assert.are.same({ "k-dot", "FLUXLOOP_LLM_API_KEY (.env)" }, { e.key, e.key_from })
    e = gen_llm.endpoint({ api_key = "k-cfg", base_url = "http://c/v1" }, dir, env({}))
    assert.are.same({ "k-cfg", "http://c/v1/chat/completions" }, { e.key, e.url })
  end)

  it("masks the key in any text", function()
    assert.are.equal("Bearer *** and *** again", gen_llm.mask("Bearer sk-a.b+c and sk-a.b+c again", "sk-a.b+c"))
    assert.are.equal("no key", gen_llm.mask("no key", nil))
  end)

  it("takes the stripped reply of a chat answer, and says what is missing", function()
    assert.are.equal("hi there", gen_llm.reply_of({ choices = { { message = { content = "  hi there\n" } } } }))
    assert.are.equal("", gen_llm.reply_of({ choices = { { message = { content = json.null } } } }))
    local r, err = gen_llm.reply_of({ error = "x" })
    assert.is_nil(r)
    assert.truthy(err:find("choices[0].message.content", 1, true))
  end)
end)

describe("generate: gen_output", function()
  it("writes rows in the Python tool's key order, with a 16-digit prompt_hash", function()
    local item = { base_index = 1, strategy = "verbose", prompt = "abc",
      persona = { name = "novice", description = "New" }, base = { input = "orig", expected_intent = "help" } }
    local row, keys = gen_output.row(item, "new text")
    assert.are.same({ "input", "strategy", "base_index", "persona", "persona_description", "prompt_hash",
      "expected_intent" }, keys)
    assert.are.equal("ba7816bf8f01cfea", row.prompt_hash) -- sha256("abc")
    local text = gen_output.document({ row }, { keys }, { label = "x", stats = { total_generated = 1 },
      generation_config = { generation_mode = "llm" } })
    assert.truthy(text:find("^# Generated by fluxloop generate inputs"))
    assert.truthy(text:find("stats:.*inputs:.*generation_config:"), text)
    assert.truthy(text:find("- input: new text\n  strategy: verbose\n  base_index: 1\n  persona: novice\n", 1, true), text)
    local doc = yaml.decode(text)
    assert.are.equal("new text", doc.inputs[1].input)
    local norow = gen_output.row({ base_index = 0, strategy = "s", prompt = "p", base = { input = "i" } }, "t")
    assert.are.equal(json.null, norow.persona)
    assert.are.equal(json.null, norow.persona_description)
  end)
end)
