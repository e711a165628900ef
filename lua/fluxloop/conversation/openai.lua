-- conversation/openai.lua - a model plays the user: one chat request per turn to an
-- OpenAI-compatible endpoint (base_url; default $OPENAI_BASE_URL, then the OpenAI API),
-- through fluxloop.http (retries, the shared --rate-limit, the request recorded with its
-- key masked). The first JSON object of the reply is the decision.
local http = require("fluxloop.http")
local json = require("fluxloop.json")

local M = {}

M.DEFAULT_BASE_URL = "https://api.openai.com/v1"
M.DEFAULT_CONTEXT = "Customer support scenario"
M.DEFAULT_PERSONA = "Generic customer"
M.QUOTE_LIMIT = 300 -- bytes of a reply quoted in an error

M.GUIDANCE = table.concat({
  "You play the user in a conversation with an AI assistant that is being tested.",
  "Read the conversation so far and decide what the user does next: continue with a new message,",
  "or end the conversation when the user's goal is met, the assistant cannot help, or it goes in circles.",
}, " ")

M.ANSWER = 'Answer only with a JSON object: {"decision": "continue" or "terminate", "next_user_message": '
  .. '"the user\'s next message (when continuing)", "termination_reason": "why it ends (when terminating)", '
  .. '"closing_user_message": "an optional last message of the user (when terminating)"}'

local function fail(message)
  error({ type = "supervisor", message = message, traceback = false }, 0)
end

local function quote(s)
  s = tostring(s):gsub("%s+", " ")
  if #s > M.QUOTE_LIMIT then s = s:sub(1, M.QUOTE_LIMIT) .. "..." end
  return "'" .. s .. "'"
end

-- first_object(text) -> the first {...} of text that decodes as a JSON object, or nil.
function M.first_object(text)
  local whole = json.decode(text)
  if type(whole) == "table" then return whole end
  local pos = 1
  while true do
    local s = text:find("{", pos, true)
    if not s then return nil end
    local depth, i, in_string = 0, s, false
    while i <= #text do
      local ch = text:sub(i, i)
      if in_string then
        if ch == "\\" then i = i + 1 elseif ch == '"' then in_string = false end
      elseif ch == '"' then in_string = true
      elseif ch == "{" then depth = depth + 1
      elseif ch == "}" then
        depth = depth - 1
        if depth == 0 then
          local v = json.decode(text:sub(s, i))
          if type(v) == "table" then return v end
          break
        end
      end
      i = i + 1
    end
    pos = s + 1
  end
end

-- The user prompt: the guidance, the service context, the persona, the numbered transcript
-- and the shape of the answer.
function M.prompt(conversation, ctx, sup)
  local meta = type(ctx.metadata) == "table" and ctx.metadata or {}
  local info = type(ctx.persona_info) == "table" and ctx.persona_info or {}
  local persona = meta.persona_description or info.description or ctx.persona or M.DEFAULT_PERSONA
  local lines = { M.GUIDANCE, "",
    "Service Context: " .. tostring(meta.service_context or sup.service_context or M.DEFAULT_CONTEXT),
    "Persona: " .. tostring(persona), "", "Conversation so far:" }
  for i, e in ipairs(conversation) do
    lines[#lines + 1] = ("%d. %s: %s"):format(i, e.role == "assistant" and "Assistant" or "User", e.content)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = M.ANSWER
  return table.concat(lines, "\n")
end

-- decision(reply_text) -> {decision, message, reason, closing, response}; raises for a reply
-- that holds no decision.
function M.decision(text)
  local d = M.first_object(text)
  if type(d) ~= "table" then fail("the openai supervisor's reply holds no JSON object: " .. quote(text)) end
  local function str(v) return type(v) == "string" and v ~= "" and v or nil end
  if d.decision == "continue" then
    local msg = str(d.next_user_message)
    if not msg then fail("the openai supervisor said continue without a next_user_message: " .. quote(text)) end
    return { decision = "continue", message = msg, response = d }
  elseif d.decision == "terminate" then
    return { decision = "terminate", reason = str(d.termination_reason), closing = str(d.closing_user_message),
      response = d }
  end
  fail("the openai supervisor's reply has no decision (continue or terminate): " .. quote(text))
end

-- new(sup, opts) -> decide(conversation, ctx). opts.rec: the recorder (masks the key);
-- opts.env: runner.env, for ${NAME} in api_key.
function M.new(sup, opts)
  opts = opts or {}
  local base = sup.base_url or os.getenv("OPENAI_BASE_URL") or M.DEFAULT_BASE_URL
  if base == "" then base = M.DEFAULT_BASE_URL end
  local url = (base:gsub("/+$", "")) .. "/chat/completions"
  local key, missing = os.getenv("OPENAI_API_KEY"), nil
  if sup.api_key then key, missing = require("fluxloop.httptarget").expand(sup.api_key, opts.env) end
  local headers = {}
  if key and key ~= "" then
    headers.Authorization = "Bearer " .. key
    if opts.rec and #key > 3 then opts.rec:redact({ key }) end -- never in a trace line
  end
  local shown = "POST " .. (url:gsub("[?#].*$", ""))
  return function(conversation, ctx)
    if missing then
      fail(("multi_turn.supervisor.api_key: ${%s} is not set in runner.env or in the environment"):format(missing))
    end
    local messages = json.array({})
    if sup.system_prompt then messages[1] = { role = "system", content = sup.system_prompt } end
    messages[#messages + 1] = { role = "user", content = M.prompt(conversation, ctx, sup) }
    local res, err = http.post_json(url, { model = sup.model, messages = messages, temperature = sup.temperature },
      { headers = headers, timeout_ms = sup.timeout_ms, observe = { name = "supervisor", type = "generation" } })
    if not res then fail("the openai supervisor's request failed: " .. tostring(err)) end
    if not res.ok then
      fail(("HTTP %d from %s%s: %s"):format(res.status, shown,
        res.attempts > 1 and (" after %d attempts"):format(res.attempts) or "", quote(res.body)))
    end
    local body = res:json()
    local choice = type(body) == "table" and type(body.choices) == "table" and body.choices[1]
    local content = type(choice) == "table" and type(choice.message) == "table" and choice.message.content
    if type(content) ~= "string" then
      fail("the openai supervisor's answer is not a chat completion (no choices[1].message.content): "
        .. quote(res.body))
    end
    return M.decision(content)
  end
end

return M
