-- The Neovim client in the real editor, against the real llm-sidecar binary and the mock LLM server.
local H = require('helpers')
local llm = require('llm_sidecar')
local ERROR, INFO = vim.log.levels.ERROR, vim.log.levels.INFO

local function setup(scenario, extra, more)
  local opts = { cmd = { H.bin }, settings = H.settings(scenario, extra) }
  for k, v in pairs(more or {}) do opts[k] = v end
  llm.setup(opts)
end

-- :LlmAsk in the current window; returns the new answer buffer.
local function ask(cmdline)
  local before = #H.answer_buffers()
  vim.cmd(cmdline)
  local bufs = H.answer_buffers()
  assert.are.equal(before + 1, #bufs, 'one new answer buffer')
  return bufs[#bufs]
end

local function answer_text(buf)
  -- The answer follows the reasoning block (if any), which ends with a line '---'.
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  if lines[1] == 'Reasoning:' then
    for i, l in ipairs(lines) do
      if l == '---' then return table.concat(vim.list_slice(lines, i + 1), '\n') end
    end
  end
  return table.concat(lines, '\n')
end

describe('llm-sidecar in Neovim ' .. tostring(vim.version().major) .. '.' .. tostring(vim.version().minor), function()
  local seen

  before_each(function()
    H.start_mock()
    seen = H.capture_notify()
    vim.cmd('silent! only')
  end)

  after_each(function()
    llm.cancel({ all = true, quiet = true })
    H.restore_notify()
    H.stop_mock()
  end)

  teardown(function()
    llm.stop()
  end)

  it('streams the answer into a scratch buffer in a split, CJK and emoji intact', function()
    setup('unicode')
    local windows = #vim.api.nvim_list_wins()
    local changes = 0
    local buf = ask('LlmAsk Say hello in Chinese')
    vim.api.nvim_buf_attach(buf, false, { on_lines = function() changes = changes + 1 end })
    assert.are.equal('streaming', H.status(buf))
    H.wait_status(buf, 'done')
    local expected = '你好，世界！\nEmoji: 👋🏽 👨‍👩‍👧 — done ✓'
    assert.are.equal(expected, H.text(buf))
    assert.is_true(vim.endswith(H.text(buf), ' 👨‍👩‍👧 — done ✓'))
    -- streamed piece by piece (six chunks 20 ms apart), not written once at the end
    assert.is_true(changes >= 3, 'the buffer changed ' .. changes .. ' times')
    assert.are.equal(windows + 1, #vim.api.nvim_list_wins())
    assert.are.equal(buf, vim.api.nvim_win_get_buf(0))
    assert.are.equal('nofile', vim.bo[buf].buftype)
    local req = H.events_of('unicode', 'request')
    assert.are.equal(1, #req)
    assert.are.equal('Say hello in Chinese', req[1].body.messages[#req[1].body.messages].content)
    assert.are.equal('Bearer sk-test-token', req[1].headers.authorization)
    assert.are.equal('deepseek-chat', req[1].body.model)
    assert.is_nil(H.find(seen, ERROR, ''))
  end)

  it('sends the selected lines with the prompt (a range)', function()
    setup('hello')
    vim.cmd('enew')
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'local a = 1', 'local function add(x, y)', '  return x + y', 'end' })
    vim.bo.filetype = 'lua'
    local buf = ask('2,4LlmAsk Explain this')
    H.wait_status(buf, 'done')
    assert.are.equal('Hello, world!', H.text(buf))
    local body = H.events_of('hello', 'request')[1].body
    local content = body.messages[#body.messages].content
    assert.are.equal('Explain this\n\n```lua\nlocal function add(x, y)\n  return x + y\nend\n```', content)
  end)

  it('sends only the characters of a characterwise visual selection', function()
    setup('hello')
    vim.cmd('enew')
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'say héllo wörldé now' })
    vim.cmd('exe "normal! 0wvee\\<Esc>"') -- "héllo wörldé", ending on a two-byte character
    local buf = ask("'<,'>LlmAsk Translate")
    H.wait_status(buf, 'done')
    local body = H.events_of('hello', 'request')[1].body
    assert.are.equal('Translate\n\n```\nhéllo wörldé\n```', body.messages[#body.messages].content)
  end)

  it('takes an AutoDev 2.x customLlms entry as the settings', function()
    llm.setup({
      cmd = { H.bin },
      settings = {
        name = 'Mock',
        url = string.format('http://127.0.0.1:%d/hello/v1/chat/completions', H.mock.port),
        auth = { type = 'Bearer', token = 'sk-entry-token' },
        requestFormat = '{"customFields": {"model": "mock-model", "stream": true}}',
        responseFormat = '$.choices[0].delta.content',
        modelType = 'Default',
      },
    })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'done')
    assert.are.equal('Hello, world!', H.text(buf))
    local req = H.events_of('hello', 'request')[1]
    assert.are.equal('Bearer sk-entry-token', req.headers.authorization)
    assert.are.equal('mock-model', req.body.model)
    assert.are.equal(true, req.body.stream)
  end)

  it('has its :help', function()
    local dir = vim.fn.tempname()
    vim.fn.mkdir(dir .. '/doc', 'p')
    vim.fn.writefile(vim.fn.readfile(H.root .. '/doc/llm_sidecar.txt'), dir .. '/doc/llm_sidecar.txt')
    vim.cmd('helptags ' .. dir .. '/doc')
    vim.opt.runtimepath:append(dir)
    for _, tag in ipairs({ 'llm_sidecar', ':LlmAsk', ':LlmCancel', ':LlmTestConnection', ':LlmPresets', 'llm_sidecar.setup()' }) do
      vim.cmd('help ' .. tag)
      assert.are.equal('llm_sidecar.txt', vim.fn.expand('%:t'))
      vim.cmd('close')
    end
  end)

  it('puts reasoning in a folded block above the answer', function()
    setup('reasoning')
    local buf = ask('LlmAsk What is six times seven?')
    H.wait_status(buf, 'done')
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    assert.are.same({ 'Reasoning:', 'Let me think about it.', 'Step two.', '---', 'The answer is 42.' }, lines)
    assert.are.equal('The answer is 42.', answer_text(buf))
    local win = vim.fn.win_findbuf(buf)[1]
    vim.api.nvim_win_call(win, function()
      assert.are.equal(1, vim.fn.foldclosed(2))
      assert.are.equal(3, vim.fn.foldclosedend(1))
      assert.are.equal(-1, vim.fn.foldclosed(5))
    end)
  end)

  it(':LlmCancel keeps the partial text and closes the connection to the LLM server', function()
    setup('slow')
    local buf = ask('LlmAsk Write a long story')
    H.wait('the first chunks', function() return H.text(buf) == 'partial 答案 🚀' end)
    assert.are.equal('streaming', H.status(buf))
    vim.cmd('LlmCancel')
    assert.are.equal('cancelled', H.status(buf))
    H.wait('the mock server to see the client disconnect', function()
      return #H.events_of('slow', 'disconnected') == 1
    end)
    vim.wait(300)
    assert.are.equal('partial 答案 🚀', H.text(buf))
    assert.are.equal('cancelled', H.status(buf))
    assert.is_nil(H.find(seen, ERROR, ''))
    assert.is_not_nil(H.find(seen, INFO, 'cancelled'))
  end)

  it('cancels the request of an answer buffer that is wiped out', function()
    setup('slow')
    local buf = ask('LlmAsk hi')
    H.wait('the first chunks', function() return H.text(buf) == 'partial 答案 🚀' end)
    vim.cmd('bwipeout! ' .. buf)
    H.wait('the mock server to see the client disconnect', function()
      return #H.events_of('slow', 'disconnected') == 1
    end)
    assert.is_nil(H.find(seen, ERROR, ''))
  end)

  it('notifies an HTTP error at error level with the provider message', function()
    setup('unauthorized')
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'error')
    local n = H.find(seen, ERROR, 'Incorrect API key provided')
    assert.is_not_nil(n, vim.inspect(seen))
    assert.is_truthy(n.msg:find('401', 1, true))
    assert.are.equal('', H.text(buf))
  end)

  it('notifies no_match with the suggested path', function()
    setup('othershape', { customEngineResponseFormat = '$.choices[0].delta.text' })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'error')
    local n = H.find(seen, ERROR, 'suggested path: $.choices[0].delta.content')
    assert.is_not_nil(n, vim.inspect(seen))
    assert.is_truthy(n.msg:find('AlphaBeta', 1, true))
  end)

  it('streams two asks at once into two buffers, through one sidecar process', function()
    setup('slow')
    local first = ask('LlmAsk first')
    H.wait('the first answer to start', function() return H.text(first) == 'partial 答案 🚀' end)
    setup('hare')
    local second = ask('LlmAsk second')
    assert.are_not.equal(first, second)
    H.wait_status(second, 'done')
    assert.are.equal('fast one', H.text(second))
    assert.are.equal('streaming', H.status(first))
    assert.are.equal('partial 答案 🚀', H.text(first))
    assert.are.equal(1, #H.sidecar_pids())
    -- :LlmCancel in the first answer's window cancels that one
    vim.api.nvim_set_current_win(vim.fn.win_findbuf(first)[1])
    vim.cmd('LlmCancel')
    assert.are.equal('cancelled', H.status(first))
    assert.are.equal('done', H.status(second))
    H.wait('the disconnect', function() return #H.events_of('slow', 'disconnected') == 1 end)
  end)

  it(':LlmTestConnection shows the report, and the error when it fails', function()
    setup('hello')
    vim.cmd('LlmTestConnection')
    H.wait('the report', function() return H.find(seen, INFO, 'connection OK') ~= nil end)
    local n = H.find(seen, INFO, 'connection OK')
    assert.is_truthy(n.msg:find('HTTP 200', 1, true))
    assert.is_truthy(n.msg:find('Hello, world!', 1, true))
    setup('unauthorized')
    vim.cmd('LlmTestConnection')
    H.wait('the failure', function() return H.find(seen, ERROR, 'connection test failed') ~= nil end)
    assert.is_truthy(H.find(seen, ERROR, 'connection test failed').msg:find('Incorrect API key provided', 1, true))
  end)

  it(':LlmPresets lists the presets', function()
    setup('hello')
    vim.cmd('LlmPresets')
    H.wait('the presets buffer', function()
      local b = vim.fn.bufnr('llm-sidecar://presets')
      return b ~= -1 and H.text(b):find('deepseek', 1, true) ~= nil
    end)
    local text = H.text(vim.fn.bufnr('llm-sidecar://presets'))
    assert.is_truthy(text:find('\nollama\n', 1, true))
    assert.is_truthy(text:find('https://api.deepseek.com/v1/chat/completions', 1, true))
  end)

  it("writes the sidecar's stderr to the log buffer and stops the process on VimLeavePre", function()
    llm.stop()
    setup('hello', nil, { log_level = 'debug' })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'done')
    local pids = H.sidecar_pids()
    assert.are.equal(1, #pids)
    local log = llm.log_buffer()
    H.wait('sidecar log lines', function() return H.text(log):find('DEBUG', 1, true) ~= nil end)
    -- no secrets in what the sidecar logged
    assert.is_nil(H.text(log):find('sk-test-token', 1, true))
    vim.api.nvim_exec_autocmds('VimLeavePre', {})
    H.wait('the sidecar to exit', function() return not H.alive(pids[1]) end)
    assert.is_false(llm.is_running())
    assert.is_nil(H.find(seen, ERROR, ''))
    -- the next ask starts a new one
    setup('hello')
    local again = ask('LlmAsk again')
    H.wait_status(again, 'done')
    assert.are.equal('Hello, world!', H.text(again))
    local now = H.sidecar_pids()
    assert.are.equal(1, #now)
    assert.are_not.equal(pids[1], now[1])
  end)

  it('reports a sidecar that dies mid-stream, and restarts on the next ask', function()
    setup('slow')
    local buf = ask('LlmAsk hi')
    H.wait('the first chunks', function() return H.text(buf) == 'partial 答案 🚀' end)
    local pid = H.sidecar_pids()[1]
    vim.loop.kill(pid, 9)
    H.wait_status(buf, 'error')
    assert.is_not_nil(H.find(seen, ERROR, 'while answering; the partial text is kept in llm-sidecar://'))
    assert.is_not_nil(H.find(seen, ERROR, 'llm-sidecar exited on signal 9'))
    assert.are.equal('partial 答案 🚀', H.text(buf))
    setup('hello')
    local again = ask('LlmAsk again')
    H.wait_status(again, 'done')
    assert.are.equal('Hello, world!', H.text(again))
  end)

  it('says so when the sidecar binary is missing', function()
    llm.stop()
    llm.setup({ cmd = { '/nonexistent/llm-sidecar' }, settings = H.settings('hello') })
    vim.cmd('LlmAsk hi')
    assert.is_not_nil(H.find(seen, ERROR, '/nonexistent/llm-sidecar'))
  end)
end)
