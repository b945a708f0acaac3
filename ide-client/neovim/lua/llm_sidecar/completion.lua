-- Ghost-text code completion: llm/inlineCompletion with the text before and after the cursor, the answer shown
-- as extmarks (virt_text for its first line, virt_lines for the rest) and inserted by :LlmAccept.
-- Requests are made after a pause in typing (debounced), one in flight per buffer: a newer one cancels the older
-- with $/cancelRequest. Which server answers is the sidecar's choice: the `completion` setting or the customLlms
-- entry whose modelType is Completion, both sent as configuration by init.lua. See :help llm_sidecar-completion.
local C = {}

local api = vim.api
local uv = vim.uv or vim.loop
local levels = vim.log.levels
local Log = require('llm_sidecar.log')

local NS = api.nvim_create_namespace('llm_sidecar_ghost')
local HL = 'LlmSidecarGhostText'
local CANCELLED = -32800

-- Lines of context sent around the cursor at most (the sidecar's fim settings cut further).
local MAX_PREFIX_LINES = 1500
local MAX_SUFFIX_LINES = 500

local opts = { enabled = false, debounce_ms = 300 }

local bufs = {} -- buffer -> { req = {id, client, row, col, tick}, shown = suggestion }
local timer = nil -- the debounce timer (one: only the current buffer is typed in)
local error_shown = false -- the first completion error was notified; later ones go to the log
local configured = nil -- what configure() saw last (a change resets error_shown)
local inline_pos = vim.fn.has('nvim-0.10') == 1 and 'inline' or nil
-- Counts since start, for :checkhealth and tests: requests sent, answers, answers from the sidecar's cache,
-- suggestions shown, suggestions removed by an edit that did not match.
local stats = { requests = 0, answers = 0, cached = 0, shown = 0, cleared = 0 }

local function main()
  return require('llm_sidecar')
end

local function buf_state(buf)
  bufs[buf] = bufs[buf] or {}
  return bufs[buf]
end

local function set_status(buf, status)
  if api.nvim_buf_is_valid(buf) then api.nvim_buf_set_var(buf, 'llm_sidecar_completion_status', status) end
end

-- (row 1-based, byte column 0-based) where a completion goes: the cursor in Insert mode; in Normal mode before the
-- character under the cursor, or after it when it is the last one of the line.
local function anchor()
  local pos = api.nvim_win_get_cursor(0)
  local row, col = pos[1], pos[2]
  local mode = api.nvim_get_mode().mode
  if mode:sub(1, 1) ~= 'i' then
    local line = api.nvim_get_current_line()
    -- the byte after the character under the cursor (UTF-8: skip its continuation bytes)
    local after = col + 1
    while after < #line and line:byte(after + 1) >= 0x80 and line:byte(after + 1) < 0xC0 do after = after + 1 end
    if after >= #line then col = #line end
  end
  return row, col, mode:sub(1, 1)
end

---------------------------------------------------------------------------------------------------
-- The ghost text.

local function clear(buf)
  local st = bufs[buf]
  if st then st.shown = nil end
  if api.nvim_buf_is_valid(buf) then api.nvim_buf_clear_namespace(buf, NS, 0, -1) end
end

local function render(buf, s)
  api.nvim_buf_clear_namespace(buf, NS, 0, -1)
  local lines = Log.split_lines(s.text)
  local line = api.nvim_buf_get_lines(buf, s.row - 1, s.row, false)[1] or ''
  local mark = { virt_text = { { lines[1], HL } }, hl_mode = 'combine' }
  -- Before 0.10 there is no inline virtual text: at the end of the line the text is drawn over the empty cells
  -- after it; in the middle of a line it goes after the line's end rather than over the text.
  mark.virt_text_pos = inline_pos or (s.col >= #line and 'overlay' or 'eol')
  if #lines > 1 then
    mark.virt_lines = {}
    for i = 2, #lines do mark.virt_lines[#mark.virt_lines + 1] = { { lines[i], HL } } end
  end
  api.nvim_buf_set_extmark(buf, NS, s.row - 1, s.col, mark)
end

local revalidate -- below: it needs render()

-- Edits made any way (typing, commands, the API) are seen through on_lines; autocommands only see some.
local function attach(buf, st)
  if st.attached then return end
  st.attached = api.nvim_buf_attach(buf, false, {
    on_lines = function()
      vim.schedule(function() revalidate(buf) end)
    end,
    on_detach = function() st.attached = false end,
  })
end

local function show(buf, s)
  stats.shown = stats.shown + 1
  local st = buf_state(buf)
  st.shown = s
  attach(buf, st)
  render(buf, s)
  set_status(buf, 'shown')
end

-- After an edit or a cursor move: keeps the suggestion when the user typed its first characters (the rest stays
-- shown), else removes it. Safe to call more than once for the same change.
function revalidate(buf)
  local st = bufs[buf]
  local s = st and st.shown
  if not s then return end
  local tick = api.nvim_buf_get_changedtick(buf)
  local row, col, mode = anchor()
  if tick == s.tick and row == s.row and col == s.col then return end
  if mode == 'i' and s.mode == 'i' and row == s.row and col > s.col then
    local line = api.nvim_buf_get_lines(buf, row - 1, row, false)[1] or ''
    local typed = line:sub(s.col + 1, col)
    if line:sub(1, s.col) == s.before and line:sub(col + 1) == s.after and #typed < #s.text
      and s.text:sub(1, #typed) == typed then
      s.text, s.col, s.before, s.tick = s.text:sub(#typed + 1), col, line:sub(1, col), tick
      render(buf, s)
      return
    end
  end
  clear(buf)
  stats.cleared = stats.cleared + 1
  set_status(buf, 'cleared')
end

---------------------------------------------------------------------------------------------------
-- Requests.

local function cancel_request(buf)
  local st = bufs[buf]
  local req = st and st.req
  if not req then return end
  st.req = nil
  pcall(req.client.notify, '$/cancelRequest', { id = req.id })
end

local function report_error(buf, err)
  local msg = main().format_error(err)
  Log.client('completion failed: ' .. msg:gsub('\n', ' | '))
  set_status(buf, 'error')
  if error_shown then return end
  error_shown = true
  main().notify(msg .. '\n(completion errors are only logged from now on, until the settings change: :LlmLog)',
    levels.ERROR)
end

-- Asks for a completion at the cursor of the current buffer. manual: from :LlmComplete (any mode).
local function request(manual)
  local buf = api.nvim_get_current_buf()
  local row, col, mode = anchor()
  if not manual and (mode ~= 'i' or vim.fn.pumvisible() == 1) then return end
  local client = main().client()
  if not client then return end
  cancel_request(buf)
  local first = math.max(0, row - 1 - MAX_PREFIX_LINES)
  local before = api.nvim_buf_get_lines(buf, first, row, false)
  local after = api.nvim_buf_get_lines(buf, row - 1, row + MAX_SUFFIX_LINES, false)
  local line = before[#before] or ''
  before[#before] = line:sub(1, col)
  after[1] = line:sub(col + 1)
  local params = { prefix = table.concat(before, '\n'), suffix = table.concat(after, '\n') }
  if manual then params.invoked = true end -- asked for: a fresh answer, not the cache's
  if vim.bo[buf].filetype ~= '' then params.language = vim.bo[buf].filetype end
  local name = api.nvim_buf_get_name(buf)
  if name ~= '' then params.path = name end
  local tick = api.nvim_buf_get_changedtick(buf)
  local req = { client = client, row = row, col = col, tick = tick }
  local ok, id = client.request('llm/inlineCompletion', params, function(err, result)
    vim.schedule(function()
      local st = bufs[buf]
      if not st or st.req ~= req then return end -- superseded or cancelled
      st.req = nil
      stats.answers = stats.answers + 1
      if err then
        if err.code == CANCELLED then return end
        report_error(buf, err)
        return
      end
      if type(result) == 'table' and result.cached == true then stats.cached = stats.cached + 1 end
      local item = type(result) == 'table' and type(result.items) == 'table' and result.items[1]
      local text = type(item) == 'table' and item.insertText
      if type(text) ~= 'string' or text == '' then
        set_status(buf, 'empty')
        return
      end
      -- Only where it was asked for: the buffer, the cursor and the text are as they were.
      if not api.nvim_buf_is_valid(buf) or api.nvim_get_current_buf() ~= buf then return end
      local r, c, m = anchor()
      if api.nvim_buf_get_changedtick(buf) ~= tick or r ~= row or c ~= col then return end
      if vim.fn.pumvisible() == 1 or m:match('^[vVsS\22\19]') then return end
      local cur = api.nvim_buf_get_lines(buf, row - 1, row, false)[1] or ''
      show(buf, { text = text, row = row, col = col, tick = tick, mode = m, before = cur:sub(1, col),
        after = cur:sub(col + 1) })
    end)
  end)
  if not ok then return end
  req.id = id
  stats.requests = stats.requests + 1
  buf_state(buf).req = req
  set_status(buf, 'requesting')
end

local function stop_timer()
  if timer then timer:stop() end
end

-- Restarts the debounce: a request once typing has paused for debounce_ms.
local function debounce()
  if not opts.enabled then return end
  timer = timer or uv.new_timer()
  timer:stop()
  timer:start(opts.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.bo.buftype == '' then request(false) end
  end))
end

---------------------------------------------------------------------------------------------------
-- Autocommands.

local function on_change()
  local buf = api.nvim_get_current_buf()
  revalidate(buf)
  if vim.fn.pumvisible() == 1 then
    clear(buf)
    return
  end
  debounce()
end

local function on_leave()
  local buf = api.nvim_get_current_buf()
  stop_timer()
  cancel_request(buf)
  clear(buf)
end

local function set_autocmds()
  local group = api.nvim_create_augroup('llm_sidecar_completion', { clear = true })
  local function au(events, fn)
    api.nvim_create_autocmd(events, { group = group, callback = function() fn() end })
  end
  -- Ghost text follows edits in any mode; automatic requests only while typing.
  au({ 'TextChangedI', 'CursorMovedI' }, on_change)
  au({ 'TextChanged', 'CursorMoved' }, function() revalidate(api.nvim_get_current_buf()) end)
  au({ 'TextChangedP', 'CompleteChanged' }, function()
    local buf = api.nvim_get_current_buf()
    stop_timer()
    cancel_request(buf)
    clear(buf)
  end)
  au({ 'InsertLeave', 'BufLeave' }, on_leave)
  au({ 'BufWipeout' }, function() bufs[tonumber(vim.fn.expand('<abuf>'))] = nil end)
  au({ 'ColorScheme' }, function() api.nvim_set_hl(0, HL, { link = 'Comment', default = true }) end)
  api.nvim_set_hl(0, HL, { link = 'Comment', default = true })
end

---------------------------------------------------------------------------------------------------
-- Public API (require('llm_sidecar.completion')).

-- True when a customLlms list (tables or AutoDev's JSON string) has an entry whose modelType is Completion.
local function has_completion_entry(list)
  if type(list) == 'string' then
    local ok, t = pcall(vim.fn.json_decode, list)
    list = ok and t or nil
  end
  if type(list) ~= 'table' then return false end
  for _, e in ipairs(list) do
    if type(e) == 'table' and type(e.modelType) == 'string' and e.modelType:lower() == 'completion' then return true end
  end
  return false
end

--- Called by setup(): c is its `completion` table. Automatic requests are on when c.enabled is true, or when it
--- is not given and a completion server is configured (c.settings / c.llm / c.profile, or a customLlms entry
--- whose modelType is Completion).
function C.configure(c)
  local config = main().config()
  c = type(c) == 'table' and c or {}
  local now = { c, config.customLlms, config.profiles }
  if not vim.deep_equal(now, configured) then error_shown = false end
  configured = vim.deepcopy(now)
  local any = c.settings ~= nil or c.llm ~= nil or c.profile ~= nil or has_completion_entry(config.customLlms)
  opts.enabled = c.enabled == true or (c.enabled == nil and any)
  opts.debounce_ms = tonumber(c.debounce_ms) or 300
  set_autocmds()
end

--- :LlmComplete: a completion at the cursor now (whether or not automatic requests are on).
function C.complete()
  stop_timer()
  request(true)
end

--- True when a suggestion is shown in the current buffer.
function C.visible()
  local st = bufs[api.nvim_get_current_buf()]
  return st ~= nil and st.shown ~= nil
end

--- The suggestion shown in the current buffer (its remaining text), or nil.
function C.suggestion()
  local st = bufs[api.nvim_get_current_buf()]
  return st and st.shown and st.shown.text or nil
end

--- :LlmAccept: inserts the shown suggestion at its place (one change: one undo step) and puts the cursor after
--- it. Returns false when none is shown.
function C.accept()
  local buf = api.nvim_get_current_buf()
  revalidate(buf)
  local st = bufs[buf]
  local s = st and st.shown
  if not s then return false end
  clear(buf)
  local lines = Log.split_lines(s.text)
  -- Its own undo step: setting 'undolevels' to itself closes the undo block before and after the change.
  local function undo_break() vim.bo[buf].undolevels = vim.bo[buf].undolevels end
  undo_break()
  api.nvim_buf_set_text(buf, s.row - 1, s.col, s.row - 1, s.col, lines)
  undo_break()
  local last_row = s.row + #lines - 1
  local last_col = #lines == 1 and (s.col + #lines[1]) or #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row, last_col })
  set_status(buf, 'accepted')
  return true
end

--- Removes the suggestion and cancels the request of the current buffer.
function C.dismiss()
  on_leave()
end

--- Turns automatic requests on or off (nil: toggles). Returns the new state.
function C.enable(on)
  if on == nil then on = not opts.enabled end
  opts.enabled = on
  if not on then on_leave() end
  return on
end

--- Counters since start: requests, answers, cached (answers from the sidecar's cache), shown, cleared.
function C.stats()
  return vim.deepcopy(stats)
end

--- Whether automatic requests are on, and the debounce.
function C.options()
  return vim.deepcopy(opts)
end

return C
