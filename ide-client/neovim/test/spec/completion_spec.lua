-- Ghost-text completion in the real editor, against the real sidecar and the mock's fill-in-the-middle scenarios.
-- Typing is driven in a second Neovim (--embed) through nvim_input, so its main loop sees keys as a user's.
local H = require('helpers')
local llm = require('llm_sidecar')
local completion = require('llm_sidecar.completion')
local ERROR = vim.log.levels.ERROR
local api = vim.api

local NS = api.nvim_create_namespace('llm_sidecar_ghost')

-- The ghost text of a buffer: { row, col, first = virt_text, rest = { virt_lines } } or nil.
local function ghost(buf)
  local marks = api.nvim_buf_get_extmarks(buf or 0, NS, 0, -1, { details = true })
  if #marks == 0 then return nil end
  assert.are.equal(1, #marks, 'one extmark')
  local m = marks[1]
  local d = m[4]
  local g = { row = m[2], col = m[3], first = d.virt_text and d.virt_text[1][1], rest = {} }
  for _, l in ipairs(d.virt_lines or {}) do g.rest[#g.rest + 1] = l[1][1] end
  return g
end

local function completion_status(buf)
  local ok, v = pcall(api.nvim_buf_get_var, buf or 0, 'llm_sidecar_completion_status')
  return ok and v or nil
end

-- :LlmComplete and wait for the answer (ghost text shown, or another end).
local function complete_and_wait(want)
  local before = completion.stats().answers
  vim.cmd('LlmComplete')
  H.wait('the completion answer', function() return completion.stats().answers > before end)
  if want then assert.are.equal(want, completion_status(), vim.inspect(H.notified)) end
end

local function scratch(lines)
  vim.cmd('enew!')
  vim.bo.buftype = 'nofile'
  api.nvim_buf_set_lines(0, 0, -1, false, lines)
  return api.nvim_get_current_buf()
end

describe('ghost-text completion in Neovim ' .. tostring(vim.version().major) .. '.' .. tostring(vim.version().minor), function()
  local seen

  before_each(function()
    H.start_mock()
    seen = H.capture_notify()
    vim.cmd('silent! only')
  end)

  after_each(function()
    completion.dismiss()
    H.restore_notify()
    H.stop_mock()
  end)

  teardown(function()
    llm.stop()
  end)

  it(':LlmComplete shows the suggestion at the cursor; the server got the text around it (CJK, emoji)', function()
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fim') } })
    local before = '    s = "日本🎌" + '
    local buf = scratch({ '# 你好 👋🏽 — 日本', 'def add(a, b):', before .. 'rest', '', 'print(add(1, 2))' })
    api.nvim_win_set_cursor(0, { 3, #before }) -- on the "r" of "rest": the completion goes before it
    complete_and_wait('shown')
    local g = ghost(buf)
    assert.are.same({ row = 2, col = #before, first = 'total = a + b', rest = { '    return total' } }, g)
    assert.are.equal('total = a + b\n    return total', completion.suggestion())
    local req = H.events_of('fim', 'request')
    assert.are.equal(1, #req)
    assert.are.equal('# 你好 👋🏽 — 日本\ndef add(a, b):\n' .. before, req[1].body.prompt)
    assert.are.equal('rest\n\nprint(add(1, 2))', req[1].body.suffix)
    assert.are.equal('mock-coder', req[1].body.model)
    assert.are.equal('Bearer sk-fim-token', req[1].headers.authorization)
    -- the buffer itself is unchanged
    assert.are.equal(before .. 'rest', api.nvim_buf_get_lines(buf, 2, 3, false)[1])
    assert.is_nil(H.find(seen, ERROR, ''))
  end)

  it(':LlmAccept inserts the suggestion exactly, over two lines, as one undo step', function()
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fim') } })
    local buf = scratch({ 'def add(a, b):', '    ', 'print(add(1, 2))' })
    api.nvim_win_set_cursor(0, { 2, 3 }) -- Normal mode, on the last character: the completion goes after it
    complete_and_wait('shown')
    assert.are.same({ row = 1, col = 4, first = 'total = a + b', rest = { '    return total' } }, ghost(buf))
    vim.cmd('LlmAccept')
    assert.are.same({ 'def add(a, b):', '    total = a + b', '    return total', 'print(add(1, 2))' },
      api.nvim_buf_get_lines(buf, 0, -1, false))
    assert.are.equal(3, api.nvim_win_get_cursor(0)[1])
    assert.is_nil(ghost(buf))
    assert.is_false(completion.visible())
    vim.cmd('silent undo')
    assert.are.same({ 'def add(a, b):', '    ', 'print(add(1, 2))' }, api.nvim_buf_get_lines(buf, 0, -1, false))
  end)

  it('an edit that does not match the suggestion removes it', function()
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fim') } })
    local buf = scratch({ 'def add(a, b):', '    ' })
    api.nvim_win_set_cursor(0, { 2, 3 })
    complete_and_wait('shown')
    assert.is_not_nil(ghost(buf))
    api.nvim_buf_set_text(buf, 1, 4, 1, 4, { 'z' })
    H.wait('the ghost text to go', function() return ghost(buf) == nil end)
    assert.is_false(completion.visible())
    assert.are.equal('cleared', completion_status(buf))
  end)

  it('a newer request cancels the older one: the server sees its connection closed', function()
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fimslow') } })
    local buf = scratch({ 'def add(a, b):', '    ' })
    local dir = vim.fn.tempname()
    api.nvim_buf_set_name(buf, dir .. '/first.py')
    api.nvim_win_set_cursor(0, { 2, 3 })
    vim.cmd('LlmComplete')
    H.wait('the slow request to reach the server', function() return #H.events_of('fimslow', 'request') == 1 end)
    assert.are.equal('requesting', completion_status(buf))
    -- Another path: the sidecar, which replaces a request for the same document by itself, sees two documents,
    -- so only the client's $/cancelRequest closes the first request.
    api.nvim_buf_set_name(buf, dir .. '/second.py')
    -- the settings change (sent to the running sidecar) and the next request replaces the slow one
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fim') } })
    complete_and_wait('shown')
    H.wait('the server to see the slow request closed', function()
      return #H.events_of('fimslow', 'disconnected') == 1
    end)
    assert.are.equal('total = a + b', ghost(buf).first)
    assert.is_nil(H.find(seen, ERROR, ''))
  end)

  it('with a customLlms list, the Completion entry serves ghost text and the Default entry chat', function()
    local function entries(fim_scenario)
      return {
        { name = 'Chat', url = string.format('http://127.0.0.1:%d/hello/v1/chat/completions', H.mock.port),
          auth = { type = 'Bearer', token = 'sk-chat' }, modelType = 'Default',
          requestFormat = '{"customFields": {"model": "chat-model", "stream": true}}',
          responseFormat = '$.choices[0].delta.content' },
        { name = 'Coder', url = string.format('http://127.0.0.1:%d/%s/v1/completions', H.mock.port, fim_scenario),
          auth = { type = 'Bearer', token = 'sk-coder' }, modelType = 'Completion',
          requestFormat = '{"customFields": {"model": "coder-model", "stream": true}}',
          responseFormat = '$.choices[0].text', fim = { multiline = true } },
      }
    end
    llm.stop()
    llm.setup({ cmd = { H.bin }, customLlms = entries('fim') })
    assert.is_true(completion.options().enabled, 'a Completion entry turns automatic completion on')
    vim.cmd('LlmAsk hi')
    local answer = H.answer_buffers()[#H.answer_buffers()]
    H.wait_status(answer, 'done')
    assert.are.equal('Hello, world!', H.text(answer))
    local chat = H.events_of('hello', 'request')
    assert.are.equal('Bearer sk-chat', chat[1].headers.authorization)
    assert.are.equal('chat-model', chat[1].body.model)

    local buf = scratch({ 'def add(a, b):', '    ' })
    api.nvim_win_set_cursor(0, { 2, 3 })
    complete_and_wait('shown')
    assert.are.equal('total = a + b', ghost(buf).first)
    local fim = H.events_of('fim', 'request')
    assert.are.equal('Bearer sk-coder', fim[1].headers.authorization)
    assert.are.equal('coder-model', fim[1].body.model)

    -- a changed list reaches the running sidecar (workspace/didChangeConfiguration)
    local pids = H.sidecar_pids()
    llm.setup({ cmd = { H.bin }, customLlms = entries('fimunicode') })
    complete_and_wait('shown')
    assert.are.equal('print("你好 👋🏽")', ghost(buf).first)
    assert.are.same(pids, H.sidecar_pids())
    assert.is_nil(H.find(seen, ERROR, ''))
  end)

  it('completion = { llm = name } picks a customLlms entry for ghost text', function()
    llm.setup({ cmd = { H.bin }, completion = { llm = 'Coder' }, customLlms = {
      { name = 'Chat', url = string.format('http://127.0.0.1:%d/hello/v1/chat/completions', H.mock.port),
        modelType = 'Default', responseFormat = '$.choices[0].delta.content' },
      { name = 'Coder', url = string.format('http://127.0.0.1:%d/fimunicode/v1/completions', H.mock.port),
        requestFormat = '{"customFields": {"model": "coder-model"}}', responseFormat = '$.choices[0].text' },
    } })
    local buf = scratch({ 'x = 1', '' })
    api.nvim_win_set_cursor(0, { 2, 0 })
    complete_and_wait('shown')
    assert.are.equal('print("你好 👋🏽")', ghost(buf).first)
    assert.are.equal('coder-model', H.events_of('fimunicode', 'request')[1].body.model)
    assert.are.equal(0, #H.events_of('hello', 'request'))
  end)

  it('shows a completion error once, then only logs it, until the settings change', function()
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fimerror') } })
    local buf = scratch({ 'def add(a, b):', '    ' })
    api.nvim_win_set_cursor(0, { 2, 3 })
    complete_and_wait('error')
    complete_and_wait('error')
    complete_and_wait('error')
    assert.are.equal(3, #H.events_of('fimerror', 'request'))
    assert.are.equal(1, H.count(seen, ERROR, 'FIM backend exploded'))
    assert.is_nil(ghost(buf))
    local logged = select(2, H.text(llm.log_buffer()):gsub('completion failed: [^\n]*FIM backend exploded', ''))
    assert.are.equal(3, logged)
    -- other settings: the next failure is shown again
    llm.setup({ cmd = { H.bin }, completion = { settings = H.fim_settings('fimerror', { model = 'other' }) } })
    complete_and_wait('error')
    assert.are.equal(2, H.count(seen, ERROR, 'FIM backend exploded'))
  end)

  it(':checkhealth llm_sidecar runs the binary and tests the chat and completion connections', function()
    llm.setup({ cmd = { H.bin }, settings = H.settings('hello'), completion = { settings = H.fim_settings('fim') } })
    vim.cmd('checkhealth llm_sidecar')
    local text = H.text(0)
    vim.cmd('bwipeout!')
    assert.is_truthy(text:find('llm-sidecar 0.1', 1, true), text)
    assert.is_truthy(text:find('chat: HTTP 200', 1, true), text)
    assert.is_truthy(text:find('completion: "total = a + b', 1, true), text)
    assert.is_truthy(text:find('automatic completion: on (debounce 300 ms)', 1, true), text)
    assert.is_nil(text:find('ERROR', 1, true), text)
    assert.are.equal(1, #H.events_of('hello', 'request'))
    assert.are.equal(1, #H.events_of('fim', 'request'))
  end)

  it('has its :help tags', function()
    local dir = vim.fn.tempname()
    vim.fn.mkdir(dir .. '/doc', 'p')
    vim.fn.writefile(vim.fn.readfile(H.root .. '/doc/llm_sidecar.txt'), dir .. '/doc/llm_sidecar.txt')
    vim.cmd('helptags ' .. dir .. '/doc')
    vim.opt.runtimepath:append(dir)
    for _, tag in ipairs({ 'llm_sidecar-completion', ':LlmComplete', ':LlmAccept', '<Plug>(llm-accept)',
      'llm_sidecar-keys', 'llm_sidecar-customLlms', 'llm_sidecar-health' }) do
      vim.cmd('help ' .. tag)
      assert.are.equal('llm_sidecar.txt', vim.fn.expand('%:t'))
      vim.cmd('close')
    end
  end)

  describe('while typing (a second Neovim driven with nvim_input)', function()
    local chan

    local function lua(code, ...)
      return vim.rpcrequest(chan, 'nvim_exec_lua', code, { ... })
    end

    local function child_state()
      return lua([[
        local c = require('llm_sidecar.completion')
        local marks = vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace('llm_sidecar_ghost'), 0, -1, {})
        return { mode = vim.api.nvim_get_mode().mode, lines = vim.api.nvim_buf_get_lines(0, 0, -1, false),
          cursor = vim.api.nvim_win_get_cursor(0), suggestion = c.suggestion() or vim.NIL, stats = c.stats(),
          col = marks[1] and marks[1][3] or vim.NIL }
      ]])
    end

    before_each(function()
      chan = vim.fn.jobstart({ vim.v.progpath, '--embed', '--headless', '-u', 'NONE', '-i', 'NONE', '-n' }, { rpc = true })
      assert(chan > 0, 'could not start a second Neovim')
      lua([[
        local root, bin, settings = ...
        vim.opt.runtimepath:prepend(root)
        vim.cmd('runtime plugin/llm_sidecar.lua')
        require('llm_sidecar').setup({ cmd = { bin }, completion = { settings = settings, debounce_ms = 150 } })
        vim.keymap.set('i', '<C-l>', '<Plug>(llm-accept)')
        vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'def add(a, b):' })
      ]], H.root, H.bin, H.fim_settings('fim'))
    end)

    after_each(function()
      pcall(lua, "require('llm_sidecar').stop()")
      vim.fn.jobstop(chan)
    end)

    it('shows the suggestion after a pause; typing its start keeps the rest; another key removes it; '
      .. '<Plug>(llm-accept) inserts it as one undo step', function()
      vim.rpcrequest(chan, 'nvim_input', 'Go    ')
      local st
      H.wait('ghost text after the pause', function()
        st = child_state()
        return st.suggestion ~= vim.NIL
      end)
      assert.are.equal('i', st.mode)
      assert.are.equal('total = a + b\n    return total', st.suggestion)
      assert.are.equal(4, st.col)
      local req = H.events_of('fim', 'request')
      assert.are.equal(1, #req)
      assert.are.equal('def add(a, b):\n    ', req[1].body.prompt)
      assert.are.equal('', req[1].body.suffix)

      -- typing along the suggestion: the rest stays, and the next request is answered by the sidecar's cache
      local answers = st.stats.answers
      vim.rpcrequest(chan, 'nvim_input', 'tot')
      H.wait('the request after typing', function()
        st = child_state()
        return st.stats.answers > answers
      end)
      assert.are.equal('al = a + b\n    return total', st.suggestion)
      assert.are.equal(7, st.col)
      assert.are.equal(1, st.stats.cached)
      assert.are.equal(1, #H.events_of('fim', 'request'))

      -- a key that does not match removes it at once (a new request follows the pause)
      local cleared = st.stats.cleared
      vim.rpcrequest(chan, 'nvim_input', 'x')
      H.wait('the key to be typed', function()
        st = child_state()
        return st.lines[2] == '    totx'
      end)
      assert.is_true(st.stats.cleared > cleared)
      H.wait('a new suggestion after the pause', function()
        st = child_state()
        return st.suggestion ~= vim.NIL and st.col == 8
      end)

      vim.rpcrequest(chan, 'nvim_input', '<C-l>')
      H.wait('the accepted text', function()
        st = child_state()
        return #st.lines == 3
      end)
      assert.are.same({ 'def add(a, b):', '    totxtotal = a + b', '    return total' }, st.lines)
      assert.are.equal('i', st.mode)
      assert.are.same({ 3, 16 }, st.cursor)
      vim.rpcrequest(chan, 'nvim_input', '<Esc>u')
      H.wait('the undo', function()
        st = child_state()
        return #st.lines == 2
      end)
      assert.are.same({ 'def add(a, b):', '    totx' }, st.lines)
    end)
  end)
end)
