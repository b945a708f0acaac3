-- Keys stay off the JSON-RPC pipe, so vim.lsp's debug log (lsp.log) never holds them: the sidecar reads them from
-- its environment or a command. test.sh points Neovim's cache and state folders (where lsp.log is) at a temp folder.
local H = require('helpers')
local llm = require('llm_sidecar')
local ERROR, WARN = vim.log.levels.ERROR, vim.log.levels.WARN

local ENV_KEY = 'sk-env-7f3a91c4e2'
local CMD_KEY = 'sk-cmd-5d8b20aa61'
local HEADER_KEY = 'azure-key-93be4410'
local PLAIN_KEY = 'sk-plain-c0ffee1234'

local function ask(cmdline)
  local before = #H.answer_buffers()
  vim.cmd(cmdline)
  local bufs = H.answer_buffers()
  assert.are.equal(before + 1, #bufs, 'one new answer buffer')
  return bufs[#bufs]
end

-- The lsp.log lines written since `from` (a byte offset).
local function log_since(from)
  return H.read_file(vim.lsp.get_log_path()):sub(from + 1)
end

describe('API keys in Neovim ' .. tostring(vim.version().major) .. '.' .. tostring(vim.version().minor), function()
  local seen, log_start

  before_each(function()
    H.start_mock()
    seen = H.capture_notify()
    vim.cmd('silent! only')
    llm.stop() -- each test starts its own sidecar: the environment it inherits is part of the test
    assert(not vim.startswith(vim.lsp.get_log_path(), (vim.loop.os_homedir())),
      'run the tests through test.sh: lsp.log must be in a temp folder, not ' .. vim.lsp.get_log_path())
    vim.lsp.set_log_level('debug')
    log_start = #H.read_file(vim.lsp.get_log_path())
  end)

  after_each(function()
    vim.lsp.set_log_level('warn')
    llm.cancel({ all = true, quiet = true })
    llm.stop()
    H.restore_notify()
    H.stop_mock()
  end)

  it('token_env: the sidecar reads the key from its environment; the key is nowhere in lsp.log', function()
    vim.fn.setenv('LLM_SIDECAR_TEST_KEY', ENV_KEY)
    llm.setup({ cmd = { H.bin }, settings = H.settings_without_token('hello'), token_env = 'LLM_SIDECAR_TEST_KEY' })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'done')
    assert.are.equal('Hello, world!', H.text(buf))
    local req = H.events_of('hello', 'request')
    assert.are.equal(1, #req)
    assert.are.equal('Bearer ' .. ENV_KEY, req[1].headers.authorization)
    local log = log_since(log_start)
    -- the log holds the JSON-RPC traffic (so a key in it would be found) but not the key
    assert.is_truthy(log:find('llm/complete', 1, true), 'lsp.log has the request')
    assert.is_truthy(log:find('LLM_SIDECAR_TEST_KEY', 1, true))
    assert.is_nil(log:find(ENV_KEY, 1, true))
    assert.is_nil(H.find(seen, WARN, ''))
  end)

  it('token_command: the sidecar runs the command for the key; the key is nowhere in lsp.log', function()
    local file = vim.fn.tempname()
    vim.fn.writefile({ CMD_KEY }, file)
    llm.setup({ cmd = { H.bin }, settings = H.settings_without_token('hello'), token_command = { 'cat', file } })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'done')
    assert.are.equal('Bearer ' .. CMD_KEY, H.events_of('hello', 'request')[1].headers.authorization)
    local log = log_since(log_start)
    assert.is_truthy(log:find('llm/complete', 1, true))
    assert.is_nil(log:find(CMD_KEY, 1, true))
    os.remove(file)
  end)

  it('a customHeaders value { env = ... } keeps a header key off the pipe', function()
    vim.fn.setenv('LLM_SIDECAR_TEST_HEADER_KEY', HEADER_KEY)
    local s = H.settings_without_token('hello', {
      customEngineRequestFormat = {
        customFields = { model = 'deepseek-chat', stream = true },
        customHeaders = { ['api-key'] = { env = 'LLM_SIDECAR_TEST_HEADER_KEY' } },
      },
    })
    llm.setup({ cmd = { H.bin }, settings = s })
    local buf = ask('LlmAsk hi')
    H.wait_status(buf, 'done')
    assert.are.equal(HEADER_KEY, H.events_of('hello', 'request')[1].headers['api-key'])
    local log = log_since(log_start)
    assert.is_truthy(log:find('llm/complete', 1, true))
    assert.is_nil(log:find(HEADER_KEY, 1, true))
    assert.is_nil(H.find(seen, WARN, 'customHeaders'))
  end)

  it('a plain token still works, with one warning that lsp.log gets it', function()
    llm.setup({ cmd = { H.bin }, settings = H.settings_without_token('hello', { customEngineToken = PLAIN_KEY }) })
    local first = ask('LlmAsk hi')
    H.wait_status(first, 'done')
    local second = ask('LlmAsk again')
    H.wait_status(second, 'done')
    assert.are.equal('Bearer ' .. PLAIN_KEY, H.events_of('hello', 'request')[2].headers.authorization)
    -- what the key sources avoid: vim.lsp wrote the plain token to its log
    assert.is_truthy(log_since(log_start):find(PLAIN_KEY, 1, true))
    assert.are.equal(1, H.count(seen, WARN, 'writes the token to'))
    assert.is_truthy(H.find(seen, WARN, 'token_env').msg:find(vim.lsp.get_log_path(), 1, true))
  end)

  it('warns once about a key written in plain text in customHeaders', function()
    local s = H.settings('hello', {
      customEngineRequestFormat = '{"customFields": {"model": "deepseek-chat", "stream": true}, '
        .. '"customHeaders": {"x-api-key": "plain-header-key", "X-Trace": "on"}}',
    })
    vim.lsp.set_log_level('warn')
    llm.setup({ cmd = { H.bin }, settings = s })
    H.wait_status(ask('LlmAsk hi'), 'done')
    H.wait_status(ask('LlmAsk again'), 'done')
    assert.are.equal(1, H.count(seen, WARN, 'customHeaders value of "x-api-key"'))
    assert.is_truthy(H.find(seen, WARN, 'x-api-key').msg:find('env = "NAME"', 1, true))
    assert.is_nil(H.find(seen, WARN, 'X-Trace'))
  end)

  it('refuses settings that name a plain token and a key source, sending nothing', function()
    vim.fn.setenv('LLM_SIDECAR_TEST_KEY', ENV_KEY)
    llm.setup({ cmd = { H.bin }, settings = H.settings_without_token('hello', { customEngineToken = PLAIN_KEY }),
      token_env = 'LLM_SIDECAR_TEST_KEY' })
    vim.cmd('LlmAsk hi')
    local n = H.find(seen, ERROR, 'set only one of customEngineToken, customEngineTokenEnv')
    assert.is_not_nil(n, vim.inspect(seen))
    assert.is_nil(log_since(log_start):find(PLAIN_KEY, 1, true))
    assert.are.equal(0, #H.events())
  end)
end)
