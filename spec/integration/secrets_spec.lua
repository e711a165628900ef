-- Secrets never reach a file: config.yaml, summary.json (an after_experiment hook that copies
-- the environment) and recordings mask secret keys, secret shapes and URL passwords.
local P = require("support.project")

local KEYS = {
  "sk-live-abcdefghijklmnopqrstuvwxyz", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
  "xoxb-1234567890-abcdefghijklmn", "AKIAIOSFODNN7EXAMPLE", "hunter2-db-password",
  "cookie-value-1234", "pat-value-5678", "plainpass-910",
  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}

describe("secrets in the files fluxloop writes", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("are masked by key name (camelCase too), by shape, and in URLs", function()
    dir = P.project({ iterations = 1, config = ([[
name: spec
runner:
  target: "agents.agent:run"
  iterations: 1
  env:
    authHeader: "%s"
    DATABASE_URL: "postgres://app:%s@db.internal/app"
    SESSION_COOKIE: "%s"
    GITHUB_PAT: "%s"
    PASS: "%s"
    MODEL_NOTE: "%s"
    SLACK: "%s"
    AWS_ID: "%s"
    BEARER: "Bearer %s"
    MODE: fast
hooks: hooks.lua
]]):format(KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[2], KEYS[3], KEYS[4], KEYS[9]),
      agent = [[
local fluxloop = require("fluxloop")
return { run = function(input)
  assert(fluxloop.record("agents.agent:run", { data = input, note = os.getenv("MODEL_NOTE"),
    conn = os.getenv("DATABASE_URL"), sessionCookie = os.getenv("SESSION_COOKIE") }))
  return "ok"
end }]] })
    P.write(dir, "hooks.lua", [[
return { after_experiment = function(summary)
  summary.env_seen = { note = os.getenv("MODEL_NOTE"), GITHUB_PAT = os.getenv("GITHUB_PAT"),
    url = os.getenv("DATABASE_URL") }
end }]])
    local code, _, err = P.run(dir, "run experiment --quiet",
      "FLUXLOOP_RECORD_ARGS=1 FLUXLOOP_RECORDING_FILE=" .. dir .. "/recordings/args.jsonl")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    local files = { exp .. "/config.yaml", exp .. "/summary.json", dir .. "/recordings/args.jsonl" }
    for _, f in ipairs(files) do
      local text = assert(P.read(f), f)
      for _, key in ipairs(KEYS) do
        assert.is_nil(text:find(key, 1, true), ("%s holds %s"):format(f, key))
      end
    end
    local cfg = P.read(exp .. "/config.yaml")
    assert.truthy(cfg:find("postgres://app:***@db.internal/app", 1, true), cfg)
    assert.truthy(cfg:find("MODE: fast", 1, true), cfg)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal("postgres://app:***@db.internal/app", s.env_seen.url)
    assert.are.equal("***", s.env_seen.GITHUB_PAT)
  end)

  it("leaves ordinary words after basic, bearer or token alone in config.yaml and the report", function()
    dir = P.project({ iterations = 1, config = [[
name: spec
runner:
  target: "agents.agent:run"
  iterations: 1
  env: {NOTE: "Basic dXNlcjpwYXNzd29yZA=="}
personas:
  - name: novice_user
    characteristics: ["asks basic questions", "the bearer of bad news", "counts every token carefully"]
]] })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    code, _, err = P.run(dir, "report " .. P.quote(exp))
    assert.are.equal(0, code, err)
    for _, f in ipairs({ exp .. "/config.yaml", exp .. "/report.html" }) do
      local text = assert(P.read(f), f)
      for _, words in ipairs({ "asks basic questions", "the bearer of bad news", "counts every token carefully" }) do
        assert.truthy(text:find(words, 1, true), ("%s lost '%s'"):format(f, words))
      end
      assert.is_nil(text:find("dXNlcjpwYXNzd29yZA", 1, true), f)
      assert.truthy(text:find("Basic ***", 1, true), f)
    end
  end)

  for _, flags in ipairs({ "", " --parallel 2", " --isolate" }) do
    it("a config secret an agent echoes is masked in the trace files" .. flags, function()
      dir = P.project({ iterations = 2, config = ([[
name: spec
runner:
  target: "agents.agent:run"
  iterations: 2
  env:
    OPENAI_API_KEY: "%s"
    SESSION_MODE: interactive
    NOTE: "db at postgres://app:%s@db/app"
]]):format(KEYS[1], KEYS[5]),
        agent = [[
return { run = function(input, ctx)
  local key = os.getenv("OPENAI_API_KEY")
  ctx.metadata.auth = "Bearer " .. key
  ctx:observe{ type = "generation", name = "call", input = { headers = { key = key } },
    output = "used " .. os.getenv("NOTE") }
  return { said = "my key is " .. key, mode = os.getenv("SESSION_MODE") }
end }]] })
      local code, _, err = P.run(dir, "run experiment --quiet" .. flags)
      assert.are.equal(0, code, err)
      local exp = P.experiments(dir)[1]
      for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
        local rows, text = P.read_jsonl(exp .. "/" .. f)
        assert.are.equal(f == "observations.jsonl" and 4 or 4, #rows)
        assert.is_nil(text:find(KEYS[1], 1, true), f)
        assert.is_nil(text:find(KEYS[5], 1, true), f)
      end
      local t = P.read_jsonl(exp .. "/traces.jsonl")[1]
      assert.are.equal("my key is ***", t.output.said)
      assert.are.equal("interactive", t.output.mode) -- a plain word is not masked in outputs
      assert.are.equal("Bearer ***", t.metadata.auth)
      assert.are.equal("used db at postgres://app:***@db/app", t.observations[1].output)
    end)
  end
end)
