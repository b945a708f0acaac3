-- :checkhealth llm_sidecar: the binary is found and runs, settings are present, and a chat and a completion test
-- go through the running sidecar to the configured servers.
local H = {}

-- vim.health (0.9+) or the older require('health') (0.7, 0.8).
local report = (function()
  local h = vim.health
  if h and h.start then return { start = h.start, ok = h.ok, warn = h.warn, error = h.error, info = h.info } end
  local old = require('health')
  return { start = old.report_start, ok = old.report_ok, warn = old.report_warn, error = old.report_error,
    info = old.report_info }
end)()

local TIMEOUT_MS = 30000

-- Sends one request and waits for its answer (at most TIMEOUT_MS); returns err, result.
local function call(client, method, params)
  local done, err, result = false, nil, nil
  local ok, id = client.request(method, params, function(e, r)
    done, err, result = true, e, r
  end)
  if not ok then return { message = 'the sidecar is not running' }, nil end
  if not vim.wait(TIMEOUT_MS, function() return done end, 20) then
    pcall(client.notify, '$/cancelRequest', { id = id })
    return { message = 'no answer within ' .. (TIMEOUT_MS / 1000) .. ' s' }, nil
  end
  return err, result
end

local function check_binary(config)
  report.start('llm-sidecar binary')
  local cmd = type(config.cmd) == 'string' and { config.cmd } or config.cmd
  if type(cmd) ~= 'table' or not cmd[1] then
    report.error('`cmd` must be a list such as { "llm-sidecar" }')
    return false
  end
  if vim.fn.executable(cmd[1]) ~= 1 then
    report.error(cmd[1] .. ' is not found or not executable', { 'build it (cargo build --release) and set cmd in setup()' })
    return false
  end
  local out = vim.fn.system({ cmd[1], '--version' })
  if vim.v.shell_error ~= 0 then
    report.error(cmd[1] .. ' --version failed: ' .. vim.trim(out))
    return false
  end
  report.ok(vim.trim(out) .. ' (' .. vim.fn.exepath(cmd[1]) .. ')')
  return true
end

local function check_settings(config)
  report.start('settings')
  local any = false
  if config.settings ~= nil then
    any = true
    local keys = require('llm_sidecar.keys')
    local sources = keys.token_sources(keys.apply(config.settings, config.token_env, config.token_command))
    report.ok('chat: settings given' .. (sources[1] and (' (token from ' .. sources[1] .. ')') or ' (no token)'))
    if sources[1] == 'customEngineToken' or sources[1] == 'auth.token' then
      report.warn('the token is written in the settings: it travels over the pipe to the sidecar, and vim.lsp '
        .. 'writes it to lsp.log at debug level', { 'use token_env or token_command (:help llm_sidecar-keys)' })
    end
  end
  if config.llm then any = true; report.ok('chat: the customLlms entry ' .. config.llm) end
  if config.profile then any = true; report.ok('chat: the profile ' .. config.profile) end
  if config.customLlms ~= nil then
    any = true
    local list = config.customLlms
    if type(list) == 'string' then
      local ok, t = pcall(vim.fn.json_decode, list)
      list = ok and t or {}
    end
    local names = {}
    for _, e in ipairs(type(list) == 'table' and list or {}) do
      names[#names + 1] = tostring(e.name) .. ' (' .. tostring(e.modelType or 'Default') .. ')'
    end
    report.ok('customLlms: ' .. (#names > 0 and table.concat(names, ', ') or 'empty'))
  end
  local c = config.completion
  if type(c) == 'table' and (c.settings ~= nil or c.llm or c.profile) then
    report.ok('completion: ' .. (c.llm and ('the customLlms entry ' .. c.llm) or c.profile and ('the profile ' .. c.profile)
      or 'settings given'))
  end
  local auto = require('llm_sidecar.completion').options()
  report.info(string.format('automatic completion: %s (debounce %d ms)', auto.enabled and 'on' or 'off', auto.debounce_ms))
  if not any then
    report.error('no settings: call require("llm_sidecar").setup({ settings = {...} }) (:help llm_sidecar-setup)')
  end
  return any
end

local function check_connections()
  local llm = require('llm_sidecar')
  report.start('test connections (through the running sidecar)')
  local client = llm.client()
  if not client then
    report.error('the sidecar does not start (see :LlmLog)')
    return
  end
  local sel = {}
  local config = llm.config()
  local settings = require('llm_sidecar.keys').apply(config.settings, config.token_env, config.token_command)
  if settings ~= nil then sel.settings = settings end
  sel.llm, sel.profile = config.llm, config.profile
  local err, r = call(client, 'llm/testConnection', sel)
  if err then
    report.error('chat: ' .. llm.format_error(err))
  elseif r.ok then
    report.ok(string.format('chat: HTTP %s, first byte %s ms, sample %q', tostring(r.status), tostring(r.firstByteMs),
      tostring(type(r.sampleText) == 'string' and r.sampleText:sub(1, 60) or '')))
  else
    report.error('chat: ' .. llm.format_error(type(r.error) == 'table' and r.error or { message = 'failed' }))
  end
  err, r = call(client, 'llm/inlineCompletion',
    { prefix = 'def add(a, b):\n    return ', suffix = '\n', language = 'python' })
  if err then
    report.error('completion: ' .. llm.format_error(err))
  else
    local item = type(r.items) == 'table' and r.items[1]
    local timings = type(r.timings) == 'table' and r.timings or {}
    report.ok(string.format('completion: %q in %s ms', type(item) == 'table' and tostring(item.insertText) or '',
      tostring(timings.totalMs)))
  end
end

function H.check()
  local config = require('llm_sidecar').config()
  if not check_binary(config) then return end
  check_settings(config)
  check_connections()
end

return H
