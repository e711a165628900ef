-- Agents that call models, end to end: examples/llm_agent.lua and an http: target run
-- against the local mock (127.0.0.1, an ephemeral port) with --parallel 16; the shared rate
-- limit keeps a quota-enforcing server free of 429s, threads and --isolate processes alike;
-- every bad input fails its run with a clear message while the experiment goes on; and no
-- API key reaches any file.
local json = require("fluxloop.json")
local mock = require("support.mock_server")
local P = require("support.project")

local KEY = "sk-spec-key-9f8e7d6c5b4a3210"

-- Every file under dir, read whole.
local function files_under(dir)
  local h = io.popen("find " .. P.quote(dir) .. " -type f")
  local out = {}
  for path in h:lines() do out[path] = P.read(path) or "" end
  h:close()
  return out
end

local function assert_no_key(dir, ...)
  for path, text in pairs(files_under(dir)) do
    assert.is_nil(text:find(KEY, 1, true), "the API key is in " .. path)
  end
  for _, text in ipairs({ ... }) do assert.is_nil(tostring(text):find(KEY, 1, true), "the API key was printed") end
end

local function inputs(list)
  local lines = { "generated_inputs:" }
  for _, item in ipairs(list) do lines[#lines + 1] = "  - input: " .. json.encode(item) end
  return table.concat(lines, "\n") .. "\n"
end

local function only_experiment(dir)
  local list = P.experiments(dir)
  assert.are.equal(1, #list)
  return list[1]
end

describe("agents that call models", function()
  local server, dir
  setup(function() server = mock.start("--api-key " .. KEY) end)
  teardown(function() if server then server:stop() end end)
  before_each(function() server:control({ latency_ms = 0, quota = 0 }); server:reset() end)
  after_each(function() P.remove(dir) end)

  it("examples/llm_agent.lua: a tool-call round trip per run, token counts in the traces, no key in any file",
    function()
      dir = P.project({ iterations = 2, config = [[
name: llm
runner:
  target: "agents.llm_agent:run"
  iterations: 2
  env: {OPENAI_MODEL: mock-gpt}
]], inputs = inputs({ "How do I start?", "Can I export?", "Which retry policy?", "Something else" }) })
      P.write(dir, "agents/llm_agent.lua", assert(P.read("examples/llm_agent.lua")))
      local code, out, err = P.run(dir, "run experiment --parallel 16",
        ("OPENAI_BASE_URL=%s OPENAI_API_KEY=%s"):format(server:url("/v1"), KEY))
      assert.are.equal(0, code, err)
      local exp = only_experiment(dir)
      local traces = P.read_jsonl(exp .. "/traces.jsonl")
      assert.are.equal(8, #traces)
      for _, t in ipairs(traces) do
        assert.is_true(t.success, json.encode(t.error))
        assert.matches("^Using the tool's answer: ", t.output)
        local kinds = {}
        for _, o in ipairs(t.observations) do kinds[#kinds + 1] = o.type end
        assert.are.same({ "generation", "tool", "generation" }, kinds)
        assert.is_true(t.observations[1].total_tokens > 0)
        assert.are.equal("mock-gpt", t.observations[1].model)
        assert.is_true(t.observations[3].total_tokens > 0) -- the streamed answer's usage event
        assert.is_true(t.metadata.time_to_first_token_ms >= 0)
      end
      assert.are.equal(16, server:stats().statuses["200"])
      assert.are.equal(0, server:stats().auth_failures)
      assert_no_key(dir .. "/experiments", out, err)
    end)

  it("an http: target with ${NAME} headers runs with --parallel 16; config.yaml masks the header", function()
    dir = P.project({ config = ([[
name: svc
runner:
  target: "http:POST %s"
  iterations: 4
  http:
    body: '{"model": "m", "messages": [{"role": "user", "content": {{input}}}], "user": {{persona}}}'
    headers: {Authorization: "Bearer ${MOCK_KEY}"}
    output: choices.0.message.content
  env: {MOCK_KEY: %s}
]]):format(server:url("/v1/chat/completions"), KEY) })
    local code, out, err = P.run(dir, "run experiment --parallel 16")
    assert.are.equal(0, code, err)
    local exp = only_experiment(dir)
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(8, #rows)
    assert.are.equal("echo: hello", rows[1].output)
    assert.are.equal("echo: bye", rows[8].output)
    local obs = P.read_jsonl(exp .. "/observations.jsonl")
    assert.are.equal(8, #obs)
    assert.are.equal("***", obs[1].input.headers.Authorization)
    assert.are.equal(1, obs[1].prompt_tokens) -- "hello"
    assert_no_key(dir .. "/experiments", out, err)
  end)

  describe("secrets that come from the environment", function()
    -- Only in the environment of fluxloop (not runner.env), and echoed back by the server.
    local TOKEN = "svc-tok-8c1f3a9e-77b2-4d10"
    local function assert_no_token(where, ...)
      for path, text in pairs(files_under(where)) do
        assert.is_nil(text:find(TOKEN, 1, true), "the token is in " .. path)
      end
      for _, text in ipairs({ ... }) do assert.is_nil(tostring(text):find(TOKEN, 1, true), "the token was printed: " .. text) end
    end

    it("a ${NAME} header that an error body echoes is *** in every file and on stderr", function()
      dir = P.project({ iterations = 1, config = ([[
name: leak
runner:
  target: "http:POST %s"
  iterations: 2
  http:
    body: '{"q": {{input}}}'
    headers: {X-Api-Key: "${SERVICE_TOKEN}", X-Trace: "${PLAIN_ID}"}
    retries: 0
]]):format(server:url("/echo?status=401")) })
      local code, out, err = P.run(dir, "run experiment", "SERVICE_TOKEN=" .. TOKEN .. " PLAIN_ID=plain-id-12345678")
      assert.are.equal(1, code, err)
      local exp = only_experiment(dir)
      local row = P.read_jsonl(exp .. "/trace_summary.jsonl")[1]
      assert.matches("HTTP 401 from POST", row.error, 1, true)
      assert.matches('"x-api-key": "***"', row.error, 1, true)
      assert.matches("plain-id-12345678", row.error, 1, true) -- not secret: kept
      assert.matches("e.g. trace_001: HTTP 401 from POST", err, 1, true) -- the failure summary quotes the body
      assert_no_token(dir .. "/experiments", out, err)
    end)

    it("a secret-named variable a Lua agent reads with os.getenv is *** in every file and on stderr", function()
      dir = P.project({ iterations = 1, agent = [[
return { run = function(input, ctx)
  local key = os.getenv("SERVICE_TOKEN")
  ctx:observe{ type = "span", name = "call", output = "sent " .. key }
  if input == "bye" then error("the service refused key " .. key) end
  return { key = key, mode = os.getenv("SESSION_KIND") }
end }]] })
      P.write(dir, "hooks.lua", [[
return { after_experiment = function() error("hook saw " .. os.getenv("SERVICE_TOKEN")) end }]])
      local code, out, err = P.run(dir, "run experiment --hooks hooks.lua",
        "SERVICE_TOKEN=" .. TOKEN .. " SESSION_KIND=interactive")
      assert.are.equal(1, code, err)
      assert.matches("hook saw ***", err, 1, true)
      local exp = only_experiment(dir)
      local traces = P.read_jsonl(exp .. "/traces.jsonl")
      assert.are.equal("***", traces[1].output.key)
      assert.are.equal("interactive", traces[1].output.mode) -- a plain word stays
      assert.are.equal("sent ***", traces[1].observations[1].output)
      assert.matches("refused key ***", traces[2].error.message, 1, true)
      assert_no_token(dir .. "/experiments", out, err)
    end)
  end)

  it("a Lua agent's request redirected to another port leaves its secret headers behind", function()
    local other = mock.start()
    finally(function() other:stop() end)
    local to = other:url("/echo"):gsub("[:/]", function(c) return ("%%%02X"):format(c:byte()) end)
    dir = P.project({ iterations = 1, inputs = inputs({ "307", "303" }), agent = ([[
local http = require("fluxloop.http")
return { run = function(status)
  local res = assert(http.post_json(%q .. status, { a = 1 }, { headers = { ["X-Api-Key"] = "redir-key-12345678",
    Authorization = "Bearer redir-key-12345678", ["X-Plain"] = "plain" } }))
  local echo = res:json()
  local big, err = http.get(%q, { retries = 0 })
  return { method = echo.method, key = echo.headers["x-api-key"] or "none",
    auth = echo.headers["authorization"] or "none", plain = echo.headers["x-plain"], big = err }
end }]]):format(server:url("/redirect?to=" .. to .. "&status="), server:url("/big_header?bytes=150000")) })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(only_experiment(dir) .. "/trace_summary.jsonl")
    assert.are.same({ "POST", "none", "none", "plain" }, { rows[1].output.method, rows[1].output.key, rows[1].output.auth,
      rows[1].output.plain })
    assert.are.equal("GET", rows[2].output.method)
    assert.matches("a response header line is larger than 102400 bytes", rows[1].output.big, 1, true)
  end)

  describe("${NAME} in an http: target", function()
    it("is expanded in the URL, the body and the output path; config.yaml keeps ${NAME}", function()
      dir = P.project({ iterations = 1, config = [[
name: expand
runner:
  target: "http:POST http://127.0.0.1:${MOCK_PORT}/echo?api_key=${QUERY_KEY}"
  iterations: 1
  env: {OUT_FIELD: json}
  http:
    body: '{"q": {{input}}, "tenant": "${TENANT}"}'
    output: ${OUT_FIELD}.tenant
]] })
      local code, out, err = P.run(dir, "run experiment",
        ("MOCK_PORT=%d TENANT=acme QUERY_KEY=%s"):format(server.port, KEY))
      assert.are.equal(0, code, err)
      local exp = only_experiment(dir)
      local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
      assert.are.equal("acme", rows[1].output)
      local cfg = P.read(exp .. "/config.yaml")
      assert.truthy(cfg:find("http://127.0.0.1:${MOCK_PORT}/echo", 1, true), cfg)
      local obs = P.read_jsonl(exp .. "/observations.jsonl")[1]
      assert.matches("/echo%?api_key=%*%*%*", obs.input.url)
      assert_no_key(dir .. "/experiments", out, err)
    end)

    it("a ${NAME} set nowhere is a config error naming the line", function()
      dir = P.project({ config = [[
runner:
  target: "http:GET http://127.0.0.1:${NO_SUCH_PORT_VAR}/x"
  http: {output: "${NO_SUCH_FIELD_VAR}"}
]] })
      local code, _, err = P.run(dir, "run experiment")
      assert.are.equal(2, code)
      assert.matches("configs/simulation.yaml:2:11: runner.target: ${NO_SUCH_PORT_VAR} is not set in runner.env or in "
        .. "the environment", err, 1, true)
      assert.matches("runner.http.output: ${NO_SUCH_FIELD_VAR} is not set", err, 1, true)
    end)
  end)

  describe("the shared rate limit", function()
    -- 24 runs against a server that allows 8 requests/s and answers 429 to the rest
    local function quota_project(extra)
      return P.project({ config = ([[
name: quota
runner:
  target: "http:POST %s"
  iterations: 12
  http:
    body: '{"messages": [{"role": "user", "content": {{input}}}]}'
    headers: {Authorization: "Bearer ${MOCK_KEY}"}
    output: choices.0.message.content
    retries: 0
  env: {MOCK_KEY: %s}
%s]]):format(server:url("/v1/chat/completions"), KEY, extra or "") })
    end

    it("keeps 16 threads under the server's quota: no 429, every run successful", function()
      server:control({ quota = 8 })
      dir = quota_project()
      local code, _, err = P.run(dir, "run experiment --parallel 16 --rate-limit 8")
      local s = server:stats()
      assert.are.equal(0, code, err)
      assert.is_nil(s.statuses["429"])
      assert.are.equal(24, s.statuses["200"])
    end)

    it("is one bucket for --isolate worker processes too", function()
      server:control({ quota = 8 })
      dir = quota_project("  rate_limit: {requests_per_second: 8}\n")
      local code, _, err = P.run(dir, "run experiment --parallel 8 --isolate")
      local s = server:stats()
      assert.are.equal(0, code, err)
      assert.is_nil(s.statuses["429"])
      assert.are.equal(24, s.statuses["200"])
    end)

    it("without it, a 429-storming server fails runs that retries cannot save (the control)", function()
      server:control({ quota = 8 })
      dir = quota_project()
      local code = P.run(dir, "run experiment --parallel 16")
      assert.are.equal(1, code)
      assert.is_true((server:stats().statuses["429"] or 0) > 0)
    end)

    it("runner.max_concurrent_requests caps the requests in flight over all workers", function()
      dir = P.project({ config = ([[
name: cap
runner:
  target: "http:GET %s"
  iterations: 6
  max_concurrent_requests: 2
]]):format(server:url("/slow?ms=150")) })
      local code, _, err = P.run(dir, "run experiment --parallel 8")
      assert.are.equal(0, code, err)
      local s = server:stats()
      assert.are.equal(12, s.statuses["200"])
      assert.is_true(s.max_in_flight <= 2, "in flight at once: " .. s.max_in_flight)
    end)
  end)

  describe("bad input fails its run with a clear message; the experiment goes on", function()
    it("connection refused, DNS, TLS, a timeout mid-body, a body over the bound, malformed JSON, "
      .. "a close mid-stream, a redirect loop", function()
      local base = server:url("")
      local cases = {
        { "http://127.0.0.1:1/x", "connection refused" },
        { "http://no-such-host.invalid/x", "the host name does not resolve" },
        { "https://127.0.0.1:" .. server.port .. "/echo", "TLS failed" },
        { base .. "/slow_body?ms=8000", "run exceeded the time limit of 1500 ms", "timeout" },
        { base .. "/big?bytes=100000000&declare=1", "larger than max_body = 67108864 bytes" },
        { base .. "/malformed", "is not valid JSON: response:1:" },
        { base .. "/sse_close", "closed the connection before the response was complete" },
        { base .. "/redirect_loop", "more than 10 redirects" },
        { base .. "/echo", nil },
      }
      local urls = {}
      for i, c in ipairs(cases) do urls[i] = c[1] end
      dir = P.project({ iterations = 1, inputs = inputs(urls), config = [[
name: bad
runner:
  target: "agents.agent:run"
  iterations: 1
  timeout_ms: 1500
]], agent = [[
local http = require("fluxloop.http")
return { run = function(url)
  local res, err = http.get(url, { retries = 0 })
  if not res then error({ type = "http", message = err }) end
  return assert(res:json())
end }
]] })
      local code, _, err = P.run(dir, "run experiment --parallel 4")
      assert.are.equal(1, code, err)
      local rows = P.read_jsonl(only_experiment(dir) .. "/trace_summary.jsonl")
      assert.are.equal(#cases, #rows)
      for i, c in ipairs(cases) do
        local row = rows[i]
        if c[2] == nil then
          assert.is_true(row.success, json.encode(row.error))
        else
          assert.is_false(row.success, c[1])
          assert.matches(c[2], row.error, 1, true)
        end
      end
      local traces = P.read_jsonl(only_experiment(dir) .. "/traces.jsonl")
      assert.are.equal("timeout", traces[4].error.type)
      assert.are.equal("http", traces[1].error.type)
    end)

    it("an http: target whose server answers 503 after every retry: the status and the body", function()
      dir = P.project({ iterations = 1, config = ([[
runner:
  target: "http:GET %s"
  iterations: 1
  http: {retries: 1}
]]):format(server:url("/status/503?body=overloaded")) })
      local code = P.run(dir, "run experiment")
      assert.are.equal(1, code)
      local row = P.read_jsonl(only_experiment(dir) .. "/trace_summary.jsonl")[1]
      assert.matches("^HTTP 503 from GET http://127%.0%.0%.1:%d+/status/503 after 2 attempts: overloaded$", row.error)
    end)

    it("a body template that breaks with one run's values fails that run only", function()
      dir = P.project({ iterations = 1, config = ([[
runner:
  target: "http:POST %s"
  iterations: 1
  http: {body: '{ {{metadata.strategy}}: {{input}} }'}
]]):format(server:url("/echo")) })
      local code = P.run(dir, "run experiment")
      assert.are.equal(1, code)
      local rows = P.read_jsonl(only_experiment(dir) .. "/trace_summary.jsonl")
      assert.is_true(rows[1].success) -- strategy: rephrase
      assert.matches("runner.http.body is not valid JSON after the run's values were put in", rows[2].error, 1, true)
    end)

    it("an invalid URL, a bad template or a rate limit of 0 stops everything before any run", function()
      dir = P.project({ config = [[
runner:
  target: "http:POST http//127.0.0.1:9/chat"
  rate_limit: {requests_per_second: 0}
  http:
    body: '{"content": "{{input}}"}'
]] })
      local code, _, err = P.run(dir, "run experiment")
      assert.are.equal(2, code)
      assert.matches("configs/simulation.yaml:2:11: runner.target: invalid URL 'http//127.0.0.1:9/chat'", err, 1, true)
      assert.matches("configs/simulation.yaml:3:37: runner.rate_limit.requests_per_second: expected a number > 0",
        err, 1, true)
      assert.matches("configs/simulation.yaml:5:11: runner.http.body: not valid JSON", err, 1, true)
      assert.are.equal(0, #P.experiments(dir))
      code, _, err = P.run(dir, "run experiment --rate-limit -2")
      assert.are.equal(2, code)
      assert.matches("--rate-limit: expected a number > 0", err, 1, true)
    end)
  end)
end)
