-- chat_agent.lua - an example chat handler called with replayed arguments: it reads the
-- message and its sender, and answers through the send callback (returning nothing).
local M = {}

local topics = {
  { "charge", "billing" }, { "invoice", "billing" }, { "receipt", "billing" }, { "plan", "billing" },
  { "teammate", "accounts" }, { "export", "product" }, { "download", "product" },
}

local function topic_of(text)
  local t = text:lower()
  for _, pair in ipairs(topics) do
    if t:find(pair[1], 1, true) then return pair[2] end
  end
  return "general"
end

-- run(args, ctx): args is the recorded message with args.data.content set to the input.
function M.run(args, ctx)
  local data = args.data
  local topic = ctx:span({ name = "classify", type = "tool" }, topic_of, data.content)
  ctx.metadata.user_id = data.user.id
  ctx.metadata.channel = args.channel and args.channel.name
  ctx.metadata.attachments = #(args.attachments or {})
  args.send_message_callback({
    text = ("Hi %s, I've routed your %s question to the team."):format(data.user.name or "there", topic),
    user_id = data.user.id,
    thread_id = data.thread_id,
  })
end

return M
