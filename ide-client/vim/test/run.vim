vim9script
# The Vim client's tests, in the real Vim, against the real llm-sidecar and the mock LLM server:
#   LLM_SIDECAR_BIN=... vim -Nu NONE -i NONE -es -c 'source test/run.vim' </dev/null
# Each Test_ function runs with a fresh mock server; assert_*() failures are collected from v:errors. One line per
# test and a closing "vim: N passed, N failed" go to $VIM_TEST_LOG (default: /dev/stdout). Exits 0 when all passed.
set nocompatible encoding=utf-8 hidden
const HERE = expand('<sfile>:p:h')
const ROOT = fnamemodify(HERE, ':h')
const MOCK = fnamemodify(ROOT .. '/../mock-llm/mock_llm.py', ':p')
const BIN = empty($LLM_SIDECAR_BIN) ? fnamemodify(ROOT .. '/../../target/release/llm-sidecar', ':p') : $LLM_SIDECAR_BIN
const LOG = empty($VIM_TEST_LOG) ? '/dev/stdout' : $VIM_TEST_LOG
const TIMEOUT = 20000
&runtimepath = ROOT .. ',' .. &runtimepath
runtime plugin/llm_sidecar.vim
import autoload 'llm_sidecar.vim'

def Out(line: string)
  writefile([line], LOG, 'a')
enddef

var mock: dict<any> = {}

def StartMock()
  var dir = tempname() .. '-mock-llm'
  mkdir(dir, 'p')
  var j = job_start(['python3', MOCK, '--state-dir', dir, '--max-seconds', '600'], {out_io: 'null', err_io: 'null'})
  mock = {dir: dir, job: j, port: 0}
  WaitFor('the mock LLM server to listen', () => filereadable(dir .. '/port'))
  mock.port = str2nr(readfile(dir .. '/port')[0])
enddef

def StopMock()
  if !empty(mock)
    job_stop(mock.job)
    var waited = 0
    while job_status(mock.job) == 'run' && waited < 250
      sleep 20m
      waited += 1
    endwhile
    delete(mock.dir, 'rf')
    mock = {}
  endif
enddef

# Waits (processing channel messages) until cond() is true; an assertion failure after the timeout.
def WaitFor(what: string, Cond: func(): bool, timeout: number = TIMEOUT): bool
  var start = reltime()
  while !Cond()
    if reltimefloat(reltime(start)) * 1000 > timeout
      assert_report('timed out waiting for ' .. what)
      return false
    endif
    sleep 20m
  endwhile
  return true
enddef

def Events(scenario: string, event: string = ''): list<dict<any>>
  var file = mock.dir .. '/events.jsonl'
  if !filereadable(file)
    return []
  endif
  var out: list<dict<any>> = []
  for line in readfile(file)
    if line != ''
      var e = json_decode(line)
      if e.scenario == scenario && (event == '' || e.event == event)
        add(out, e)
      endif
    endif
  endfor
  return out
enddef

# AutoDev v1 settings for a scenario of the mock, from a preset.
def Settings(scenario: string, extra: dict<any> = {}): dict<any>
  var s: dict<any> = {
    preset: 'deepseek',
    customEngineServer: printf('http://127.0.0.1:%d/%s/v1/chat/completions', mock.port, scenario),
    customEngineToken: 'sk-test-token',
    retry: {maxRetries: 0},
  }
  return extend(s, extra)
enddef

def Use(scenario: string, extra: dict<any> = {})
  g:llm_sidecar_settings = Settings(scenario, extra)
enddef

def AnswerBuffers(): list<number>
  return getbufinfo()->filter((_, b) => b.name =~ '^llm-sidecar://\d\+$')->map((_, b) => b.bufnr)->sort('n')
enddef

# :LlmAsk ...; returns the new answer buffer.
def Ask(cmdline: string): number
  var before = len(AnswerBuffers())
  execute cmdline
  var bufs = AnswerBuffers()
  assert_equal(before + 1, len(bufs), 'one new answer buffer')
  return bufs[-1]
enddef

def Text(buf: number): string
  return join(getbufline(buf, 1, '$'), "\n")
enddef

def Status(buf: number): string
  return getbufvar(buf, 'llm_sidecar_status', '')
enddef

def WaitStatus(buf: number, want: string)
  WaitFor('status ' .. want .. ' of buffer ' .. buf, () => Status(buf) == want)
enddef

def Messages(): string
  return execute('messages')
enddef

def SidecarPid(): number
  return llm_sidecar.Pid()
enddef

# --- keys and completion helpers --------------------------------------------------------------------------------------

import autoload 'llm_sidecar/completion.vim'

# Settings for a scenario without any token (the key source tests add theirs).
def SettingsWithoutToken(scenario: string, extra: dict<any> = {}): dict<any>
  var s = Settings(scenario)
  remove(s, 'customEngineToken')
  return extend(s, extra)
enddef

# Code-completion settings for a fim* scenario of the mock (/v1/completions shape: choices[0].text).
def FimSettings(scenario: string, extra: dict<any> = {}): dict<any>
  return extend({
    customEngineServer: printf('http://127.0.0.1:%d/%s/v1/completions', mock.port, scenario),
    customEngineToken: 'sk-fim-token',
    customEngineResponseFormat: '$.choices[0].text',
    customEngineRequestFormat: {customFields: {model: 'mock-coder', stream: true}},
    fim: {multiline: true},
    retry: {maxRetries: 0},
  }, extra)
enddef

# The ghost text of a buffer: {lnum, col (0-based byte), first, rest} or {}. Where and how many virtual-text
# properties there are comes from prop_list(); their texts from the plugin (Vim 9.0's prop_list() does not give
# the text of a virtual-text property), checked against their number.
def Ghost(buf: number): dict<any>
  var out: dict<any> = {}
  var inline = 0
  var below = 0
  for lnum in range(1, getbufinfo(buf)[0].linecount)
    for p in prop_list(lnum, {bufnr: buf, types: ['llm_sidecar_ghost']})
      assert_true(p.id < 0, 'a virtual-text property')
      if empty(out)
        out = {lnum: lnum, col: -1, first: '', rest: []}
      endif
      assert_equal(out.lnum, lnum, 'every property on the cursor line')
      if p.col == 2147483647   # text_align below: after the end of the line
        below += 1
      else
        inline += 1
        out.col = p.col - 1
      endif
    endfor
  endfor
  if empty(out)
    return out
  endif
  var parts = split(completion.Suggestion(), "\n", true)
  assert_equal(1, inline, 'one property at the cursor')
  assert_equal(len(parts) - 1, below, 'one property below the line for every further line')
  out.first = parts[0]
  out.rest = parts[1 :]
  return out
enddef

def CompletionStatus(): string
  return get(b:, 'llm_sidecar_completion_status', '')
enddef

# :LlmComplete and wait for its answer; then the status must be `want`.
def CompleteAndWait(want: string)
  var before = completion.Stats().answers
  LlmComplete
  WaitFor('the completion answer', () => completion.Stats().answers > before)
  assert_equal(want, CompletionStatus(), Messages())
enddef

def Scratch(lines: list<string>): number
  enew!
  setlocal buftype=nofile
  setline(1, lines)
  return bufnr('%')
enddef

def CountMatches(text: string, pat: string): number
  var n = 0
  var start = 0
  while true
    var i = match(text, pat, start)
    if i < 0
      return n
    endif
    n += 1
    start = i + 1
  endwhile
  return n
enddef

# --- tests ----------------------------------------------------------------------------------------------------------

def Test_streams_into_a_split_with_cjk_and_emoji()
  Use('unicode')
  var windows = winnr('$')
  var buf = Ask('LlmAsk Say hello in Chinese')
  var changes = 0
  var id = listener_add((_, _, _, _, ch) => {
    changes += len(ch)
  }, buf)
  assert_equal('streaming', Status(buf))
  WaitStatus(buf, 'done')
  listener_flush(buf)
  listener_remove(id)
  assert_equal("你好，世界！\nEmoji: 👋🏽 👨‍👩‍👧 — done ✓", Text(buf))
  assert_true(changes >= 3, 'the buffer changed ' .. changes .. ' times (streamed piece by piece)')
  assert_equal(windows + 1, winnr('$'))
  assert_equal(buf, bufnr('%'))
  assert_equal('nofile', getbufvar(buf, '&buftype'))
  var req = Events('unicode', 'request')
  assert_equal(1, len(req))
  assert_equal('Say hello in Chinese', req[0].body.messages[-1].content)
  assert_equal('Bearer sk-test-token', req[0].headers.authorization)
  assert_equal('deepseek-chat', req[0].body.model)
enddef

def Test_range_is_sent_with_the_prompt()
  Use('hello')
  enew
  setline(1, ['local a = 1', 'local function add(x, y)', '  return x + y', 'end'])
  setlocal filetype=lua
  var buf = Ask(':2,4LlmAsk Explain this')
  WaitStatus(buf, 'done')
  assert_equal('Hello, world!', Text(buf))
  assert_equal("Explain this\n\n```lua\nlocal function add(x, y)\n  return x + y\nend\n```",
    Events('hello', 'request')[0].body.messages[-1].content)
enddef

def Test_takes_an_autodev_customllms_entry_as_the_settings()
  g:llm_sidecar_settings = {
    name: 'Mock',
    url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', mock.port),
    auth: {type: 'Bearer', token: 'sk-entry-token'},
    requestFormat: '{"customFields": {"model": "mock-model", "stream": true}}',
    responseFormat: '$.choices[0].delta.content',
    modelType: 'Default',
  }
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'done')
  assert_equal('Hello, world!', Text(buf))
  var req = Events('hello', 'request')[0]
  assert_equal('Bearer sk-entry-token', req.headers.authorization)
  assert_equal('mock-model', req.body.model)
  assert_equal(v:true, req.body.stream)
enddef

def Test_has_its_help()
  var dir = tempname()
  mkdir(dir .. '/doc', 'p')
  writefile(readfile(ROOT .. '/doc/llm-sidecar.txt'), dir .. '/doc/llm-sidecar.txt')
  execute 'helptags ' .. dir .. '/doc'
  &runtimepath ..= ',' .. dir
  for tag in ['llm-sidecar', ':LlmAsk', ':LlmCancel', ':LlmTestConnection', ':LlmPresets', 'g:llm_sidecar_settings',
      'llm-sidecar-keys', 'llm-sidecar-completion', ':LlmComplete', ':LlmAccept', '<Plug>(llm-accept)',
      'g:llm_sidecar_completion', 'g:llm_sidecar_custom_llms', 'g:llm_sidecar_token_env']
    execute 'help ' .. tag
    assert_equal('llm-sidecar.txt', expand('%:t'), tag)
    close
  endfor
enddef

def Test_reasoning_goes_to_a_folded_block_above_the_answer()
  Use('reasoning')
  var buf = Ask('LlmAsk What is six times seven?')
  WaitStatus(buf, 'done')
  assert_equal(['Reasoning:', 'Let me think about it.', 'Step two.', '---', 'The answer is 42.'], getbufline(buf, 1, '$'))
  var win = win_findbuf(buf)[0]
  assert_equal('1', trim(win_execute(win, 'echo foldclosed(2)')))
  assert_equal('3', trim(win_execute(win, 'echo foldclosedend(1)')))
  assert_equal('-1', trim(win_execute(win, 'echo foldclosed(5)')))
enddef

def Test_cancel_keeps_the_partial_text_and_closes_the_upstream()
  Use('slow')
  var buf = Ask('LlmAsk Write a long story')
  WaitFor('the first chunks', () => Text(buf) == 'partial 答案 🚀')
  assert_equal('streaming', Status(buf))
  LlmCancel
  assert_equal('cancelled', Status(buf))
  WaitFor('the mock server to see the client disconnect', () => len(Events('slow', 'disconnected')) == 1)
  sleep 300m
  assert_equal('partial 答案 🚀', Text(buf))
  assert_equal('cancelled', Status(buf))
  assert_match('llm-sidecar: cancelled (1)', Messages())
  assert_notmatch('ErrorMsg\|exited', Messages())
enddef

def Test_wiping_out_a_streaming_answer_cancels_it()
  Use('slow')
  var buf = Ask('LlmAsk hi')
  WaitFor('the first chunks', () => Text(buf) == 'partial 答案 🚀')
  execute 'bwipeout! ' .. buf
  WaitFor('the mock server to see the client disconnect', () => len(Events('slow', 'disconnected')) == 1)
  assert_notmatch('exited\|ErrorMsg', Messages())
enddef

def Test_http_error_shows_the_provider_message()
  Use('unauthorized')
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'error')
  assert_match('llm-sidecar: LLM server answered HTTP 401: Incorrect API key provided', Messages())
  assert_equal('', Text(buf))
enddef

def Test_no_match_shows_the_suggested_path()
  Use('othershape', {customEngineResponseFormat: '$.choices[0].delta.text'})
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'error')
  assert_match('suggested path: \$\.choices\[0\]\.delta\.content (gives "AlphaBeta")', Messages())
enddef

def Test_two_asks_at_once_stream_into_two_buffers()
  Use('slow')
  var first = Ask('LlmAsk first')
  WaitFor('the first answer to start', () => Text(first) == 'partial 答案 🚀')
  var pid = SidecarPid()
  Use('hare')
  var second = Ask('LlmAsk second')
  assert_notequal(first, second)
  WaitStatus(second, 'done')
  assert_equal('fast one', Text(second))
  assert_equal('streaming', Status(first))
  assert_equal('partial 答案 🚀', Text(first))
  assert_equal(pid, SidecarPid())
  win_gotoid(win_findbuf(first)[0])
  LlmCancel
  assert_equal('cancelled', Status(first))
  assert_equal('done', Status(second))
  WaitFor('the disconnect', () => len(Events('slow', 'disconnected')) == 1)
enddef

def Test_test_connection_and_presets()
  Use('hello')
  LlmTestConnection
  WaitFor('the report', () => Messages() =~ 'connection OK')
  assert_match('HTTP 200, text/event-stream', Messages())
  assert_match('sample: Hello, world!', Messages())
  Use('unauthorized')
  LlmTestConnection
  WaitFor('the failure', () => Messages() =~ 'connection test failed')
  assert_match('connection test failed: LLM server answered HTTP 401: Incorrect API key provided', Messages())
  LlmPresets
  WaitFor('the presets buffer', () => bufnr('llm-sidecar://presets') != -1 && Text(bufnr('llm-sidecar://presets')) =~ 'deepseek')
  var text = Text(bufnr('llm-sidecar://presets'))
  assert_match("\nollama\n", text)
  assert_match('https://api.deepseek.com/v1/chat/completions', text)
enddef

def Test_stderr_goes_to_the_log_buffer_and_vimleavepre_stops_the_sidecar()
  llm_sidecar.Stop()
  g:llm_sidecar_log_level = 'debug'
  Use('hello')
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'done')
  unlet g:llm_sidecar_log_level
  var pid = SidecarPid()
  assert_true(pid > 0)
  WaitFor('sidecar log lines', () => bufnr('llm-sidecar://log') != -1 && Text(bufnr('llm-sidecar://log')) =~ 'DEBUG')
  assert_notmatch('sk-test-token', Text(bufnr('llm-sidecar://log')))
  doautocmd VimLeavePre
  WaitFor('the sidecar to exit', () => !isdirectory('/proc/' .. pid))
  assert_false(llm_sidecar.IsRunning())
  assert_notmatch('exited', Messages())
  var again = Ask('LlmAsk again')
  WaitStatus(again, 'done')
  assert_equal('Hello, world!', Text(again))
  assert_notequal(pid, SidecarPid())
enddef

def Test_a_sidecar_killed_mid_stream_is_reported_and_restarted()
  Use('slow')
  var buf = Ask('LlmAsk hi')
  WaitFor('the first chunks', () => Text(buf) == 'partial 答案 🚀')
  system('kill -9 ' .. SidecarPid())
  WaitStatus(buf, 'error')
  assert_match('while answering; the partial text is kept in llm-sidecar://', Messages())
  assert_match('llm-sidecar exited with code -1', Messages())
  assert_equal('partial 答案 🚀', Text(buf))
  Use('hello')
  var again = Ask('LlmAsk again')
  WaitStatus(again, 'done')
  assert_equal('Hello, world!', Text(again))
enddef

def Test_a_missing_binary_is_reported()
  llm_sidecar.Stop()
  g:llm_sidecar_cmd = ['/nonexistent/llm-sidecar']
  Use('hello')
  execute 'LlmAsk hi'
  assert_match('cannot run /nonexistent/llm-sidecar', Messages())
  g:llm_sidecar_cmd = [BIN]
enddef


const ENV_KEY = 'sk-env-7f3a91c4e2'
const CMD_KEY = 'sk-cmd-5d8b20aa61'
const HEADER_KEY = 'azure-key-93be4410'

# Starts a channel log (what a user debugging the channel sees); returns its file.
def ChannelLog(): string
  var file = tempname()
  ch_logfile(file, 'w')
  return file
enddef

def ChannelLogText(file: string): string
  ch_logfile('')
  return join(readfile(file), "\n")
enddef

def Test_token_env_keeps_the_key_out_of_the_channel_log()
  llm_sidecar.Stop()
  setenv('LLM_SIDECAR_TEST_KEY', ENV_KEY)
  g:llm_sidecar_settings = SettingsWithoutToken('hello')
  g:llm_sidecar_token_env = 'LLM_SIDECAR_TEST_KEY'
  var log = ChannelLog()
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'done')
  var text = ChannelLogText(log)
  assert_equal('Hello, world!', Text(buf))
  assert_equal('Bearer ' .. ENV_KEY, Events('hello', 'request')[0].headers.authorization)
  assert_match('llm/complete', text)
  assert_match('LLM_SIDECAR_TEST_KEY', text)
  assert_notmatch(ENV_KEY, text)
enddef

def Test_token_command_keeps_the_key_out_of_the_channel_log()
  var file = tempname()
  writefile([CMD_KEY], file)
  g:llm_sidecar_settings = SettingsWithoutToken('hello')
  g:llm_sidecar_token_command = ['cat', file]
  var log = ChannelLog()
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'done')
  var text = ChannelLogText(log)
  assert_equal('Bearer ' .. CMD_KEY, Events('hello', 'request')[0].headers.authorization)
  assert_match('llm/complete', text)
  assert_notmatch(CMD_KEY, text)
enddef

def Test_a_customheaders_env_source_keeps_a_header_key_off_the_pipe()
  llm_sidecar.Stop()   # a new sidecar inherits the variable
  setenv('LLM_SIDECAR_TEST_HEADER_KEY', HEADER_KEY)
  g:llm_sidecar_settings = SettingsWithoutToken('hello', {customEngineRequestFormat: {
    customFields: {model: 'deepseek-chat', stream: true},
    customHeaders: {'api-key': {env: 'LLM_SIDECAR_TEST_HEADER_KEY'}}}})
  var log = ChannelLog()
  var buf = Ask('LlmAsk hi')
  WaitStatus(buf, 'done')
  var text = ChannelLogText(log)
  assert_equal(HEADER_KEY, Events('hello', 'request')[0].headers['api-key'])
  assert_notmatch(HEADER_KEY, text)
  assert_notmatch('customHeaders value', Messages())
enddef

def Test_a_plain_key_in_customheaders_is_warned_about_once()
  Use('hello', {customEngineRequestFormat: '{"customFields": {"model": "deepseek-chat", "stream": true}, '
    .. '"customHeaders": {"x-api-key": "plain-header-key", "X-Trace": "on"}}'})
  WaitStatus(Ask('LlmAsk hi'), 'done')
  WaitStatus(Ask('LlmAsk again'), 'done')
  assert_equal(1, CountMatches(Messages(), 'the customHeaders value of "x-api-key" looks like a key'))
  assert_match('{"x-api-key": {"env": "NAME"}}', Messages())
  assert_notmatch('X-Trace', Messages())
enddef

def Test_two_token_sources_are_refused_and_nothing_is_sent()
  g:llm_sidecar_settings = Settings('hello')
  g:llm_sidecar_token_env = 'LLM_SIDECAR_TEST_KEY'
  var before = len(AnswerBuffers())
  LlmAsk hi
  assert_equal(before, len(AnswerBuffers()))
  assert_match('set only one of customEngineToken, customEngineTokenEnv (nothing was sent)', Messages())
  assert_equal([], Events('hello'))
enddef

def Test_llmcomplete_shows_ghost_text_at_the_cursor_with_the_text_around_it()
  g:llm_sidecar_completion = FimSettings('fim')
  var before = '    s = "日本🎌" + '
  var buf = Scratch(['# 你好 👋🏽 — 日本', 'def add(a, b):', before .. 'rest', '', 'print(add(1, 2))'])
  cursor(3, len(before) + 1)
  CompleteAndWait('shown')
  assert_equal({lnum: 3, col: len(before), first: 'total = a + b', rest: ['    return total']}, Ghost(buf))
  assert_equal("total = a + b\n    return total", completion.Suggestion())
  var req = Events('fim', 'request')
  assert_equal(1, len(req))
  assert_equal("# 你好 👋🏽 — 日本\ndef add(a, b):\n" .. before, req[0].body.prompt)
  assert_equal("rest\n\nprint(add(1, 2))", req[0].body.suffix)
  assert_equal('Bearer sk-fim-token', req[0].headers.authorization)
  assert_equal(before .. 'rest', getline(3))
enddef

def Test_llmaccept_inserts_it_exactly_as_one_undo_step()
  g:llm_sidecar_completion = FimSettings('fim')
  var buf = Scratch(['def add(a, b):', '    ', 'print(add(1, 2))'])
  cursor(2, 4)   # on the last character: the completion goes after it
  CompleteAndWait('shown')
  assert_equal({lnum: 2, col: 4, first: 'total = a + b', rest: ['    return total']}, Ghost(buf))
  &undolevels = &undolevels
  LlmAccept
  assert_equal(['def add(a, b):', '    total = a + b', '    return total', 'print(add(1, 2))'], getline(1, '$'))
  assert_equal(3, line('.'))
  assert_equal({}, Ghost(buf))
  silent undo
  assert_equal(['def add(a, b):', '    ', 'print(add(1, 2))'], getline(1, '$'))
enddef

def Test_an_edit_that_does_not_match_removes_the_ghost_text()
  g:llm_sidecar_completion = FimSettings('fim')
  var buf = Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  CompleteAndWait('shown')
  setline(2, '    z')
  # listener_flush(): what a redraw does, and -es never redraws
  WaitFor('the suggestion to go', () => {
    listener_flush(buf)
    return !completion.Visible()
  })
  assert_equal({}, Ghost(buf))
  assert_equal('cleared', CompletionStatus())
enddef

def Test_a_newer_completion_request_cancels_the_older()
  g:llm_sidecar_completion = FimSettings('fimslow')
  var buf = Scratch(['def add(a, b):', '    '])
  var dir = tempname()
  execute 'keepalt file ' .. dir .. '/first.py'
  cursor(2, 4)
  LlmComplete
  WaitFor('the slow request to reach the server', () => len(Events('fimslow', 'request')) == 1)
  assert_equal('requesting', CompletionStatus())
  # Another path: the sidecar, which replaces a request for the same document by itself, sees two documents, so
  # only the client's $/cancelRequest closes the first request.
  execute 'keepalt file ' .. dir .. '/second.py'
  g:llm_sidecar_completion = FimSettings('fim')
  CompleteAndWait('shown')
  WaitFor('the server to see the slow request closed', () => len(Events('fimslow', 'disconnected')) == 1)
  assert_equal('total = a + b', Ghost(buf).first)
  assert_notmatch('Error\|failed', Messages())
enddef

def Test_customllms_completion_entry_serves_ghost_text_and_default_entry_chat()
  llm_sidecar.Stop()
  unlet! g:llm_sidecar_settings
  var Entries = (fim: string) => [
    {name: 'Chat', url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', mock.port),
      auth: {type: 'Bearer', token: 'sk-chat'}, modelType: 'Default',
      requestFormat: '{"customFields": {"model": "chat-model", "stream": true}}',
      responseFormat: '$.choices[0].delta.content'},
    {name: 'Coder', url: printf('http://127.0.0.1:%d/%s/v1/completions', mock.port, fim),
      auth: {type: 'Bearer', token: 'sk-coder'}, modelType: 'Completion',
      requestFormat: '{"customFields": {"model": "coder-model", "stream": true}}',
      responseFormat: '$.choices[0].text', fim: {multiline: true}},
  ]
  g:llm_sidecar_custom_llms = Entries('fim')
  var answer = Ask('LlmAsk hi')
  WaitStatus(answer, 'done')
  assert_equal('Hello, world!', Text(answer))
  var chat = Events('hello', 'request')
  assert_equal('Bearer sk-chat', chat[0].headers.authorization)
  assert_equal('chat-model', chat[0].body.model)
  var buf = Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  CompleteAndWait('shown')
  assert_equal('total = a + b', Ghost(buf).first)
  assert_equal('Bearer sk-coder', Events('fim', 'request')[0].headers.authorization)
  # a changed list reaches the running sidecar
  var pid = SidecarPid()
  g:llm_sidecar_custom_llms = Entries('fimunicode')
  CompleteAndWait('shown')
  assert_equal('print("你好 👋🏽")', Ghost(buf).first)
  assert_equal(pid, SidecarPid())
enddef

def Test_completion_llm_name_picks_a_customllms_entry()
  g:llm_sidecar_custom_llms = [
    {name: 'Chat', url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', mock.port), modelType: 'Default',
      responseFormat: '$.choices[0].delta.content'},
    {name: 'Coder', url: printf('http://127.0.0.1:%d/fimunicode/v1/completions', mock.port),
      requestFormat: '{"customFields": {"model": "coder-model"}}', responseFormat: '$.choices[0].text'}]
  g:llm_sidecar_completion = {llm: 'Coder'}
  var buf = Scratch(['x = 1', ''])
  cursor(2, 1)
  CompleteAndWait('shown')
  assert_equal('print("你好 👋🏽")', Ghost(buf).first)
  assert_equal('coder-model', Events('fimunicode', 'request')[0].body.model)
  assert_equal([], Events('hello', 'request'))
enddef

def Test_completion_errors_are_shown_once_until_the_settings_change()
  g:llm_sidecar_completion = FimSettings('fimerror')
  var buf = Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  CompleteAndWait('error')
  CompleteAndWait('error')
  CompleteAndWait('error')
  assert_equal(3, len(Events('fimerror', 'request')))
  assert_equal(1, CountMatches(Messages(), 'FIM backend exploded'))
  assert_equal(3, CountMatches(Text(bufnr('llm-sidecar://log')), 'completion failed: .*FIM backend exploded'))
  assert_equal({}, Ghost(buf))
  g:llm_sidecar_completion = FimSettings('fimerror', {model: 'other'})
  CompleteAndWait('error')
  assert_equal(2, CountMatches(Messages(), 'FIM backend exploded'))
enddef

# Typing is driven in a second Vim in a hidden terminal (term_sendkeys), so its Insert mode sees keys as a user's:
# a timer in it writes its state to a file, which the test reads.
def Test_ghost_text_while_typing_in_a_vim_in_a_terminal()
  var dir = tempname()
  mkdir(dir, 'p')
  var state = dir .. '/state.json'
  writefile(['vim9script',
    'set encoding=utf-8',
    '&runtimepath = ' .. string(ROOT) .. ' .. "," .. &runtimepath',
    'runtime plugin/llm_sidecar.vim',
    'import autoload "llm_sidecar/completion.vim"',
    'g:llm_sidecar_cmd = [' .. string(BIN) .. ']',
    'g:llm_sidecar_completion = json_decode(' .. string(json_encode(FimSettings('fim'))) .. ')',
    'g:llm_sidecar_completion_debounce = 150',
    'imap <Tab> <Plug>(llm-accept)',
    'setline(1, ["def add(a, b):"])',
    'def State(_: number)',
    '  var inline = filter(prop_list(line(".")), (_, p) => p.col != 2147483647)',
    '  writefile([json_encode({mode: mode(), lines: getline(1, "$"), cursor: [line("."), col(".")],',
    '    suggestion: completion.Suggestion(), stats: completion.Stats(), col: empty(inline) ? -1 : inline[0].col - 1})],',
    '    ' .. string(state .. '.tmp') .. ')',
    '  rename(' .. string(state .. '.tmp') .. ', ' .. string(state) .. ')',
    'enddef',
    'timer_start(30, State, {repeat: -1})'], dir .. '/setup.vim')
  var term = term_start(['vim', '-Nu', 'NONE', '-i', 'NONE', '-n', '-S', dir .. '/setup.vim'],
    {hidden: true, term_rows: 24, term_cols: 100, env: {LC_ALL: 'C.UTF-8'}})
  var st: dict<any> = {}
  var Read = (): bool => {
    if !filereadable(state)
      return false
    endif
    try
      st = json_decode(join(readfile(state)))
    catch
      return false
    endtry
    return true
  }
  try
    WaitFor('the second Vim to start', () => Read())
    term_sendkeys(term, 'Go    ')
    WaitFor('ghost text after the pause', () => Read() && st.suggestion != '')
    assert_equal('i', st.mode)
    assert_equal("total = a + b\n    return total", st.suggestion)
    assert_equal(4, st.col)
    var req = Events('fim', 'request')
    assert_equal(1, len(req))
    assert_equal("def add(a, b):\n    ", req[0].body.prompt)
    assert_equal('', req[0].body.suffix)

    # typing along the suggestion: the rest stays, and the next request is answered by the sidecar's cache
    var answers = st.stats.answers
    term_sendkeys(term, 'tot')
    WaitFor('the request after typing', () => Read() && st.stats.answers > answers)
    assert_equal("al = a + b\n    return total", st.suggestion)
    assert_equal(7, st.col)
    assert_equal(1, st.stats.cached)
    assert_equal(1, len(Events('fim', 'request')))

    # a key that does not match removes it at once; a new request follows the pause
    var cleared = st.stats.cleared
    term_sendkeys(term, 'x')
    WaitFor('the key to be typed', () => Read() && st.lines[1] == '    totx')
    assert_true(st.stats.cleared > cleared, 'the suggestion was removed')
    WaitFor('a new suggestion after the pause', () => Read() && st.suggestion != '' && st.col == 8)

    term_sendkeys(term, "\<Tab>")
    WaitFor('the accepted text', () => Read() && len(st.lines) == 3)
    assert_equal(['def add(a, b):', '    totxtotal = a + b', '    return total'], st.lines)
    assert_equal('i', st.mode)
    assert_equal([3, 17], st.cursor)
    term_sendkeys(term, "\<Esc>u")
    WaitFor('the undo', () => Read() && len(st.lines) == 2)
    assert_equal(['def add(a, b):', '    totx'], st.lines)
  finally
    term_sendkeys(term, "\<Esc>:qa!\<CR>")
    WaitFor('the second Vim to exit', () => job_status(term_getjob(term)) != 'run', 5000)
    execute 'bwipeout! ' .. term
    delete(dir, 'rf')
  endtry
enddef

# --- runner ---------------------------------------------------------------------------------------------------------

g:llm_sidecar_cmd = [BIN]
var names = split(execute('function /_Test_'), "\n")
  ->map((_, l) => matchstr(l, '<SNR>\d\+_Test_\w\+'))->filter((_, n) => n != '')
var filter = $VIM_TEST_FILTER
var passed = 0
var failed = 0
var started = reltime()
for name in names
  if filter != '' && name !~ filter
    continue
  endif
  var short = substitute(name, '^<SNR>\d\+_', '', '')
  v:errors = []
  var t = reltime()
  try
    messages clear
    silent! only
    StartMock()
    call(name, [])
  catch
    add(v:errors, 'exception: ' .. v:exception .. ' at ' .. v:throwpoint)
  finally
    llm_sidecar.Cancel(true, true)
    completion.Dismiss()
    ch_logfile('')
    for v in ['settings', 'token_env', 'token_command', 'completion', 'custom_llms', 'completion_enabled']
      execute 'unlet! g:llm_sidecar_' .. v
    endfor
    StopMock()
  endtry
  var ms = float2nr(reltimefloat(reltime(t)) * 1000)
  if empty(v:errors)
    passed += 1
    Out(printf('ok   %s (%d ms)', short, ms))
  else
    failed += 1
    Out(printf('FAIL %s (%d ms)', short, ms))
    for e in v:errors
      Out('     ' .. e)
    endfor
    Out('     messages: ' .. substitute(Messages(), "\n", ' | ', 'g'))
  endif
endfor
llm_sidecar.Stop()
Out(printf('vim: ran %d tests in %.1f s', passed + failed, reltimefloat(reltime(started))))
Out(printf('vim: %d passed, %d failed', passed, failed))
if failed > 0 || passed == 0
  cquit 1
endif
qall!
