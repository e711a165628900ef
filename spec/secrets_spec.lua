-- secrets_spec.lua - fluxloop.secrets: secret key names, secret-shaped values, masked copies.
local secrets = require("fluxloop.secrets")
local json = require("fluxloop.json")

describe("fluxloop.secrets", function()
  it("splits key names on separators and camelCase humps", function()
    assert.are.same({ "auth", "header" }, secrets.name_parts("authHeader"))
    assert.are.same({ "open", "ai", "key" }, secrets.name_parts("OpenAIKey"))
    assert.are.same({ "session", "cookie" }, secrets.name_parts("SESSION_COOKIE"))
    assert.are.same({ "x", "api", "key" }, secrets.name_parts("x-api.key"))
  end)

  it("calls a key secret by any part of its name", function()
    local cases = {
      authHeader = true, apiKey = true, OpenAIKey = true, SESSION_COOKIE = true, GITHUB_PAT = true,
      BEARER = true, PASS = true, DATABASE_DSN = true, clientSecret = true, dbPassword = true,
      OPENAI_API_KEY = true, sessionkey = true, accessToken = true,
      author = false, keyword = false, maxTokens = false, max_tokens = false, passenger = false,
      path = false, patience = false, MODE = false, DATABASE_URL = false, name = false,
    }
    for name, want in pairs(cases) do assert.are.equal(want, secrets.is_secret_key(name), name) end
  end)

  it("masks well-known token shapes whatever their key", function()
    local shaped = {
      "sk-proj-abcdefghijklmnop0123456789", "sk-ant-api03-abcdefghijklmnopqrstu",
      "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_pat_11ABCDEFG0123456789_abcdefghij",
      "xoxb-1234567890-abcdefghij", "AKIAIOSFODNN7EXAMPLE",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "glpat-abcdefghij0123456789", "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
    }
    for _, v in ipairs(shaped) do assert.are.equal("***", secrets.mask_value(v), v) end
    assert.are.equal("key: ***", secrets.mask_value("key: sk-abcdefghijklmnopqrstuvwx"))
    assert.are.equal("Bearer ***", secrets.mask_value("Bearer abc.def-123"))
    assert.are.equal("Basic ***", secrets.mask_value("Basic dXNlcjpwYXNz"))
  end)

  it("masks what follows Bearer, Token or Basic only when it looks like a credential", function()
    assert.are.equal("asks basic questions", secrets.mask_value("asks basic questions"))
    assert.are.equal("the bearer of bad news; token economy", secrets.mask_value("the bearer of bad news; token economy"))
    assert.are.equal("Basic Information about Bearer Bonds", secrets.mask_value("Basic Information about Bearer Bonds"))
    assert.are.equal("uses Bearer ***, then token ***", secrets.mask_value("uses Bearer abcd1234efgh, then token Q2xpZW50S2V5"))
    assert.are.equal("Basic *** sent", secrets.mask_value("Basic dXNlcjpwYXNzd29yZA== sent"))
    -- a header's value that starts with a scheme is a credential whatever it looks like
    assert.are.equal("Bearer ***", secrets.mask_header_value("Bearer abcdef"))
    assert.are.equal("basic ***", secrets.mask_header_value("basic questions"))
    assert.are.equal("text/plain", secrets.mask_header_value("text/plain"))
    assert.are.equal("x ***", secrets.mask_header_value("x sk-abcdefghijklmnopqrstuvwx"))
  end)

  it("masks a URL's password and keeps scheme, user and host readable", function()
    assert.are.equal("postgres://app:***@db.internal:5432/app",
      secrets.mask_value("postgres://app:PASSWORD@db.internal:5432/app"))
    assert.are.equal("see https://u:***@h/x and more", secrets.mask_value("see https://u:pw@h/x and more"))
    assert.are.equal("https://example.com:8443/path", secrets.mask_value("https://example.com:8443/path"))
  end)

  it("leaves ordinary text alone", function()
    for _, v in ipairs({ "ask-me-anything please", "task-runner", "sk-short", "Hello world", "AKIA", "" }) do
      assert.are.equal(v, secrets.mask_value(v), v)
    end
  end)

  it("masks copies at any depth, keys and values, and keeps array markers and null", function()
    local v = {
      env = { GITHUB_PAT = "x", MODE = "fast", DATABASE_URL = "mysql://root:hunter2@localhost/db" },
      list = json.array({ "sk-abcdefghijklmnopqrstuvwx", "plain" }),
      nested = { authHeader = { a = 1, b = json.null } },
    }
    local m = secrets.mask(v)
    assert.are.equal("***", m.env.GITHUB_PAT)
    assert.are.equal("fast", m.env.MODE)
    assert.are.equal("mysql://root:***@localhost/db", m.env.DATABASE_URL)
    assert.are.equal("***", m.list[1])
    assert.are.equal("plain", m.list[2])
    assert.are.equal(getmetatable(v.list), getmetatable(m.list))
    assert.are.equal("***", m.nested.authHeader.a)
    assert.are.equal(json.null, m.nested.authHeader.b)
    assert.are.equal("x", v.env.GITHUB_PAT) -- the original is untouched
  end)

  it("lists the distinctive values of the environment's secret-named variables", function()
    assert.are.same({ "s3cr3t-tok-value", "sk-abcdefghijklmnopqrstuvwx" }, secrets.environment_values({
      SERVICE_TOKEN = "s3cr3t-tok-value", OPENAI_API_KEY = "sk-abcdefghijklmnopqrstuvwx",
      SESSION_KIND = "interactive", PIN_PASS = "12", HOME = "/home/user-1234", PATH = "/usr/bin:/bin" }))
  end)

  it("of_run() joins the config's, the environment's and an http: target's secret values", function()
    local cfg = { doc = { runner = { env = { MY_KEY = "from-doc-key-1" } } },
      runner = { target = "http:GET http://h/x", env = { V = "header-value-1" },
        http = { headers = { ["X-Api-Key"] = "${V}" } } } }
    assert.are.same({ "from-doc-key-1", "from-env-tok-2", "header-value-1" },
      secrets.of_run(cfg, { A_TOKEN = "from-env-tok-2", B = "not-named-secret-3" }))
  end)

  it("scrub() and mask() write the remembered values as *** (stderr, config.yaml, summary.json)", function()
    secrets.remember({ "tok-12345678", "tok-12345678-longer" })
    finally(function() secrets.remember({}) end)
    assert.are.equal("a *** b *** c", secrets.scrub("a tok-12345678-longer b tok-12345678 c"))
    assert.are.same({ note = "saw ***", list = { "***" } }, secrets.mask({ note = "saw tok-12345678", list = { "tok-12345678" } }))
    secrets.remember({})
    assert.are.equal("tok-12345678", secrets.scrub("tok-12345678"))
  end)

  it("lists the config's secret values that traces must not show", function()
    local list = secrets.values({
      runner = { env = { OPENAI_API_KEY = "sk-abcdefghijklmnopqrstuvwx", SESSION_MODE = "interactive",
        DB = "postgres://app:Passw0rd-long@db/app", PIN = "1234", NOTE = "ghp_abcdefghijklmnopqrstuvwxyz0123456789 x" } },
      providers = { { credentials = { user = "bob", secret = "S3cret-value!" } } },
    })
    local set = {}
    for _, v in ipairs(list) do set[v] = true end
    assert.is_true(set["sk-abcdefghijklmnopqrstuvwx"])
    assert.is_true(set["Passw0rd-long"])
    assert.is_true(set["ghp_abcdefghijklmnopqrstuvwxyz0123456789"])
    assert.is_true(set["S3cret-value!"])
    assert.is_nil(set["interactive"])
    assert.is_nil(set["1234"])
    assert.is_nil(set["bob"])
  end)
end)
