-- grade/judge.lua - llm_judge: a model grades the output against a rubric. One chat request
-- per trace to an OpenAI-compatible endpoint (fluxloop.http: retries with Retry-After, the
-- experiment's --rate-limit); the first JSON object of the reply is the verdict
-- {"pass": bool, "score": 0..1, "reason": "..."}. Verdicts are cached in the experiment
-- folder (judge_cache.jsonl, keyed by the request), so grading again asks nothing new.
local json = require("fluxloop.json")

local M = {}

M.KEYS = { llm_judge = { "rubric", "model", "base_url", "api_key", "temperature", "timeout_ms", "pass_score",
  "max_output_chars" } }

M.CACHE_FILE = "judge_cache.jsonl"
M.DEFAULT_BASE_URL = "https://api.openai.com/v1"
M.TIMEOUT_MS = 60000
M.MAX_OUTPUT_CHARS = 20000 -- of the agent's output put before the judge

local function absent(v) return v == nil or v == json.null end

-- expand("${NAME}") -> the variable's value (nil when unset); other text as it is.
local function expand(v)
  if type(v) ~= "string" then return v end
  local name = v:match("^%${([%w_]+)}$")
  if name then return os.getenv(name) end
  return (v:gsub("%${([%w_]+)}", function(n) return os.getenv(n) or "" end))
end
M.expand = expand

-- The judge's key: the grader's api_key, else FLUXLOOP_LLM_API_KEY, else OPENAI_API_KEY.
function M.api_key(spec)
  local key = spec.api_key and expand(spec.api_key)
  if key == nil or key == "" then key = os.getenv("FLUXLOOP_LLM_API_KEY") end
  if key == nil or key == "" then key = os.getenv("OPENAI_API_KEY") end
  return key ~= "" and key or nil
end

function M.base_url(spec)
  local url = spec.base_url and expand(spec.base_url)
  if url == nil or url == "" then url = os.getenv("OPENAI_BASE_URL") end
  if url == nil or url == "" then url = M.DEFAULT_BASE_URL end
  return (url:gsub("/+$", ""))
end

function M.check(spec, out, problem)
  local rubric = spec.rubric
  if absent(rubric) or type(rubric) ~= "string" or rubric:match("^%s*$") then
    problem(not absent(rubric) and "rubric" or nil, absent(rubric)
      and "missing 'rubric' (what a good answer does, e.g. \"The answer says how long a refund takes.\")"
      or "expected the rubric as text")
    return nil
  end
  out.rubric = rubric
  local model = spec.model
  if absent(model) or type(model) ~= "string" or model == "" then
    problem(not absent(model) and "model" or nil, "missing 'model' (the judge model, e.g. gpt-4o-mini)")
    return nil
  end
  out.model = model
  for _, k in ipairs({ "base_url", "api_key" }) do
    local v = spec[k]
    if not absent(v) then
      if type(v) ~= "string" then problem(k, "expected a string") return nil end
      out[k] = v
    end
  end
  if out.base_url then
    local url = expand(out.base_url)
    local ok, why = require("fluxloop.http").check_url(url .. "/chat/completions")
    if not ok then problem("base_url", ("invalid URL '%s': %s"):format(url, why)) return nil end
  end
  local number_key = require("fluxloop.grade.script").number_key
  if not number_key(spec, out, "temperature", 0, 2, problem, "a number from 0 to 2") then return nil end
  for _, k in ipairs({ "timeout_ms", "max_output_chars" }) do
    local v = spec[k]
    if not absent(v) then
      if math.type(v) ~= "integer" or v < 1 then problem(k, "expected an integer >= 1") return nil end
      out[k] = v
    end
  end
  if not number_key(spec, out, "pass_score", 0, 1, problem, "a score from 0 to 1") then return nil end
  return out
end

M.SYSTEM = "You are a strict, fair grader of an AI agent's answers. You judge one answer against the rubric "
  .. "you are given, and nothing else."

local function text_of(v, limit)
  local s = type(v) == "string" and v or json.encode(v)
  if #s > limit then s = s:sub(1, limit) .. "\n[... cut: " .. (#s - limit) .. " more bytes]" end
  return s
end

-- The transcript of a conversation (multi_turn), one numbered line a turn.
local function transcript(conversation, limit)
  local lines = {}
  for i, turn in ipairs(conversation) do
    local role = tostring(turn.role or "?")
    lines[i] = ("%d. %s: %s"):format(i, role:sub(1, 1):upper() .. role:sub(2), text_of(turn.content, limit))
  end
  return table.concat(lines, "\n")
end

-- messages(spec, view) -> the chat messages of one judgement: the rubric, the input (or the
-- whole conversation), the expected answer when the input has one, and the agent's answer.
function M.messages(spec, view)
  local limit = spec.max_output_chars or M.MAX_OUTPUT_CHARS
  local parts = { "Rubric:\n" .. spec.rubric }
  local conversation = view.conversation
  if type(conversation) == "table" and #conversation > 2 then
    parts[#parts + 1] = "The conversation (the agent's answer below is its last reply):\n" .. transcript(conversation, limit)
  else
    parts[#parts + 1] = "Input given to the agent:\n" .. text_of(view.input, limit)
  end
  if view.expected ~= nil and view.expected ~= json.null then
    parts[#parts + 1] = "Reference answer (expected):\n" .. text_of(view.expected, limit)
  end
  parts[#parts + 1] = "The agent's answer:\n" .. text_of(view.output, limit)
  parts[#parts + 1] = 'Does the answer meet the rubric? Reply with only a JSON object: {"pass": true or false, '
    .. '"score": a number from 0 to 1, "reason": "one or two sentences"}.'
  return json.array({ { role = "system", content = M.SYSTEM }, { role = "user", content = table.concat(parts, "\n\n") } })
end

-- first_object(text) -> the first JSON object in text (a model wraps it in prose or ```).
function M.first_object(text)
  if type(text) ~= "string" then return nil end
  local pos = 1
  while true do
    local s = text:find("{", pos, true)
    if not s then return nil end
    -- The shortest balanced {...} from s that decodes; braces in strings are rare enough
    -- that trying each closing brace in turn is simple and right.
    local e = s
    while true do
      e = text:find("}", e + 1, true)
      if not e then break end
      local v = json.decode(text:sub(s, e))
      if type(v) == "table" then return v end
    end
    pos = s + 1
  end
end

-- verdict(reply_text, pass_score) -> pass, score, reason | raises why there is none.
function M.verdict(text, pass_score)
  local v = M.first_object(text)
  if type(v) ~= "table" or (v.pass == nil and v.score == nil) then
    local shown = tostring(text or ""):gsub("%s+", " ")
    error(("no verdict in the judge's reply (expected a JSON object with pass and score): %s"):format(
      #shown > 200 and shown:sub(1, 200) .. "..." or shown), 0)
  end
  return require("fluxloop.grade.script").verdict(v, pass_score)
end

-- The cache: judge_cache.jsonl lines {"key": ..., "pass": ..., "score": ..., "reason": ...}.
local Cache = {}
Cache.__index = Cache

-- fresh (--no-cache): the verdicts of earlier gradings are not read; each distinct request is
-- asked once again, and its new verdict is kept as any other.
local function new_cache(dir, fresh)
  return setmetatable({ path = dir and (dir .. "/" .. M.CACHE_FILE), fresh = fresh or false }, Cache)
end

-- Reads the verdicts the file gained since the last look (other threads and processes
-- judging the same experiment append theirs), from where the last look ended.
function Cache:load()
  self.entries = self.entries or {}
  if not self.path or self.fresh then return end
  local f = io.open(self.path, "rb")
  if not f then return end
  f:seek("set", self.offset or 0)
  for line in f:lines("L") do
    if line:sub(-1) ~= "\n" then break end -- a line still being written: the next look takes it
    self.offset = (self.offset or 0) + #line
    local e = json.decode(line)
    if type(e) == "table" and type(e.key) == "string" then self.entries[e.key] = e end
  end
  f:close()
end

function Cache:get(key)
  if not self.entries then self:load() end
  local hit = self.entries[key]
  if hit == nil and not self.fresh then self:load() hit = self.entries[key] end
  return hit
end

-- Appends one verdict: one write of a whole line (O_APPEND), so worker threads and
-- processes that judge at once never interleave their lines.
function Cache:put(key, pass, score, reason)
  if not self.path then return end
  local e = { key = key, pass = pass, score = score, reason = reason }
  self.entries[key] = e
  local f = io.open(self.path, "ab")
  if not f then return end
  f:setvbuf("full", 1 << 20)
  f:write(json.encode(e), "\n")
  f:close()
end

function M.compile(spec, env)
  local http = require("fluxloop.http")
  local url = M.base_url(spec) .. "/chat/completions"
  local cache = env.judge_cache or new_cache(env.results_dir, env.no_cache)
  env.judge_cache = cache -- every judge of the state shares one cache
  local hash = require("fluxloop.stats").hash
  return function(view)
    local body = { model = spec.model, messages = M.messages(spec, view), temperature = spec.temperature or 0 }
    local text = json.encode(body)
    local key = hash(url .. "\n" .. text) .. ":" .. #text
    local hit = cache:get(key)
    if hit then return hit.pass, hit.score, hit.reason end
    local key_value = M.api_key(spec)
    local res, err = http.request({ url = url, method = "POST", body = text, observe = false,
      headers = { ["Content-Type"] = "application/json", Authorization = key_value and ("Bearer " .. key_value) or nil },
      timeout_ms = spec.timeout_ms or M.TIMEOUT_MS })
    if not res then error("judge request failed: " .. tostring(err), 0) end
    if not res.ok then
      local b = tostring(res.body or ""):gsub("%s+", " ")
      error(("judge answered HTTP %d: %s"):format(res.status, #b > 300 and b:sub(1, 300) .. "..." or b), 0)
    end
    local reply = json.decode(res.body or "")
    local content = type(reply) == "table" and type(reply.choices) == "table" and type(reply.choices[1]) == "table"
      and type(reply.choices[1].message) == "table" and reply.choices[1].message.content
    if type(content) ~= "string" then
      local b = tostring(res.body or ""):gsub("%s+", " ")
      error(("the judge's answer is not a chat completion (no choices[1].message.content): %s"):format(
        #b > 200 and b:sub(1, 200) .. "..." or b), 0)
    end
    local pass, score, reason = M.verdict(content, spec.pass_score)
    cache:put(key, pass, score, reason)
    return pass, score, reason
  end
end

return M
