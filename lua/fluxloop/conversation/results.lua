-- conversation/results.lua - conversations in `parse` and `report`: the "## Conversation"
-- list of a trace's markdown, the conversation of a per_trace.jsonl record, the transcript
-- of a failed or slow run in the report, and the report's distributions of turn counts and
-- termination reasons (one streaming pass over trace_summary.jsonl: bounded memory).
local json = require("fluxloop.json")
local jsonlread = require("fluxloop.jsonlread")
local template = require("fluxloop.template")

local M = {}

M.MAX_REASONS = 20 -- termination reasons listed; the rest are counted together
M.MAX_CONTENT = 2000 -- characters of one message shown in the report

local null = json.null

local function text_of(v)
  if type(v) == "string" then return v end
  if v == nil or v == null then return "" end
  local ok, s = pcall(json.encode, v)
  return ok and s or tostring(v)
end

-- is_conversation(v) -> whether a trace field holds a conversation (a list of entries).
function M.is_conversation(v)
  return type(v) == "table" and type(v[1]) == "table"
end

-- markdown_lines(l, conversation): appends the Python tool's list to the lines l:
-- `- **User**: text _(source=input)_`, with closing=true and persona when the entry says so.
function M.markdown_lines(l, conversation)
  for _, e in ipairs(conversation) do
    local meta = type(e.metadata) == "table" and e.metadata or {}
    local notes = { "source=" .. tostring(e.source) }
    if type(meta.actions) == "table" and #meta.actions > 0 then
      notes[#notes + 1] = "actions=" .. table.concat(meta.actions, ", ")
    end
    if meta.closing == true then notes[#notes + 1] = "closing=true" end
    if meta.persona ~= nil and meta.persona ~= null then notes[#notes + 1] = "persona=" .. tostring(meta.persona) end
    local role = e.role == "assistant" and "Assistant" or "User"
    l[#l + 1] = ("- **%s**: %s _(%s)_"):format(role, (text_of(e.content):gsub("\n", " ")), table.concat(notes, "; "))
  end
end

-- termination_lines(l, trace): the turn count and why the conversation ended.
function M.termination_lines(l, trace)
  if trace.turn_count == nil or trace.turn_count == null then return end
  l[#l + 1] = ""
  l[#l + 1] = ("_%s turn(s); ended: %s_"):format(tostring(trace.turn_count), tostring(trace.termination_reason))
end

-- Report -------------------------------------------------------------------------------

local function esc(s) return template.escape(s) end

-- transcript_html(trace) -> the conversation of a trace as HTML ("" for a single-turn trace).
function M.transcript_html(trace)
  local conv = trace and trace.conversation
  if not M.is_conversation(conv) then return "" end
  local parts = { ('<div class="transcript" data-turns="%s" data-ended="%s"><p class="sub">Conversation: %s '
    .. 'turn(s), ended: <code>%s</code></p><ol>'):format(esc(trace.turn_count or "?"),
    esc(trace.termination_reason or "?"), esc(trace.turn_count or "?"), esc(trace.termination_reason or "?")) }
  for _, e in ipairs(conv) do
    local content = text_of(e.content)
    if #content > M.MAX_CONTENT then content = content:sub(1, M.MAX_CONTENT) .. "..." end
    local closing = type(e.metadata) == "table" and e.metadata.closing == true
    parts[#parts + 1] = ('<li data-role="%s"><b>%s</b> <span class="sub">(turn %s, %s%s)</span>: %s</li>'):format(
      esc(e.role), e.role == "assistant" and "Assistant" or "User", esc(e.turn_index), esc(e.source),
      closing and ", closing" or "", esc(content))
  end
  parts[#parts + 1] = "</ol></div>"
  return table.concat(parts)
end

-- distributions(path) -> {turns = {{n, count}...}, reasons = {{reason, count}...}, total} | nil
-- when no row of trace_summary.jsonl (at path) is a conversation's.
function M.distributions(path)
  local r = jsonlread.open(path, { "turn_count", "termination_reason" })
  if not r then return nil end
  local turns, reasons, reason_list, total, other = {}, {}, {}, 0, 0
  while true do
    local n, count, reason = r:next()
    if not n then break end
    if math.type(count) == "integer" or type(count) == "number" then
      total = total + 1
      turns[count] = (turns[count] or 0) + 1
      reason = type(reason) == "string" and reason or "(none)"
      if reasons[reason] then
        reasons[reason] = reasons[reason] + 1
      elseif #reason_list < M.MAX_REASONS then
        reasons[reason] = 1
        reason_list[#reason_list + 1] = reason
      else
        other = other + 1
      end
    end
  end
  r:close()
  if total == 0 then return nil end
  local out = { turns = {}, reasons = {}, total = total }
  for n, c in pairs(turns) do out.turns[#out.turns + 1] = { n, c } end
  table.sort(out.turns, function(a, b) return a[1] < b[1] end)
  for _, reason in ipairs(reason_list) do out.reasons[#out.reasons + 1] = { reason, reasons[reason] } end
  table.sort(out.reasons, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  if other > 0 then out.reasons[#out.reasons + 1] = { "(other reasons)", other } end
  return out
end

local function bars(rows, total, attr)
  local parts = { "<table><tbody>" }
  for _, row in ipairs(rows) do
    local pct = 100 * row[2] / total
    parts[#parts + 1] = ('<tr %s="%s" data-count="%d"><td>%s</td><td class="n">%d</td><td><span class="rate">'
      .. '<i style="width:%.1f%%"></i></span>%.1f%%</td></tr>'):format(attr, esc(row[1]), row[2], esc(row[1]), row[2],
      pct, pct)
  end
  parts[#parts + 1] = "</tbody></table>"
  return table.concat(parts)
end

-- report_section(dir) -> the report's "Conversations" section (HTML), "" when the folder's
-- runs were single-turn.
function M.report_section(dir)
  local d = M.distributions(dir .. "/trace_summary.jsonl")
  if not d then return "" end
  return table.concat({ '<h2 id="conversations">Conversations</h2>',
    ('<p class="sub" data-figure="conversations">%d conversations. Turns (replies of the agent):</p>'):format(d.total),
    bars(d.turns, d.total, "data-turns"), '<p class="sub">Why they ended:</p>',
    bars(d.reasons, d.total, "data-reason") })
end

return M
