-- Where the API key comes from, and what must not travel over the pipe to the sidecar.
-- vim.lsp.rpc writes every message to lsp.log at debug level, so a key in the settings ends up in that file.
-- The sidecar can read the key itself (customEngineTokenEnv, customEngineTokenCommand, a customHeaders value
-- {env = ...} / {command = {...}}); this module puts setup()'s token_env / token_command there, refuses
-- settings that name two token sources, and warns once about keys written in plain text.
local K = {}

-- The settings keys of the three token sources, as the sidecar names them.
local TOKEN = 'customEngineToken'
local TOKEN_ENV = 'customEngineTokenEnv'
local TOKEN_COMMAND = 'customEngineTokenCommand'

-- Header names that carry a key (Azure's api-key, x-api-key, x-goog-api-key, Authorization, ...).
local KEY_HEADER_PATTERNS = { 'key', 'token', 'secret', 'auth', 'password', 'cookie', 'signature', 'credential' }

local warned = {} -- message -> true: each warning is shown once per Neovim

local function is_nil(v)
  return v == nil or v == vim.NIL
end

local function nonempty(v)
  return type(v) == 'string' and v:match('%S') ~= nil
end

local function key_like_header(name)
  local lower = tostring(name):lower()
  for _, p in ipairs(KEY_HEADER_PATTERNS) do
    if lower:find(p, 1, true) then return true end
  end
  return false
end

-- A request format given as the JSON string AutoDev stores, or as a table.
local function decoded(v)
  if type(v) == 'table' then return v end
  if type(v) ~= 'string' then return nil end
  local ok, t = pcall(vim.fn.json_decode, v)
  return ok and type(t) == 'table' and t or nil
end

--- The settings with setup()'s token_env / token_command as the sidecar's key sources (a copy; nil stays nil).
function K.apply(settings, token_env, token_command)
  if settings == nil or (token_env == nil and token_command == nil) then return settings end
  local s = vim.deepcopy(settings)
  if token_env ~= nil then s[TOKEN_ENV] = token_env end
  if token_command ~= nil then s[TOKEN_COMMAND] = token_command end
  return s
end

--- The token sources a settings object names: a list of their keys, in a fixed order.
function K.token_sources(s)
  local out = {}
  if type(s) ~= 'table' then return out end
  local auth = type(s.auth) == 'table' and s.auth or {}
  if nonempty(s[TOKEN]) or nonempty(auth.token) then out[#out + 1] = s[TOKEN] ~= nil and TOKEN or 'auth.token' end
  if not is_nil(s[TOKEN_ENV]) or not is_nil(auth.tokenEnv) then out[#out + 1] = s[TOKEN_ENV] ~= nil and TOKEN_ENV or 'auth.tokenEnv' end
  if not is_nil(s[TOKEN_COMMAND]) or not is_nil(auth.tokenCommand) then
    out[#out + 1] = s[TOKEN_COMMAND] ~= nil and TOKEN_COMMAND or 'auth.tokenCommand'
  end
  return out
end

--- The names of customHeaders entries that hold a key-like header as a plain string.
function K.plain_key_headers(s)
  local out = {}
  if type(s) ~= 'table' then return out end
  local sources = {}
  for _, f in ipairs({ 'customEngineRequestFormat', 'requestFormat' }) do
    local rf = decoded(s[f])
    if rf and type(rf.customHeaders) == 'table' then sources[#sources + 1] = rf.customHeaders end
  end
  if type(s.customRequest) == 'table' and type(s.customRequest.headers) == 'table' then
    sources[#sources + 1] = s.customRequest.headers
  end
  for _, headers in ipairs(sources) do
    for name, value in pairs(headers) do
      if type(name) == 'string' and nonempty(value) and key_like_header(name) then out[#out + 1] = name end
    end
  end
  table.sort(out)
  return out
end

local function warn_once(notify, msg)
  if warned[msg] then return end
  warned[msg] = true
  notify(msg, vim.log.levels.WARN)
end

-- True when vim.lsp's log writes debug lines (every JSON-RPC message).
local function lsp_log_is_debug()
  local ok, log = pcall(require, 'vim.lsp.log')
  if not ok or type(log.get_level) ~= 'function' then return false end
  local level = log.get_level()
  if type(level) == 'string' then level = vim.log.levels[level:upper()] end
  return type(level) == 'number' and level <= vim.log.levels.DEBUG
end

--- Checks one settings object before it goes over the pipe. `where` names it in messages ('settings',
--- 'completion.settings', 'customLlms[GLM]'). Returns false (after an error) when it must not be sent: two
--- token sources, with a plain token among them. Warns once about a plain key in a customHeaders value, and
--- about a plain token while the LSP log is at debug level.
function K.check(s, where, notify)
  if type(s) ~= 'table' then return true end
  local sources = K.token_sources(s)
  if #sources > 1 then
    notify(string.format('llm-sidecar: %s: set only one of %s (nothing was sent)', where, table.concat(sources, ', ')),
      vim.log.levels.ERROR)
    return false
  end
  for _, name in ipairs(K.plain_key_headers(s)) do
    warn_once(notify, string.format('llm-sidecar: %s: the customHeaders value of %q looks like a key written in '
      .. 'plain text; let the sidecar read it: %s = { env = "NAME" } or { command = { "pass", "show", "..." } } '
      .. '(:help llm_sidecar-keys)', where, name, name))
  end
  if (sources[1] == TOKEN or sources[1] == 'auth.token') and lsp_log_is_debug() then
    warn_once(notify, string.format('llm-sidecar: %s: the LSP log is at debug level and writes the token to %s; '
      .. 'use token_env or token_command instead (:help llm_sidecar-keys)', where, vim.lsp.get_log_path()))
  end
  return true
end

--- Checks every entry of a customLlms list (a list of tables, or AutoDev's JSON string).
function K.check_list(list, notify)
  local entries = decoded(list)
  if type(entries) ~= 'table' then return true end
  for i, e in ipairs(entries) do
    local name = type(e) == 'table' and type(e.name) == 'string' and e.name or tostring(i)
    if not K.check(e, 'customLlms[' .. name .. ']', notify) then return false end
  end
  return true
end

return K
