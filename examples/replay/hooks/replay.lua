-- replay.lua - rewrites the replayed arguments of every run: a fresh thread id (so runs do
-- not look like one conversation) and the locale of the run's persona.
--   fluxloop run experiment --hooks hooks/replay.lua     (from examples/replay)
local LOCALES = { frustrated_customer = "en-GB", new_admin = "fr-FR" }

return {
  replay_args = function(args, input, run)
    args.data.thread_id = ("th-replay-%04d"):format(run.k)
    args.data.user.locale = LOCALES[run.persona] or args.data.user.locale
    return args
  end,
}
