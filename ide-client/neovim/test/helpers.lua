-- Shared by the specs: the mock LLM server, settings pointing at it, notification capture, waiting on conditions.
local H = {}

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
H.root = vim.fn.fnamemodify(here, ':h')
H.mock_script = vim.fn.fnamemodify(H.root .. '/../mock-llm/mock_llm.py', ':p')
H.bin = os.getenv('LLM_SIDECAR_BIN') or vim.fn.fnamemodify(H.root .. '/../../target/release/llm-sidecar', ':p')

-- Generous: the machine is shared and has two cores.
H.TIMEOUT = 20000

function H.wait(what, cond, timeout)
  local ok = vim.wait(timeout or H.TIMEOUT, cond, 20)
  assert(ok, 'timed out waiting for ' .. what)
end

--- Starts the mock LLM server (python3 mock_llm.py) with a fresh state folder; returns {port, dir, job}.
function H.start_mock()
  local dir = vim.fn.tempname() .. '-mock-llm'
  vim.fn.mkdir(dir, 'p')
  local job = vim.fn.jobstart({ 'python3', H.mock_script, '--state-dir', dir, '--max-seconds', '600' })
  assert(job > 0, 'could not start python3 ' .. H.mock_script)
  H.wait('the mock LLM server to listen', function() return vim.fn.filereadable(dir .. '/port') == 1 end)
  local port = tonumber(vim.fn.readfile(dir .. '/port')[1])
  H.mock = { port = port, dir = dir, job = job }
  return H.mock
end

function H.stop_mock()
  if H.mock then
    vim.fn.jobstop(H.mock.job)
    vim.fn.jobwait({ H.mock.job }, 5000)
    vim.fn.delete(H.mock.dir, 'rf')
    H.mock = nil
  end
end

--- The mock's events (one table per line of events.jsonl).
function H.events()
  local file = H.mock.dir .. '/events.jsonl'
  if vim.fn.filereadable(file) == 0 then return {} end
  local out = {}
  for _, line in ipairs(vim.fn.readfile(file)) do
    if line ~= '' then out[#out + 1] = vim.fn.json_decode(line) end
  end
  return out
end

function H.events_of(scenario, event)
  local out = {}
  for _, e in ipairs(H.events()) do
    if e.scenario == scenario and (event == nil or e.event == event) then out[#out + 1] = e end
  end
  return out
end

--- AutoDev v1 settings for a scenario of the mock, starting from a preset.
function H.settings(scenario, extra)
  local s = {
    preset = 'deepseek',
    customEngineServer = string.format('http://127.0.0.1:%d/%s/v1/chat/completions', H.mock.port, scenario),
    customEngineToken = 'sk-test-token',
    retry = { maxRetries = 0 },
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

--- Settings without any token, for a scenario of the mock (the tests add the key source they test).
function H.settings_without_token(scenario, extra)
  local s = H.settings(scenario)
  s.customEngineToken = nil
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

--- Code-completion settings for a fim* scenario of the mock (OpenAI /v1/completions shape: choices[0].text).
function H.fim_settings(scenario, extra)
  local s = {
    customEngineServer = string.format('http://127.0.0.1:%d/%s/v1/completions', H.mock.port, scenario),
    customEngineToken = 'sk-fim-token',
    customEngineResponseFormat = '$.choices[0].text',
    customEngineRequestFormat = { customFields = { model = 'mock-coder', stream = true } },
    fim = { multiline = true },
    retry = { maxRetries = 0 },
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

--- The text of a file ('' when it does not exist).
function H.read_file(path)
  local f = io.open(path, 'rb')
  if not f then return '' end
  local text = f:read('*a')
  f:close()
  return text
end

--- Replaces vim.notify with a recorder; returns the list of {msg, level}.
function H.capture_notify()
  local seen = {}
  H.real_notify = H.real_notify or vim.notify
  vim.notify = function(msg, level) seen[#seen + 1] = { msg = msg, level = level } end
  H.notified = seen
  return seen
end

function H.restore_notify()
  if H.real_notify then vim.notify = H.real_notify end
end

--- How many notifications at that level contain needle.
function H.count(seen, level, needle)
  local n = 0
  for _, m in ipairs(seen) do
    if m.level == level and tostring(m.msg):find(needle, 1, true) then n = n + 1 end
  end
  return n
end

function H.find(seen, level, needle)
  for _, n in ipairs(seen) do
    if n.level == level and tostring(n.msg):find(needle, 1, true) then return n end
  end
end

function H.text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

function H.status(buf)
  local ok, v = pcall(vim.api.nvim_buf_get_var, buf, 'llm_sidecar_status')
  return ok and v or nil
end

function H.wait_status(buf, want)
  -- An answer that ended otherwise fails at once, with what was notified.
  local ended = function() return H.status(buf) == want or (want ~= 'streaming' and H.status(buf) ~= 'streaming') end
  H.wait('status ' .. want .. ' of buffer ' .. buf, ended)
  assert(H.status(buf) == want, string.format('buffer %d: status %s, not %s; notified: %s', buf,
    tostring(H.status(buf)), want, vim.inspect(H.notified or {})))
end

--- The pids of this Neovim's children that run the sidecar binary.
function H.sidecar_pids()
  local out = {}
  for _, pid in ipairs(vim.api.nvim_get_proc_children(vim.fn.getpid())) do
    local p = vim.api.nvim_get_proc(pid)
    if p and p.name and p.name:find('llm%-sidecar') then out[#out + 1] = pid end
  end
  return out
end

function H.alive(pid)
  return vim.api.nvim_get_proc(pid) ~= nil
end

--- The buffers of answers (llm-sidecar://N), in creation order.
function H.answer_buffers()
  local out = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b):match('^llm%-sidecar://%d+$') then out[#out + 1] = b end
  end
  return out
end

return H
