-- The log buffer (llm-sidecar://log): the sidecar's stderr, read through a FIFO, and the client's own lines.
local L = {}

local uv = vim.uv or vim.loop
local api = vim.api

L.max_lines = 5000 -- the log buffer keeps the last lines only (setup's log_max_lines)

local log_buf = nil

--- Splits on '\n', keeping empty pieces (vim.split's signature differs between 0.7 and 0.11).
function L.split_lines(text)
  local out, start = {}, 1
  while true do
    local i = string.find(text, '\n', start, true)
    if not i then
      out[#out + 1] = string.sub(text, start)
      return out
    end
    out[#out + 1] = string.sub(text, start, i - 1)
    start = i + 1
  end
end

--- The log buffer's number (created when needed).
function L.buffer()
  if log_buf and api.nvim_buf_is_valid(log_buf) then return log_buf end
  local buf = vim.fn.bufnr('llm-sidecar://log')
  if buf == -1 or not api.nvim_buf_is_valid(buf) then
    buf = api.nvim_create_buf(false, true)
    api.nvim_buf_set_name(buf, 'llm-sidecar://log')
  end
  vim.bo[buf].filetype = 'log'
  log_buf = buf
  return buf
end

--- Appends lines (main loop only).
function L.lines(lines)
  if #lines == 0 then return end
  local buf = L.buffer()
  local n = api.nvim_buf_line_count(buf)
  local first = api.nvim_buf_get_lines(buf, 0, 1, false)[1]
  if n == 1 and first == '' then
    api.nvim_buf_set_lines(buf, 0, 1, false, lines)
  else
    api.nvim_buf_set_lines(buf, n, n, false, lines)
  end
  n = api.nvim_buf_line_count(buf)
  if n > L.max_lines then
    api.nvim_buf_set_lines(buf, 0, n - L.max_lines, false, {})
  end
end

--- Writes a line of the client's own (from any context).
function L.client(msg)
  local function write() L.lines({ os.date('!%Y-%m-%dT%H:%M:%SZ') .. ' [client] ' .. msg }) end
  if vim.in_fast_event() then vim.schedule(write) else write() end
end

-- stderr is read through a FIFO: vim.lsp.rpc reads the child's own stderr pipe itself and only writes it to the
-- LSP log file, so the command is wrapped in `sh -c 'exec 2>FIFO; exec "$@"'` and the FIFO is read here.
function L.open_stderr_fifo()
  if vim.fn.has('unix') ~= 1 or vim.fn.executable('mkfifo') ~= 1 then return nil end
  local path = vim.fn.tempname() .. '-llm-sidecar-stderr'
  vim.fn.system({ 'mkfifo', '-m', '600', path })
  if vim.v.shell_error ~= 0 then return nil end
  -- Read and write: the FIFO never reports end-of-file before the child opens it, and opening does not block.
  local fd = uv.fs_open(path, 'r+', 384)
  if not fd then
    os.remove(path)
    return nil
  end
  local pipe = uv.new_pipe(false)
  pipe:open(fd)
  local s = { pipe = pipe, path = path, partial = '' }
  pipe:read_start(function(err, data)
    if err or not data then return end
    local text = s.partial .. data
    local lines = L.split_lines(text)
    s.partial = table.remove(lines)
    if #lines > 0 then
      vim.schedule(function() L.lines(lines) end)
    end
  end)
  return s
end

function L.close_stderr(s)
  if not s then return end
  os.remove(s.path) -- the child opened it long ago; the open pipe stays readable
  -- Late lines are still in the pipe when the process has just exited: read them first.
  local timer = uv.new_timer()
  timer:start(200, 0, function()
    timer:close()
    if not s.pipe:is_closing() then
      s.pipe:read_stop()
      s.pipe:close()
    end
    if s.partial ~= '' then
      local rest = s.partial
      s.partial = ''
      vim.schedule(function() L.lines({ rest }) end)
    end
  end)
end

return L
