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
  for tag in ['llm-sidecar', ':LlmAsk', ':LlmCancel', ':LlmTestConnection', ':LlmPresets', 'g:llm_sidecar_settings']
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
