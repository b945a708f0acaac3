-- What the sidecar is configured with: customLlms, profiles and the completion settings from setup(), sent as
-- initializationOptions when it starts and with workspace/didChangeConfiguration when setup() changes them
-- (init.lua sends them). Nothing that must not go over the pipe is let through (keys.lua).
local Cfg = {}

local Keys = require('llm_sidecar.keys')

-- setup()'s completion table as the sidecar's `completion` setting: settings, {llm = name} or {profile = name}.
local function completion_setting(c)
  if type(c) ~= 'table' then return nil end
  if c.settings ~= nil then return Keys.apply(c.settings, c.token_env, c.token_command) end
  if c.llm ~= nil then return { llm = c.llm } end
  if c.profile ~= nil then return { profile = c.profile } end
  return nil
end

--- The configuration to send for setup()'s config; nil (after an error through notify) when a part of it must
--- not go over the pipe.
function Cfg.build(config, notify)
  local c = {}
  if config.customLlms ~= nil then
    if not Keys.check_list(config.customLlms, notify) then return nil end
    c.customLlms = config.customLlms
  end
  if config.profiles ~= nil then
    for name, p in pairs(config.profiles) do
      if not Keys.check(p, 'profiles[' .. tostring(name) .. ']', notify) then return nil end
    end
    c.profiles = config.profiles
  end
  local completion = completion_setting(config.completion)
  if completion ~= nil then
    if not Keys.check(completion, 'completion.settings', notify) then return nil end
    c.completion = completion
  end
  return c
end

--- The didChangeConfiguration settings from the last configuration sent to the next one: a part that was
--- configured before and is gone now is sent empty, so the sidecar forgets it.
function Cfg.change(old, new)
  local out = vim.deepcopy(new)
  old = old or {}
  if old.customLlms ~= nil and new.customLlms == nil then out.customLlms = {} end
  if old.profiles ~= nil and new.profiles == nil then out.profiles = vim.empty_dict() end
  if old.completion ~= nil and new.completion == nil then out.completion = vim.NIL end
  return out
end

--- The problems an initialize result reports, as one message; nil when there are none.
function Cfg.problems(result)
  local cfg = type(result) == 'table' and result.configuration
  local problems = type(cfg) == 'table' and cfg.problems
  if type(problems) ~= 'table' or #problems == 0 then return nil end
  local lines = { 'llm-sidecar: configuration problems:' }
  for _, p in ipairs(problems) do
    lines[#lines + 1] = '  ' .. tostring(p.field) .. ': ' .. tostring(p.message)
  end
  return table.concat(lines, '\n')
end

return Cfg
