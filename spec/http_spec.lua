-- fluxloop.http against the local mock (spec/support/mock_llm.py on 127.0.0.1, a port the OS
-- picks): responses, JSON, retries and Retry-After, streams, every way a request can fail,
-- and the observation a request made inside a run leaves.
local clock = require("fluxloop.clock")
local guard = require("fluxloop.guard")
local http = require("fluxloop.http")
local json = require("fluxloop.json")
local recorder = require("fluxloop.recorder")
local mock = require("support.mock_server")
local P = require("support.project")

local function elapsed_ms(t0) return (clock.now_ns() - t0) / 1e6 end

describe("fluxloop.http", function()
  local server
  setup(function() server = mock.start() end)
  teardown(function() if server then server:stop() end end)

  describe("a request", function()
    it("returns status, headers, body and json(), and sends headers and a JSON body", function()
      local res = assert(http.request({ method = "post", url = server:url("/echo?x=1"),
        headers = { ["X-One"] = "1", "X-Two: two" }, json = { a = { 1, 2 }, b = json.null } }))
      assert.are.equal(200, res.status)
      assert.is_true(res.ok)
      assert.are.equal("application/json", res.headers["content-type"])
      local echo = assert(res:json())
      assert.are.equal("POST", echo.method)
      assert.are.equal("1", echo.headers["x-one"])
      assert.are.equal("two", echo.headers["x-two"])
      assert.are.equal("application/json", echo.headers["content-type"])
      assert.are.same({ a = { 1, 2 }, b = json.null }, echo.json)
      assert.are.equal("1", echo.query.x)
      assert.are.equal(1, res.attempts)
      assert.is_false(res.retried)
      assert.is_true(res.duration_ms >= 0 and res.ttfb_ms >= 0)
    end)

    it("post_json and get are request with the method and body filled in", function()
      local res = assert(http.post_json(server:url("/echo"), { q = "hi" }, { headers = { ["X-Y"] = "z" } }))
      local echo = res:json()
      assert.are.equal("POST", echo.method)
      assert.are.same({ q = "hi" }, echo.json)
      assert.are.equal("z", echo.headers["x-y"])
      assert.are.equal("GET", http.get(server:url("/echo")):json().method)
      local put = http.request({ method = "PUT", url = server:url("/echo"), body = "raw text" }):json()
      assert.are.equal("PUT", put.method)
      assert.are.equal("raw text", put.body)
    end)

    it("answers an OpenAI-style chat completion", function()
      local res = assert(http.post_json(server:url("/v1/chat/completions"),
        { model = "m1", messages = { { role = "user", content = "hello there" } } }))
      local v = res:json()
      assert.are.equal("echo: hello there", v.choices[1].message.content)
      assert.are.equal(5, v.usage.total_tokens)
    end)

    it("keeps the connection alive between requests of a worker", function()
      server:reset()
      for _ = 1, 5 do assert(http.get(server:url("/echo"), { observe = false })) end
      local s = server:stats()
      -- the reset and stats calls ride on the same connection as the five
      assert.are.equal(0, s.connections)
    end)

    it("returns a non-2xx answer as a response, after retrying the retryable ones", function()
      local res = assert(http.get(server:url("/status/404"), { retries = 3 }))
      assert.are.equal(404, res.status)
      assert.is_false(res.ok)
      assert.are.equal(1, res.attempts) -- 404 is not retried
      res = assert(http.get(server:url("/status/500"), { retries = 2, backoff_ms = 1 }))
      assert.are.equal(500, res.status)
      assert.are.equal(3, res.attempts)
      assert.is_true(res.retried)
    end)

    it("raises on misuse, with the option named", function()
      assert.has_error(function() http.request({}) end, "http.request: url must be a string")
      assert.has_error(function() http.request({ url = "http://x", body = "a", json = {} }) end,
        "http.request: give body or json, not both")
      assert.has_error(function() http.request({ url = "http://x", retries = 99 }) end,
        "http.request: retries must be an integer from 0 to 20")
      assert.has_error(function() http.request({ url = "http://x", headers = { ["X"] = "a\r\nB: c" } }) end)
      assert.has_error(function() http.request({ url = "http://x", method = "GE T" }) end)
    end)
  end)

  describe("retries", function()
    it("retry a 429 and say so: attempts, retried, the log of each attempt", function()
      local res = assert(http.get(server:url("/flaky?key=r1&fail=2&status=429&retry_after=0")))
      assert.are.equal(200, res.status)
      assert.are.equal(3, res.attempts)
      assert.is_true(res.retried)
      assert.are.equal(429, res.attempt_log[1].status)
      assert.are.equal(429, res.attempt_log[2].status)
      assert.are.equal(200, res.attempt_log[3].status)
    end)

    it("retry 500, 502, 503 and 504 with backoff, within the retry count", function()
      for _, code in ipairs({ 500, 502, 503, 504 }) do
        local res = assert(http.get(server:url(("/flaky?key=r5%d&fail=1&status=%d"):format(code, code)),
          { backoff_ms = 5 }))
        assert.are.equal(200, res.status)
        assert.are.equal(2, res.attempts)
      end
      local res = assert(http.get(server:url("/flaky?key=r6&fail=9&status=503"), { retries = 1, backoff_ms = 1 }))
      assert.are.equal(503, res.status)
      assert.are.equal(2, res.attempts)
    end)

    it("wait what Retry-After asks, in seconds or as an HTTP date", function()
      local t0 = clock.now_ns()
      assert.are.equal(200, http.get(server:url("/flaky?key=ra1&fail=1&status=429&retry_after=1")).status)
      assert.is_true(elapsed_ms(t0) >= 950, "waited " .. elapsed_ms(t0))
      t0 = clock.now_ns()
      -- a date two seconds ahead, to the second: between one and two seconds from now
      local res = http.get(server:url("/flaky?key=ra2&fail=1&status=503&retry_date=2"))
      assert.are.equal(200, res.status)
      assert.is_true(elapsed_ms(t0) >= 900, "waited " .. elapsed_ms(t0))
      assert.is_true(res.attempt_log[2].wait_ms >= 900)
    end)

    it("do not wait a Retry-After longer than max_retry_after_ms, and say why", function()
      local t0 = clock.now_ns()
      local res = assert(http.get(server:url("/flaky?key=ra3&fail=1&status=429&retry_after=3600"),
        { max_retry_after_ms = 1000 }))
      assert.are.equal(429, res.status)
      assert.are.equal(1, res.attempts)
      assert.matches("asked to wait 3600000 ms", res.note)
      assert.is_true(elapsed_ms(t0) < 3000)
    end)

    it("retry a refused connection, then fail with the count", function()
      local res, err, code = http.get("http://127.0.0.1:1/x", { retries = 2, backoff_ms = 1 })
      assert.is_nil(res)
      assert.are.equal("ECONNREFUSED", code)
      assert.matches("^GET http://127%.0%.0%.1:1/x: connection refused", err)
      assert.matches("%(3 attempts%)$", err)
    end)
  end)

  describe("failures", function()
    local function fails(code, pattern, url, opts)
      local res, err, c = http.request(setmetatable({ url = url, retries = 0 }, { __index = opts }))
      assert.is_nil(res, "expected a failure, got a response")
      assert.are.equal(code, c, err)
      assert.matches(pattern, err)
      return err
    end

    it("DNS: a name that cannot resolve", function()
      fails("EDNS", "the host name does not resolve", "http://no-such-host.invalid/x", {})
    end)

    it("TLS: https:// to a plain HTTP port", function()
      fails("ETLS", "TLS failed", "https://127.0.0.1:" .. server.port .. "/echo", {})
    end)

    it("a timeout in the middle of the body", function()
      fails("ETIMEDOUT", "no complete response within timeout_ms = 300 ms", server:url("/slow_body?ms=3000"),
        { timeout_ms = 300 })
    end)

    it("a body over max_body, with or without a Content-Length, without holding it", function()
      fails("ETOOBIG", "larger than max_body = 100000 bytes", server:url("/big?bytes=400000"), { max_body = 100000 })
      fails("ETOOBIG", "larger than max_body", server:url("/big?bytes=400000&declare=1"), { max_body = 100000 })
      -- the default bound is 64 MB: a declared 100 MB body is refused before it is read
      fails("ETOOBIG", "max_body = 67108864 bytes", server:url("/big?bytes=100000000&declare=1"), {})
    end)

    it("a 200 KB response header: too large, with libcurl's limit named (not 'out of memory')", function()
      local err = fails("ETOOBIG", "a response header line is larger than 102400 bytes %(100 KB%), the most libcurl "
        .. "accepts", server:url("/big_header?bytes=200000"), {})
      assert.is_nil(err:find("memory", 1, true), err)
      assert.are.equal(200, http.get(server:url("/big_header?bytes=50000")).status)
    end)

    it("a server that closes the connection mid-body or mid-stream", function()
      fails("ECLOSED", "closed the connection before the response was complete, after 100 body bytes",
        server:url("/close_mid"), {})
      fails("ECLOSED", "closed the connection", server:url("/sse_close"), {})
    end)

    it("a redirect loop", function()
      fails("EREDIRECT", "more than 10 redirects", server:url("/redirect_loop"), {})
    end)

    it("an invalid URL, and a scheme that is not HTTP", function()
      fails("EURL", "invalid URL", "http//nope", {})
      fails("EURL", "invalid URL", "file:///etc/passwd", {})
    end)

    it("malformed JSON: json() returns nil, a message with the position, EJSON", function()
      local res = assert(http.get(server:url("/malformed")))
      local v, err, code = res:json()
      assert.is_nil(v)
      assert.are.equal("EJSON", code)
      assert.matches("the response %(HTTP 200, %d+ bytes%) is not valid JSON: response:1:%d+:", err)
    end)

    it("never names a URL's query or password in a message", function()
      local err = fails("ECONNREFUSED", "refused", "http://user:pw-123@127.0.0.1:1/x?api_key=sk-123", {})
      assert.is_nil(err:find("pw-123", 1, true))
      assert.is_nil(err:find("sk-123", 1, true))
    end)
  end)

  describe("redirects", function()
    local other -- a second server: another port is another origin
    setup(function() other = mock.start() end)
    teardown(function() if other then other:stop() end end)

    local SECRET = { Authorization = "Bearer redirect-secret-1", ["X-Api-Key"] = "redirect-secret-2",
      ["api-key"] = "redirect-secret-3", Cookie = "sid=redirect-secret-4", ["X-Session-Token"] = "redirect-secret-5",
      ["X-Plain"] = "plain" }
    local function redirect(to, status)
      return server:url("/redirect?status=" .. (status or 302) .. "&to=" .. to:gsub("[&?=:/]", function(c)
        return ("%%%02X"):format(c:byte())
      end))
    end
    local function sent(echo)
      local got = {}
      for name in pairs(SECRET) do got[name] = echo.headers[name:lower()] end
      return got
    end

    it("leave every secret header behind at another port, and keep the rest", function()
      local res = assert(http.get(redirect(other:url("/echo")), { headers = SECRET }))
      assert.are.equal(200, res.status)
      assert.are.equal(other:url("/echo"), res.url)
      assert.are.same({ ["X-Plain"] = "plain" }, sent(res:json()))
    end)

    it("leave them behind at another host name on the same port, and for the rest of the chain", function()
      local there = "http://localhost:" .. server.port .. "/echo"
      local res = assert(http.get(redirect(there), { headers = SECRET }))
      assert.are.same({ ["X-Plain"] = "plain" }, sent(res:json()))
      -- out to the other server and back: still left behind
      res = assert(http.get(redirect(other:url("/redirect?to=" .. server:url("/echo"):gsub("[:/]", function(c)
        return ("%%%02X"):format(c:byte())
      end))), { headers = SECRET }))
      assert.are.equal(server:url("/echo"), res.url)
      assert.are.same({ ["X-Plain"] = "plain" }, sent(res:json()))
    end)

    it("take them along again on a retry, which starts at the first URL", function()
      -- attempt 1: here, then the other server's 503 (secrets left behind); attempt 2: here
      local url = redirect(other:url("/status/503")) .. "&key=retry-whole&times=1"
      local res = assert(http.get(url, { headers = SECRET, retries = 1, backoff_ms = 1 }))
      assert.are.equal(2, res.attempts)
      assert.are.equal("redirect-secret-2", res:json().headers["x-api-key"])
    end)

    it("keep every header within the origin", function()
      local res = assert(http.get(redirect("/echo"), { headers = SECRET }))
      local want = {}
      for k, v in pairs(SECRET) do want[k] = v end
      assert.are.same(want, sent(res:json()))
    end)

    it("change the method as browsers do: 303 to GET, 307 keeps POST and its body", function()
      local echo = assert(http.post_json(redirect(other:url("/echo"), 303), { a = 1 })):json()
      assert.are.equal("GET", echo.method)
      assert.are.equal("", echo.body)
      echo = assert(http.post_json(redirect(other:url("/echo"), 307), { a = 1 })):json()
      assert.are.equal("POST", echo.method)
      assert.are.same({ a = 1 }, echo.json)
      echo = assert(http.post_json(redirect("/echo", 302), { a = 1 })):json()
      assert.are.equal("GET", echo.method)
    end)

    it("are not followed when follow_redirects is false, nor past max_redirects, nor to another scheme", function()
      local res = assert(http.get(redirect(other:url("/echo")), { follow_redirects = false }))
      assert.are.equal(302, res.status)
      local _, err, code = http.get(redirect(other:url("/echo")), { max_redirects = 0, retries = 0 })
      assert.are.equal("EREDIRECT", code)
      assert.matches("more than 0 redirects", err)
      _, err, code = http.get(redirect("ftp://127.0.0.1/x"), { retries = 0 })
      assert.are.equal("EURL", code)
      assert.matches("redirected %(HTTP 302%) to a URL that is not followed: the scheme must be http", err)
    end)
  end)

  describe("streams", function()
    it("give raw chunks to on_chunk and server-sent events to on_event, as they come", function()
      local chunks, events = {}, {}
      local res = assert(http.get(server:url("/stream?n=3"), {
        on_chunk = function(c) chunks[#chunks + 1] = c end,
        on_event = function(data, event, id) events[#events + 1] = { data, event, id } end,
      }))
      assert.are.equal(3, res.events)
      assert.are.same({ { '{"n": 1}', "tick", "1" }, { '{"n": 2}', "tick", "2" }, { '{"n": 3}', "tick", "3" } }, events)
      assert.are.equal(res.body, table.concat(chunks))
      assert.is_true(res.first_event_ms >= 0)
    end)

    it("parse every kind of line end, comments and multi-line data, across chunk boundaries", function()
      local events = {}
      assert(http.get(server:url("/sse_raw"), { on_event = function(d, e, id) events[#events + 1] = { d, e, id } end }))
      assert.are.same({ { "one", "message", "" }, { "a\nb", "two", "" }, { "three", "message", "7" } }, events)
    end)

    it("stop when a callback returns false; the response so far is the response", function()
      local n = 0
      local res = assert(http.get(server:url("/stream?n=50&delay_ms=20"),
        { on_event = function() n = n + 1 if n == 2 then return false end end }))
      assert.are.equal(2, n)
      assert.is_true(res.stopped)
      assert.are.equal(200, res.status)
    end)

    it("stream an OpenAI answer with its usage in the last event", function()
      local text = {}
      local res = assert(http.post_json(server:url("/v1/chat/completions"), { model = "m", stream = true,
        stream_options = { include_usage = true }, messages = { { role = "user", content = "one two three" } } },
        { on_event = function(data)
          if data ~= "[DONE]" then
            local d = json.decode(data)
            if d.choices[1] and d.choices[1].delta.content then text[#text + 1] = d.choices[1].delta.content end
          end
        end }))
      assert.are.equal("echo: one two three ", table.concat(text))
      assert.are.equal(7, json.decode(res.last_usage_event).usage.total_tokens)
    end)

    it("pass a callback's error on unchanged, and refuse a request from inside a callback", function()
      assert.has_error(function()
        http.get(server:url("/stream?n=3"), { on_chunk = function() error("mine") end })
      end)
      local ok, err = pcall(http.get, server:url("/stream?n=3"),
        { on_chunk = function() http.get(server:url("/echo")) end })
      assert.is_false(ok)
      assert.matches("in the middle of a request", tostring(err))
      assert.are.equal(200, http.get(server:url("/echo")).status) -- the client is free again
    end)
  end)

  describe("inside a run", function()
    local dir
    before_each(function() dir = P.new() end)
    after_each(function() P.remove(dir) end)

    local function run_one(fn, timeout)
      local rec = assert(recorder.open(dir))
      rec:begin("trace_001")
      local ok, err = guard.call(timeout or 0, fn)
      rec:stop()
      assert(rec:write({ trace_id = "trace_001", input = "in", output = "out", success = true, iteration = 0 }))
      assert(rec:close())
      return ok, err, P.read_jsonl(dir .. "/observations.jsonl"), P.read(dir .. "/observations.jsonl")
    end

    it("records each request: masked URL and headers, bodies, status, attempts, token counts", function()
      local _, _, obs, text = run_one(function()
        assert(http.post_json(server:url("/v1/chat/completions?api_key=sk-query-secret&x=1"),
          { model = "gpt-x", messages = { { role = "user", content = "a b c" } }, api_key = "body-secret-1" },
          { headers = { Authorization = "Bearer sk-header-secret", ["X-Api-Key"] = "k-secret-2", ["X-Plain"] = "p" } }))
        assert(http.get(server:url("/flaky?key=run1&fail=1&status=429&retry_after=0")))
      end)
      assert.are.equal(2, #obs)
      local o = obs[1]
      assert.are.equal("generation", o.type)
      assert.matches("^POST 127%.0%.0%.1:%d+/v1/chat/completions$", o.name)
      assert.are.equal("***", o.input.headers.Authorization)
      assert.are.equal("***", o.input.headers["X-Api-Key"])
      assert.are.equal("p", o.input.headers["X-Plain"])
      assert.matches("api_key=%*%*%*&x=1$", o.input.url)
      assert.are.equal("gpt-x", o.input.body.model)
      assert.are.equal("***", o.input.body.api_key)
      assert.are.equal(200, o.output.status)
      assert.are.equal("echo: a b c", o.output.body.choices[1].message.content)
      assert.are.equal("gpt-x", o.model)
      assert.are.same({ 3, 4, 7 }, { o.prompt_tokens, o.completion_tokens, o.total_tokens })
      assert.are.equal(1, o.metadata.attempts)
      assert.is_false(o.metadata.retried)
      assert.is_nil(text:find("secret", 1, true))
      local r = obs[2]
      assert.are.equal("span", r.type)
      assert.is_true(r.metadata.retried)
      assert.are.equal(2, r.metadata.attempts)
      assert.are.equal(429, r.metadata.attempt_log[1].status)
    end)

    it("records a failed request with its error, and a streamed answer's text and usage", function()
      local _, _, obs = run_one(function()
        assert(not http.get("http://127.0.0.1:1/", { retries = 0 }))
        assert(http.post_json(server:url("/v1/chat/completions"), { model = "m", stream = true,
          stream_options = { include_usage = true }, messages = { { role = "user", content = "x y" } } }))
      end)
      assert.matches("connection refused", obs[1].error)
      assert.are.equal("ECONNREFUSED", obs[1].metadata.error_code)
      assert.are.equal("echo: x y ", obs[2].output.text)
      assert.are.equal(5, obs[2].total_tokens)
      assert.is_true(obs[2].metadata.events >= 4)
    end)

    it("keeps a long body only up to the bound, and not at all with observe = false", function()
      local _, _, obs = run_one(function()
        assert(http.get(server:url("/big?bytes=100000")))
        assert(http.get(server:url("/echo"), { observe = false }))
        assert(http.get(server:url("/echo"), { observe = { name = "mine", type = "tool" } }))
      end)
      assert.are.equal(2, #obs)
      assert.matches("%.%.%. %[67232 more bytes not kept%]$", obs[1].output.body)
      assert.are.same({ "mine", "tool" }, { obs[2].name, obs[2].type })
    end)

    it("ends with the run when the run's time limit passes mid-request", function()
      local t0 = clock.now_ns()
      local ok, err, obs = run_one(function() return http.get(server:url("/slow?ms=5000")) end, 300)
      assert.is_false(ok)
      assert.are.equal("timeout", err.type)
      assert.is_true(elapsed_ms(t0) < 4000)
      assert.matches("time limit", obs[1].error)
    end)

    it("does not retry past the run's time limit", function()
      local ok, res = run_one(function()
        return http.get(server:url("/flaky?key=dl1&fail=5&status=503&retry_after=2"))
      end, 1000)
      assert.is_true(ok)
      assert.are.equal(503, res.status)
      assert.are.equal(1, res.attempts)
      assert.matches("would pass the run's time limit", res.note)
    end)
  end)

  it("check_url says what is wrong with a URL", function()
    assert.is_true(http.check_url("https://api.openai.com/v1/chat/completions"))
    local ok, why = http.check_url("ftp://x/y")
    assert.is_nil(ok)
    assert.matches("http:// or https://", why)
    assert.is_nil((http.check_url("http://")))
  end)
end)
