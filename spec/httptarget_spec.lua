-- fluxloop.httptarget: "http:METHOD URL" targets, the runner.http body template, ${NAME} in
-- headers, the output path; and their checks in the config (file:line:col, before any run).
local config = require("fluxloop.config")
local httptarget = require("fluxloop.httptarget")
local json = require("fluxloop.json")
local mock = require("support.mock_server")
local P = require("support.project")

describe("fluxloop.httptarget", function()
  it("parses http:METHOD URL and checks the URL", function()
    assert.are.same({ "POST", "http://127.0.0.1:8000/chat" }, { httptarget.parse("http:POST http://127.0.0.1:8000/chat") })
    assert.are.same({ "GET", "https://x.org/a?b=1" }, { httptarget.parse("http: GET https://x.org/a?b=1") })
    local _, err = httptarget.parse("http:POST http//x/chat")
    assert.matches("invalid URL 'http//x/chat'", err)
    _, err = httptarget.parse("http:FETCH http://x/")
    assert.matches("unknown HTTP method 'FETCH'", err)
    _, err = httptarget.parse("http:http://x/")
    assert.matches('expected "http:METHOD URL"', err)
  end)

  it("replaces placeholders by the JSON of the run's values, quotes included", function()
    local parts = assert(httptarget.compile('{"q": {{input}}, "p": {{ persona }}, "i": {{iteration}}, '
      .. '"t": {{metadata.topic}}, "m": {{metadata.missing}}, "id": {{trace_id}}}'))
    local text = httptarget.render(parts, { input = 'say "hi"\n', persona = nil, iteration = 2, trace_id = "trace_007",
      metadata = { topic = { a = 1 } } })
    assert.are.same({ q = 'say "hi"\n', p = json.null, i = 2, t = { a = 1 }, m = json.null, id = "trace_007" },
      json.decode(text))
    local _, err = httptarget.compile('{"x": {{inptu}}}')
    assert.matches("unknown placeholder {{inptu}}: use {{input}}", err)
  end)

  it("expands ${NAME} from runner.env first, then the environment", function()
    assert.are.equal("Bearer from-env", httptarget.expand("Bearer ${K}", { K = "from-env" }))
    assert.are.equal("home " .. os.getenv("HOME"), httptarget.expand("home ${HOME}", {}))
    assert.are.same({ nil, "NOPE_NOT_SET_123" }, { httptarget.expand("${NOPE_NOT_SET_123}", {}) })
  end)

  it("check() finds a bad URL, a template that is not JSON, an unset variable", function()
    local problems = httptarget.check("http:POST http://x/chat", {
      body = '{"content": "{{input}}"}', headers = { Authorization = "Bearer ${NOPE_NOT_SET_123}" } }, {})
    assert.are.equal(2, #problems)
    local by = {}
    for _, p in ipairs(problems) do by[p.path] = p.message end
    assert.matches("not valid JSON once its placeholders are replaced", by["runner.http.body"])
    assert.matches("write \"content\": {{input}}", by["runner.http.body"])
    assert.matches("${NOPE_NOT_SET_123} is not set", by["runner.http.headers.Authorization"])
    -- a body that is not JSON by its Content-Type is not checked as JSON
    assert.are.same({}, httptarget.check("http:POST http://x/", { body = "q={{input}}",
      headers = { ["Content-Type"] = "text/plain" } }, {}))
  end)
end)

describe("httptarget: ${NAME} beyond the headers", function()
  it("check() expands the URL, the body and the output path before checking them", function()
    local env = { PORT = "8123", FIELD = "choices", MODEL = "m1" }
    assert.are.same({}, httptarget.check("http:POST http://127.0.0.1:${PORT}/v1", {
      body = '{"model": "${MODEL}", "q": {{input}}}', output = "${FIELD}.0" }, env))
    local problems = httptarget.check("http:POST http://127.0.0.1:${NOPE_PORT_123}/v1", { output = "${NOPE_F_123}" }, {})
    assert.are.same({ { path = "runner.target", message = "${NOPE_PORT_123} is not set in runner.env or in the environment" },
      { path = "runner.http.output", message = "${NOPE_F_123} is not set in runner.env or in the environment" } }, problems)
    -- an expanded URL is still checked
    problems = httptarget.check("http:GET http://127.0.0.1:${PORT}/v1", {}, { PORT = "99999" })
    assert.matches("invalid URL 'http://127.0.0.1:99999/v1'", problems[1].message, 1, true)
  end)

  it("secret_values() lists what ${NAME}s put in a secret header, key, query parameter or password", function()
    local env = { TOK = "tok-value-1234", PLAIN = "plain-value-1234", SHORT = "abc", API_TOKEN = "named-secret-99",
      Q = "query-secret-77", PW = "url-password-55", BK = "body-secret-33", MODEL = "model-name-1234" }
    local list = httptarget.secret_values("http:POST https://u:${PW}@h/v1?k=${PLAIN}&api_key=${Q}", {
      headers = { ["X-Api-Key"] = "${TOK}", ["X-Short"] = "${SHORT}", Authorization = "Bearer ${SHORT}",
        ["X-Trace"] = "${PLAIN}", ["X-Other"] = "${API_TOKEN}" },
      body = '{"model": "${MODEL}", "password": "${BK}"}' }, env)
    local set = {}
    for _, v in ipairs(list) do set[v] = true end
    assert.are.same({ ["tok-value-1234"] = true, ["named-secret-99"] = true, ["query-secret-77"] = true,
      ["url-password-55"] = true, ["body-secret-33"] = true }, set)
  end)
end)

describe("config: http: targets", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function load(yaml) return P.load_config(dir, yaml) end

  it("reads runner.http", function()
    local cfg = assert(load([[
runner:
  target: "http:POST http://127.0.0.1:8000/chat"
  http:
    body: '{"content": {{input}}}'
    headers: {Authorization: "Bearer ${KEY}"}
    output: choices.0.message.content
    timeout_ms: 5000
    retries: 1
  env: {KEY: abc}
]]))
    assert.are.same({ body = '{"content": {{input}}}', headers = { Authorization = "Bearer ${KEY}" },
      output = "choices.0.message.content", timeout_ms = 5000, retries = 1 }, cfg.runner.http)
  end)

  it("points at the line and column of an invalid URL, template or variable", function()
    local cfg, err = load([[
runner:
  target: "http:POST http//127.0.0.1:8000/chat"
  http:
    body: '{"content": "{{input}}"}'
    headers:
      Authorization: "Bearer ${NOPE_NOT_SET_123}"
    retries: 50
]])
    assert.is_nil(cfg)
    assert.matches("configs/simulation.yaml:2:11: runner.target: invalid URL 'http//127.0.0.1:8000/chat'", err)
    assert.matches("configs/simulation.yaml:4:11: runner.http.body: not valid JSON", err)
    assert.matches("configs/simulation.yaml:6:22: runner.http.headers.Authorization: ${NOPE_NOT_SET_123} is not set", err)
    assert.matches("configs/simulation.yaml:7:14: runner.http.retries: expected an integer from 0 to 20", err)
  end)

  it("expands ${NAME} in timeout_ms and retries, runner.env first, then the environment", function()
    local cfg = assert(load([[
runner:
  target: "http:POST http://127.0.0.1:8000/chat"
  http:
    timeout_ms: "${T_MS}"
    retries: "${HOME_RETRIES_NOT_SET_123}"
  env: {T_MS: "2500", HOME_RETRIES_NOT_SET_123: " 2 "}
]]))
    assert.are.same({ 2500, 2 }, { cfg.runner.http.timeout_ms, cfg.runner.http.retries })
    -- From the environment: HOME is set and is no integer.
    local _, err = load([[
runner:
  target: "http:POST http://127.0.0.1:8000/chat"
  http:
    timeout_ms: "${NOPE_T_NOT_SET_123}"
    retries: ${R}
  env: {R: "21"}
]])
    assert.matches("configs/simulation.yaml:4:17: runner.http.timeout_ms: ${NOPE_T_NOT_SET_123} is not set "
      .. "in runner.env or in the environment", err, 1, true)
    assert.matches("configs/simulation.yaml:5:14: runner.http.retries: expected an integer from 0 to 20, got "
      .. "'${R}', which is '21'", err, 1, true)
    _, err = load('runner:\n  target: "http:GET http://h/"\n  http: {timeout_ms: "${HOME}", retries: "${R}"}\n'
      .. '  env: {R: "1.5"}\n')
    assert.matches("runner.http.timeout_ms: expected an integer from 0 to 2147483647 (milliseconds per attempt; "
      .. "0 = none), got '${HOME}', which is '" .. os.getenv("HOME") .. "'", err, 1, true)
    assert.matches("runner.http.retries: expected an integer from 0 to 20, got '${R}', which is '1.5'", err, 1, true)
  end)

  it("the repository's configs/http_target.yaml and configs/llm_agent.yaml load clean", function()
    for _, name in ipairs({ "http_target", "llm_agent" }) do
      local cfg, warnings = config.load("configs/" .. name .. ".yaml")
      assert.is_not_nil(cfg, warnings)
      assert.are.same({}, warnings)
    end
  end)

  it("warns when runner.http is given to a target that is not http:", function()
    local cfg, warnings = assert(load('runner:\n  target: "a:run"\n  http: {output: x}\n'))
    assert.is_nil(cfg.runner.http)
    assert.matches("runner.http is used only by an http: target", table.concat(warnings, "\n"))
  end)
end)

describe("an http: target agent", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() if server then server:stop() end end)

  local function agent(http_cfg, env, method)
    return assert(require("fluxloop.target").resolve(("http:%s %s"):format(method or "POST",
      server:url("/v1/chat/completions")), { runner = { http = http_cfg, env = env or {} } }))
  end
  local ctx = { persona = "novice", iteration = 1, trace_id = "trace_002", metadata = { topic = "t" } }

  it("sends the template and returns the value at the output path", function()
    local a = agent({ body = '{"model": "m", "messages": [{"role": "user", "content": {{input}}}]}',
      output = "choices.0.message.content" })
    assert.are.equal("echo: how are you", a("how are you", ctx))
  end)

  it("returns the whole decoded answer when there is no output path", function()
    local out = agent({ body = '{"messages": [{"role": "user", "content": {{input}}}]}' })("hi", ctx)
    assert.are.equal("chat.completion", out.object)
  end)

  it("sends the run's values as a JSON object when there is no body template", function()
    local a = assert(require("fluxloop.target").resolve("http:POST " .. server:url("/echo"), { runner = {} }))
    local out = a("q", ctx)
    assert.are.same({ input = "q", persona = "novice", iteration = 1, trace_id = "trace_002", metadata = { topic = "t" } },
      out.json)
  end)

  it("fails the run on a non-2xx answer, with the status and the body", function()
    local a = assert(require("fluxloop.target").resolve("http:GET " .. server:url("/status/418?body=teapot"),
      { runner = { http = { retries = 0 } } }))
    local ok, err = pcall(a, "q", ctx)
    assert.is_false(ok)
    assert.are.equal("http", err.type)
    assert.matches("^HTTP 418 from GET http://127%.0%.0%.1:%d+/status/418: teapot$", err.message)
  end)

  it("fails the run when the output path is missing or the answer is not JSON", function()
    local ok, err = pcall(agent({ body = '{"messages": [{"role": "user", "content": {{input}}}]}',
      output = "choices.3.message" }), "x", ctx)
    assert.is_false(ok)
    assert.are.equal("http_output", err.type)
    assert.matches("runner.http.output 'choices.3.message': the answer has no '3' there", err.message)
    local a = assert(require("fluxloop.target").resolve("http:GET " .. server:url("/malformed"),
      { runner = { http = { output = "choices.0" } } }))
    ok, err = pcall(a, "x", ctx)
    assert.matches("not valid JSON", err.message)
  end)

  it("fails the run when the body is not JSON once this run's values are in", function()
    -- a metadata value used as a key: fine when it is a string, not when it is missing
    local a = assert(require("fluxloop.target").resolve("http:POST " .. server:url("/echo"),
      { runner = { http = { body = '{ {{metadata.topic}}: {{input}} }' } } }))
    assert.has_no_error(function() a("x", ctx) end)
    local ok, err = pcall(a, "x", { metadata = {} })
    assert.is_false(ok)
    assert.are.equal("http_body", err.type)
    assert.matches("runner.http.body is not valid JSON after the run's values were put in", err.message)
    assert.matches("body: { null: \"x\" }", err.message, 1, true)
  end)
end)
