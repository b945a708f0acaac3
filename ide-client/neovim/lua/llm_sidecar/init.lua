-- llm-sidecar client for Neovim 0.7 and later: streams LLM answers into scratch buffers.
-- The sidecar is one child process per Neovim, started on first use and stopped on VimLeavePre;
-- vim.lsp.rpc does the JSON-RPC framing. See :help llm_sidecar.
local M = {}

local uv = vim.uv or vim.loop
local api = vim.api
local levels = vim.log.levels
local Log = require('llm_sidecar.log')
local Keys = require('llm_sidecar.keys')
local Cfg = require('llm_sidecar.configuration')

local defaults = {
  cmd = { 'llm-sidecar' }, -- the sidecar command (a list)
  settings = nil, -- a settings object in any form the sidecar accepts (AutoDev v1, preset, customLlms entry)
  split = 'belowright split', -- the command that opens the window of an answer
  log_level = nil, -- LLM_SIDECAR_LOG for the sidecar ('debug', 'info', 'warn'); nil: the sidecar's default
  system = nil, -- an optional system message sent before the prompt
  log_max_lines = 5000, -- the log buffer keeps the last lines only
  token_env = nil, -- the name of an environment variable the sidecar reads the token of `settings` from
  token_command = nil, -- or an argv list the sidecar runs to print it (no shell), e.g. { 'pass', 'show', 'llm' }
  customLlms = nil, -- AutoDev 2.x's list (a list of tables, or the JSON string AutoDev stores)
  profiles = nil, -- { name = settings }
  completion = nil, -- ghost text: { settings = {...} | llm = 'name' | profile = 'name', enabled, debounce_ms, ... }
}

local config = vim.deepcopy(defaults)

-- The running sidecar and the answers it streams.
local state = {
  client = nil, -- the vim.lsp.rpc client
  gen = 0, -- increases with every start; an on_exit of an older process is ignored
  stopping = false,
  exited = {}, -- gen -> true once that process exited
  streams = {}, -- streamId -> answer state
  count = 0, -- answers asked so far (names buffers and stream ids)
  stderr = nil, -- {pipe, path, partial}
  sent_config = nil, -- the configuration the running sidecar was given (initializationOptions, didChangeConfiguration)
}

local function notify(msg, level)
  vim.notify(msg, level or levels.INFO, { title = 'llm-sidecar' })
end

-- Runs fn in the main loop: at once when allowed, else scheduled (keeps arrival order either way).
local function main_loop(fn)
  if vim.in_fast_event() then vim.schedule(fn) else fn() end
end

local function is_nil(v)
  return v == nil or v == vim.NIL
end

local split_lines = Log.split_lines

--- Writes a line of the client's own to the log buffer.
M.log = Log.client

---------------------------------------------------------------------------------------------------
-- Answer buffers.

local function set_status(st, status)
  st.status = status
  if api.nvim_buf_is_valid(st.buf) then
    api.nvim_buf_set_var(st.buf, 'llm_sidecar_status', status)
  end
end

-- Keeps windows that showed the end of the buffer at its end.
local function follow_end(buf, old_count)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    local cursor = api.nvim_win_get_cursor(win)
    if cursor[1] >= old_count then
      api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(buf), 0 })
    end
  end
end

-- Appends text at line index `row` (0-based): the line's end gets the first piece, new lines the rest.
local function append_at(buf, row, text)
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  local pieces = split_lines(text)
  pieces[1] = line .. pieces[1]
  api.nvim_buf_set_lines(buf, row, row + 1, false, pieces)
  return #pieces - 1
end

local REASONING_HEADER = 'Reasoning:'
local REASONING_END = '---'

-- The reasoning block sits at the top: header, reasoning text, separator; the answer follows.
local function append_reasoning(st, text)
  local buf = st.buf
  if st.rlines == 0 then
    api.nvim_buf_set_lines(buf, 0, 0, false, { REASONING_HEADER, '', REASONING_END })
    st.rlines = 3
  end
  local old = api.nvim_buf_line_count(buf)
  st.rlines = st.rlines + append_at(buf, st.rlines - 2, text)
  follow_end(buf, old)
end

local function fold_reasoning(st)
  if st.rlines == 0 or st.folded or not api.nvim_buf_is_valid(st.buf) then return end
  st.folded = true
  for _, win in ipairs(vim.fn.win_findbuf(st.buf)) do
    api.nvim_win_call(win, function()
      vim.wo.foldmethod = 'manual'
      vim.wo.foldenable = true
      vim.cmd('silent! normal! zE')
      vim.cmd(string.format('silent 1,%dfold', st.rlines - 1))
    end)
  end
end

local function append_answer(st, text)
  fold_reasoning(st)
  local buf = st.buf
  local old = api.nvim_buf_line_count(buf)
  append_at(buf, old - 1, text)
  follow_end(buf, old)
end

local function on_chunk(p)
  if type(p) ~= 'table' then return end
  local st = state.streams[tostring(p.streamId)]
  if not st or st.status ~= 'streaming' or not api.nvim_buf_is_valid(st.buf) then return end
  if type(p.text) ~= 'string' or p.text == '' then return end
  st.chunks = st.chunks + 1
  if p.kind == 'reasoning' then
    st.reasoning = st.reasoning .. p.text
    append_reasoning(st, p.text)
  else
    st.text = st.text .. p.text
    append_answer(st, p.text)
  end
end

---------------------------------------------------------------------------------------------------
-- Errors.

local function one_line(s, max)
  s = tostring(s or ''):gsub('%s+', ' ')
  if #s > max then s = s:sub(1, max) .. '…' end
  return s
end

--- The text shown for a JSON-RPC error from the sidecar.
function M.format_error(err)
  if type(err) ~= 'table' then return 'llm-sidecar: ' .. tostring(err) end
  local msg = 'llm-sidecar: ' .. tostring(is_nil(err.message) and ('error ' .. tostring(err.code)) or err.message)
  local data = err.data
  if type(data) == 'table' then
    if type(data.problems) == 'table' then
      for _, p in ipairs(data.problems) do
        msg = msg .. '\n  ' .. tostring(p.field) .. ': ' .. tostring(p.message)
      end
    end
    if data.kind == 'no_match' and type(data.suggestions) == 'table' and data.suggestions[1] then
      local s = data.suggestions[1]
      msg = msg .. '\nsuggested path: ' .. tostring(s.path)
      if type(s.sampleText) == 'string' then
        msg = msg .. ' (gives "' .. one_line(s.sampleText, 60) .. '")'
      end
    end
  end
  return msg
end

---------------------------------------------------------------------------------------------------
-- The sidecar process.

local function on_exit(gen, code, signal, stderr)
  state.exited[gen] = true
  Log.close_stderr(stderr)
  M.log(string.format('llm-sidecar exited (code %s, signal %s)', tostring(code), tostring(signal)))
  -- The answers this process was streaming end here, even when a newer process already runs.
  for _, st in pairs(state.streams) do
    if st.status == 'streaming' and st.gen == gen then
      set_status(st, 'error')
      local kept = st.text ~= '' and ('; the partial text is kept in ' .. api.nvim_buf_get_name(st.buf)) or ''
      notify(string.format('llm-sidecar exited (code %s) while answering%s', tostring(code), kept), levels.ERROR)
    end
  end
  if gen ~= state.gen then return end
  local was_stopping = state.stopping
  state.client = nil
  state.stderr = nil
  if not was_stopping and (code ~= 0 or (signal or 0) ~= 0) then
    local how = (signal or 0) ~= 0 and ('on signal ' .. tostring(signal)) or ('with code ' .. tostring(code))
    notify('llm-sidecar exited ' .. how .. ' (its log: :LlmLog)', levels.ERROR)
  end
end

-- Neovim 0.7's client has {pid, handle, request, notify}; later ones have is_closing() and terminate().
local function client_closing(client)
  if client.is_closing then return client.is_closing() end
  return client.handle == nil or client.handle:is_closing()
end

local function client_terminate(client)
  if client.terminate then return client.terminate() end
  if client.handle and not client.handle:is_closing() then client.handle:kill(15) end
end

---------------------------------------------------------------------------------------------------
-- The configuration (configuration.lua): sent as initializationOptions at start and with
-- workspace/didChangeConfiguration when setup() changes it.

-- initialize (with the configuration as initializationOptions), then initialized. The sidecar reads both before
-- any later request, so nothing waits for the answer.
local function initialize(client)
  local params = { processId = uv.os_getpid(), clientInfo = { name = 'llm_sidecar.nvim' },
    capabilities = vim.empty_dict() }
  local cfg = Cfg.build(config, notify)
  if cfg and next(cfg) then params.initializationOptions = cfg end
  state.sent_config = cfg or {}
  client.request('initialize', params, function(err, result)
    main_loop(function()
      if err then
        M.log('initialize failed: ' .. M.format_error(err))
        return
      end
      local problems = Cfg.problems(result)
      if problems then notify(problems, levels.WARN) end
      pcall(client.notify, 'initialized', vim.empty_dict())
    end)
  end)
end

-- After setup(): tells a running sidecar what changed.
local function sync_configuration()
  if not M.is_running() then return end
  local cfg = Cfg.build(config, notify)
  if cfg == nil or vim.deep_equal(cfg, state.sent_config or {}) then return end
  local change = Cfg.change(state.sent_config, cfg)
  state.sent_config = cfg
  state.client.notify('workspace/didChangeConfiguration', { settings = change })
end

local function start()
  if state.client and not client_closing(state.client) then return state.client end
  local cmd = config.cmd
  if type(cmd) == 'string' then cmd = { cmd } end
  if type(cmd) ~= 'table' or not cmd[1] then
    notify('llm-sidecar: `cmd` must be a list such as {"llm-sidecar"}', levels.ERROR)
    return nil
  end
  if vim.fn.executable(cmd[1]) ~= 1 then
    notify('llm-sidecar: cannot run ' .. tostring(cmd[1]) .. ' (not found or not executable); set cmd in setup()',
      levels.ERROR)
    return nil
  end
  local env = {}
  if config.log_level then env.LLM_SIDECAR_LOG = config.log_level end
  local spawn = cmd
  local stderr = Log.open_stderr_fifo()
  if stderr then
    spawn = { '/bin/sh', '-c', 'exec 2>"$LLM_SIDECAR_STDERR_FIFO"; unset LLM_SIDECAR_STDERR_FIFO; exec "$@"', 'llm-sidecar' }
    vim.list_extend(spawn, cmd)
    env.LLM_SIDECAR_STDERR_FIFO = stderr.path
  end
  state.gen = state.gen + 1
  local gen = state.gen
  local dispatchers = {
    notification = function(method, params)
      if method == 'llm/chunk' then
        main_loop(function() on_chunk(params) end)
      elseif method == 'window/showMessage' and type(params) == 'table' then
        main_loop(function()
          notify('llm-sidecar: ' .. tostring(params.message), params.type == 1 and levels.ERROR or levels.WARN)
        end)
      end
    end,
    server_request = function()
      return nil, vim.lsp.rpc.rpc_response_error(-32601)
    end,
    on_exit = function(code, signal)
      vim.schedule(function() on_exit(gen, code, signal, stderr) end)
    end,
    on_error = function(code, err)
      M.log('rpc error ' .. tostring(code) .. ': ' .. tostring(err))
    end,
  }
  local extra = next(env) and { env = env } or nil
  local ok, client
  if vim.fn.has('nvim-0.10') == 1 then
    ok, client = pcall(vim.lsp.rpc.start, spawn, dispatchers, extra)
  else
    ok, client = pcall(vim.lsp.rpc.start, spawn[1], vim.list_slice(spawn, 2), dispatchers, extra)
  end
  if not ok or not client then
    Log.close_stderr(stderr)
    notify('llm-sidecar: could not start ' .. table.concat(cmd, ' ') .. ': ' .. tostring(client), levels.ERROR)
    return nil
  end
  state.client = client
  state.stderr = stderr
  state.stopping = false
  local group = api.nvim_create_augroup('llm_sidecar', { clear = true })
  api.nvim_create_autocmd('VimLeavePre', { group = group, callback = function() M.stop() end })
  M.log('started ' .. table.concat(cmd, ' '))
  initialize(client)
  return client
end

--- Stops the sidecar (shutdown, exit; killed if it does not exit within a second). Called on VimLeavePre.
function M.stop()
  local client = state.client
  if not client then return end
  local gen = state.gen
  state.stopping = true
  for _, st in pairs(state.streams) do
    if st.status == 'streaming' then set_status(st, 'cancelled') end
  end
  local answered = false
  pcall(client.request, 'shutdown', nil, function() answered = true end)
  vim.wait(1000, function() return answered end, 10)
  pcall(client.notify, 'exit', nil)
  vim.wait(1000, function() return state.exited[gen] == true end, 10)
  if not state.exited[gen] then
    pcall(client_terminate, client)
    vim.wait(1000, function() return state.exited[gen] == true end, 10)
  end
  if state.gen == gen then state.client = nil end
end

--- True while a sidecar process runs.
function M.is_running()
  return state.client ~= nil and not client_closing(state.client)
end

-- The request's settings selection (settings, llm, profile) added to params; nil (after an error) when the
-- settings must not be sent (see keys.lua).
local function selection(params, opts)
  local settings = opts.settings or Keys.apply(config.settings, config.token_env, config.token_command)
  if settings ~= nil then
    if not Keys.check(settings, 'settings', notify) then return nil end
    params.settings = settings
  end
  if opts.llm or config.llm then params.llm = opts.llm or config.llm end
  if opts.profile or config.profile then params.profile = opts.profile or config.profile end
  return params
end


---------------------------------------------------------------------------------------------------
-- Public API.

--- Configures the plugin (see :help llm_sidecar.setup()). Called again, it replaces the whole configuration and
--- sends what changed in customLlms, profiles and completion to the running sidecar.
function M.setup(opts)
  opts = opts or {}
  config = vim.tbl_extend('force', vim.deepcopy(defaults), opts)
  if type(config.cmd) == 'string' then config.cmd = { config.cmd } end
  Log.max_lines = config.log_max_lines
  require('llm_sidecar.completion').configure(config.completion)
  sync_configuration()
end

--- The current configuration (read only; used by the completion and health modules).
function M.config()
  return config
end

--- The running sidecar's client, started when needed; nil when it cannot start.
function M.client()
  return start()
end

M.notify = notify

--- Asks the LLM. prompt: the text; opts.context: text sent after the prompt (a selection), opts.filetype its
--- language, opts.settings overrides the configured settings, opts.window=false streams without opening a window.
--- Returns the answer buffer, or nil when nothing was sent.
function M.ask(prompt, opts)
  opts = opts or {}
  prompt = prompt or ''
  local content = prompt
  if opts.context and opts.context ~= '' then
    local fence = '```' .. (opts.filetype or '') .. '\n' .. opts.context .. '\n```'
    content = (prompt ~= '' and (prompt .. '\n\n') or '') .. fence
  end
  if content:match('^%s*$') then
    notify('llm-sidecar: nothing to ask (:LlmAsk {prompt}, or select lines first)', levels.ERROR)
    return nil
  end
  local sel = selection({}, opts)
  if not sel then return nil end
  local client = start()
  if not client then return nil end

  state.count = state.count + 1
  while vim.fn.bufexists(string.format('llm-sidecar://%d', state.count)) == 1 do state.count = state.count + 1 end
  local n = state.count
  local stream_id = string.format('nvim-%d-%d', uv.os_getpid(), n)
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(buf, string.format('llm-sidecar://%d', n))
  vim.bo[buf].filetype = 'markdown'
  api.nvim_buf_set_var(buf, 'llm_sidecar_prompt', prompt)
  local st = { id = stream_id, buf = buf, status = 'streaming', text = '', reasoning = '', chunks = 0, rlines = 0,
    gen = state.gen }
  state.streams[stream_id] = st
  set_status(st, 'streaming')
  api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      if st.status == 'streaming' then M.cancel({ buf = buf }) end
      state.streams[stream_id] = nil
    end,
  })
  if opts.window ~= false then
    vim.cmd(config.split)
    api.nvim_win_set_buf(0, buf)
  end

  local messages = {}
  local system = opts.system or config.system
  if system then messages[#messages + 1] = { role = 'system', content = system } end
  messages[#messages + 1] = { role = 'user', content = content }
  local params = vim.tbl_extend('force', sel, { streamId = stream_id, messages = messages })
  local ok, id = client.request('llm/complete', params, function(err, result)
    main_loop(function()
      if st.status ~= 'streaming' then return end
      if err then
        st.error = err
        set_status(st, 'error')
        local msg = M.format_error(err)
        if st.text ~= '' then msg = msg .. '\n(the partial answer is kept in ' .. api.nvim_buf_get_name(buf) .. ')' end
        notify(msg, levels.ERROR)
      else
        st.result = result
        fold_reasoning(st)
        set_status(st, 'done')
      end
    end)
  end)
  if not ok then
    set_status(st, 'error')
    notify('llm-sidecar: could not send the request (the sidecar is not running)', levels.ERROR)
    return buf
  end
  st.request_id = id
  return buf
end

--- :LlmAsk with its command arguments (args, range, line1, line2).
function M.ask_command(o)
  local opts = {}
  if o.range and o.range > 0 then
    local lines = api.nvim_buf_get_lines(0, o.line1 - 1, o.line2, false)
    -- A characterwise visual selection over exactly these lines: only the selected characters.
    local s, e = api.nvim_buf_get_mark(0, '<'), api.nvim_buf_get_mark(0, '>')
    if o.range == 2 and vim.fn.visualmode() == 'v' and s[1] == o.line1 and e[1] == o.line2 and #lines > 0 then
      local last = lines[#lines]
      local stop = math.min(e[2] + 1, #last)
      while stop < #last do -- the whole last character, when it is multi-byte
        local b = last:byte(stop + 1)
        if b < 0x80 or b >= 0xC0 then break end
        stop = stop + 1
      end
      lines[#lines] = last:sub(1, stop)
      lines[1] = lines[1]:sub(s[2] + 1)
    end
    opts.context = table.concat(lines, '\n')
    opts.filetype = vim.bo.filetype
  end
  return M.ask(o.args or '', opts)
end

local function stream_of_buf(buf)
  for _, st in pairs(state.streams) do
    if st.buf == buf then return st end
  end
end

--- Cancels: the answer of opts.buf (default: the current buffer) if it is streaming, else the latest streaming
--- answer; opts.all cancels every one. The text received so far stays in the buffer.
function M.cancel(opts)
  opts = opts or {}
  local targets = {}
  local cur = stream_of_buf(opts.buf or api.nvim_get_current_buf())
  if opts.all then
    for _, st in pairs(state.streams) do
      if st.status == 'streaming' then targets[#targets + 1] = st end
    end
  elseif cur and cur.status == 'streaming' then
    targets = { cur }
  else
    local latest
    for _, st in pairs(state.streams) do
      if st.status == 'streaming' and (not latest or st.buf > latest.buf) then latest = st end
    end
    targets = { latest }
  end
  if #targets == 0 then
    if not opts.quiet then notify('llm-sidecar: no answer is streaming', levels.WARN) end
    return 0
  end
  for _, st in ipairs(targets) do
    if state.client and st.request_id then
      state.client.notify('$/cancelRequest', { id = st.request_id })
    end
    set_status(st, 'cancelled')
    fold_reasoning(st)
  end
  if not opts.quiet then notify(string.format('llm-sidecar: cancelled (%d)', #targets), levels.INFO) end
  return #targets
end

--- Sends llm/testConnection with the configured settings and shows the report.
function M.test_connection(opts)
  opts = opts or {}
  local sel = selection({}, opts)
  if not sel then return end
  local client = start()
  if not client then return end
  client.request('llm/testConnection', sel, function(err, r)
    main_loop(function()
      if err then
        notify(M.format_error(err), levels.ERROR)
      elseif r.ok then
        local lines = { 'llm-sidecar: connection OK' }
        lines[#lines + 1] = string.format('  HTTP %s, %s (read as %s)', tostring(r.status),
          tostring(is_nil(r.contentType) and '?' or r.contentType), tostring(r.detectedResponseType))
        lines[#lines + 1] = string.format('  first byte %s ms, total %s ms', tostring(r.firstByteMs), tostring(r.totalMs))
        if type(r.sampleText) == 'string' then lines[#lines + 1] = '  sample: ' .. one_line(r.sampleText, 120) end
        if type(r.finishReason) == 'string' then lines[#lines + 1] = '  finish reason: ' .. r.finishReason end
        notify(table.concat(lines, '\n'), levels.INFO)
      else
        local e = type(r.error) == 'table' and r.error or { message = 'failed' }
        local msg = M.format_error(e):gsub('^llm%-sidecar: ', 'llm-sidecar: connection test failed: ')
        if type(r.suggestions) == 'table' and r.suggestions[1] and not msg:find('suggested path', 1, true) then
          msg = msg .. '\nsuggested path: ' .. tostring(r.suggestions[1].path)
        end
        notify(msg, levels.ERROR)
      end
      if opts.on_result then opts.on_result(err, r) end
    end)
  end)
end

--- Lists the built-in presets in a scratch buffer (llm-sidecar://presets).
function M.presets(opts)
  opts = opts or {}
  local client = start()
  if not client then return end
  client.request('llm/presets', vim.empty_dict(), function(err, r)
    main_loop(function()
      if err then
        notify(M.format_error(err), levels.ERROR)
        return
      end
      local lines = { 'llm-sidecar presets: use one as settings = { preset = "<name>", customEngineToken = "..." }', '' }
      for _, p in ipairs(r.presets or {}) do
        local aliases = (type(p.aliases) == 'table' and #p.aliases > 0) and (' (' .. table.concat(p.aliases, ', ') .. ')') or ''
        lines[#lines + 1] = p.name .. aliases
        if type(p.description) == 'string' then lines[#lines + 1] = '    ' .. one_line(p.description, 200) end
        local s = type(p.settings) == 'table' and p.settings or {}
        local url = type(p.urlHint) == 'string' and p.urlHint or s.customEngineServer
        if type(url) == 'string' then lines[#lines + 1] = '    ' .. url end
      end
      local buf = vim.fn.bufnr('llm-sidecar://presets')
      if buf == -1 then
        buf = api.nvim_create_buf(false, true)
        api.nvim_buf_set_name(buf, 'llm-sidecar://presets')
      end
      api.nvim_buf_set_lines(buf, 0, -1, false, lines)
      if opts.window ~= false then
        if #vim.fn.win_findbuf(buf) == 0 then
          vim.cmd(config.split)
          api.nvim_win_set_buf(0, buf)
        end
      end
      if opts.on_result then opts.on_result(r) end
    end)
  end)
end

--- Opens the log buffer (the sidecar's stderr and the client's own lines).
function M.open_log()
  local buf = Log.buffer()
  if #vim.fn.win_findbuf(buf) == 0 then
    vim.cmd(config.split)
    api.nvim_win_set_buf(0, buf)
  end
  return buf
end

--- The log buffer's number (created when needed).
M.log_buffer = Log.buffer

return M
