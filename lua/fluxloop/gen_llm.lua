-- gen_llm.lua - the chat requests of `fluxloop generate inputs --mode llm`: the endpoint and
-- key (config, the project's .env, the environment), and the handler that each thread of
-- fluxloop.tasks runs: one prompt in, the model's stripped reply out. The key never leaves
-- this module: messages show it as ***.
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.DEFAULT_BASE_URL = "https://api.openai.com/v1"
M.KEY_NAMES = { "FLUXLOOP_LLM_API_KEY", "OPENAI_API_KEY" }
local BODY_QUOTE = 300

-- read_env_file(path) -> { NAME = value }: KEY=VALUE lines (export, quotes and comments allowed).
function M.read_env_file(path)
  local vars = {}
  local text = util.read_file(path)
  if not text then return vars end
  for line in text:gmatch("[^\r\n]+") do
    local k, v = line:match("^%s*export%s+([%a_][%w_]*)%s*=%s*(.-)%s*$")
    if not k then k, v = line:match("^%s*([%a_][%w_]*)%s*=%s*(.-)%s*$") end
    if k then
      local quoted = v:match('^"(.*)"$') or v:match("^'(.*)'$")
      vars[k] = quoted or v:gsub("%s+#.*$", "")
    end
  end
  return vars
end

-- endpoint(llm, project_dir, getenv) -> { url, key, key_from, base_url }: base_url from the
-- config, else OPENAI_BASE_URL (.env, then the environment), else the OpenAI API; the key
-- from input_generation.llm.api_key, else FLUXLOOP_LLM_API_KEY or OPENAI_API_KEY in the
-- project's .env, then in the environment (the Python tool's order).
function M.endpoint(llm, project_dir, getenv)
  getenv = getenv or os.getenv
  local dotenv = M.read_env_file(project_dir .. "/.env")
  local function lookup(name)
    if dotenv[name] and dotenv[name] ~= "" then return dotenv[name], ".env" end
    local v = getenv(name)
    if v and v ~= "" then return v, "the environment" end
  end
  local base = llm.base_url or lookup("OPENAI_BASE_URL") or M.DEFAULT_BASE_URL
  local e = { base_url = (base:gsub("/+$", "")) }
  e.url = e.base_url .. "/chat/completions"
  if llm.api_key and llm.api_key ~= "" then
    e.key, e.key_from = llm.api_key, "input_generation.llm.api_key"
  else
    for _, name in ipairs(M.KEY_NAMES) do
      local v, from = lookup(name)
      if v then e.key, e.key_from = v, name .. " (" .. from .. ")" break end
    end
  end
  return e
end

-- mask(text, key) -> text with every copy of the key as ***.
function M.mask(text, key)
  if not key or #key < 4 then return text end
  return (text:gsub(key:gsub("%p", "%%%0"), "***"))
end

local function quote(body)
  body = body:gsub("%s+", " ")
  if #body > BODY_QUOTE then return body:sub(1, BODY_QUOTE) .. "..." end
  return body
end

-- The reply text of an OpenAI chat answer: choices[1].message.content, stripped.
function M.reply_of(value)
  local choice = type(value) == "table" and type(value.choices) == "table" and value.choices[1]
  local content = type(choice) == "table" and type(choice.message) == "table" and choice.message.content
  if content == json.null then content = "" end
  if type(content) ~= "string" then return nil, "the answer has no choices[0].message.content" end
  return (content:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- setup(opts) -> the string the threads get: url, key, model, system_prompt, timeout_ms, retries.
function M.setup(opts)
  return json.encode(opts)
end

-- worker(setup) -> handler(prompt) -> reply | nil, message. Made once per thread by fluxloop.tasks.
function M.worker(setup_text)
  local http = require("fluxloop.http")
  local s = assert(json.decode(setup_text, "generate setup"))
  local headers = { ["Content-Type"] = "application/json" }
  if s.key then headers.Authorization = "Bearer " .. s.key end
  local shown = "POST " .. s.url:gsub("^%a+://", ""):gsub("[?#].*$", "")
  return function(prompt)
    local messages = {}
    if s.system_prompt then messages[1] = { role = "system", content = s.system_prompt } end
    messages[#messages + 1] = { role = "user", content = prompt }
    local res, err = http.request({ method = "POST", url = s.url, headers = headers, timeout_ms = s.timeout_ms,
      retries = s.retries, body = json.encode({ model = s.model, messages = messages }), observe = false })
    if not res then return nil, M.mask(err, s.key) end
    local tries = res.attempts > 1 and (" after %d attempts"):format(res.attempts) or ""
    if not res.ok then
      return nil, M.mask(("HTTP %d from %s%s%s: %s"):format(res.status, shown, tries,
        res.note and (" (" .. res.note .. ")") or "", quote(res.body)), s.key)
    end
    local value, jerr = res:json()
    if value == nil then return nil, M.mask(("%s answered what is not JSON (%s): %s"):format(shown, jerr,
      quote(res.body)), s.key) end
    local reply, rerr = M.reply_of(value)
    if not reply then return nil, M.mask(("%s: %s: %s"):format(shown, rerr, quote(res.body)), s.key) end
    return reply
  end
end

return M
