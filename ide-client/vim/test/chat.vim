vim9script
# The Vim client in the real editor: answers streamed into buffers, cancel, errors, the process.
# Sourced by run.vim, which runs every Test_ function with a fresh mock server.
import autoload 'llm_sidecar.vim'
import './helpers.vim' as h

def Test_streams_into_a_split_with_cjk_and_emoji()
  h.Use('unicode')
  var windows = winnr('$')
  var buf = h.Ask('LlmAsk Say hello in Chinese')
  var changes = 0
  var id = listener_add((_, _, _, _, ch) => {
    changes += len(ch)
  }, buf)
  assert_equal('streaming', h.Status(buf))
  h.WaitStatus(buf, 'done')
  listener_flush(buf)
  listener_remove(id)
  assert_equal("你好，世界！\nEmoji: 👋🏽 👨‍👩‍👧 — done ✓", h.Text(buf))
  assert_true(changes >= 3, 'the buffer changed ' .. changes .. ' times (streamed piece by piece)')
  assert_equal(windows + 1, winnr('$'))
  assert_equal(buf, bufnr('%'))
  assert_equal('nofile', getbufvar(buf, '&buftype'))
  var req = h.Events('unicode', 'request')
  assert_equal(1, len(req))
  assert_equal('Say hello in Chinese', req[0].body.messages[-1].content)
  assert_equal('Bearer sk-test-token', req[0].headers.authorization)
  assert_equal('deepseek-chat', req[0].body.model)
enddef

def Test_range_is_sent_with_the_prompt()
  h.Use('hello')
  enew
  setline(1, ['local a = 1', 'local function add(x, y)', '  return x + y', 'end'])
  setlocal filetype=lua
  var buf = h.Ask(':2,4LlmAsk Explain this')
  h.WaitStatus(buf, 'done')
  assert_equal('Hello, world!', h.Text(buf))
  assert_equal("Explain this\n\n```lua\nlocal function add(x, y)\n  return x + y\nend\n```",
    h.Events('hello', 'request')[0].body.messages[-1].content)
enddef

def Test_takes_an_autodev_customllms_entry_as_the_settings()
  g:llm_sidecar_settings = {
    name: 'Mock',
    url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', h.mock.port),
    auth: {type: 'Bearer', token: 'sk-entry-token'},
    requestFormat: '{"customFields": {"model": "mock-model", "stream": true}}',
    responseFormat: '$.choices[0].delta.content',
    modelType: 'Default',
  }
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'done')
  assert_equal('Hello, world!', h.Text(buf))
  var req = h.Events('hello', 'request')[0]
  assert_equal('Bearer sk-entry-token', req.headers.authorization)
  assert_equal('mock-model', req.body.model)
  assert_equal(v:true, req.body.stream)
enddef

def Test_has_its_help()
  var dir = tempname()
  mkdir(dir .. '/doc', 'p')
  writefile(readfile(h.ROOT .. '/doc/llm-sidecar.txt'), dir .. '/doc/llm-sidecar.txt')
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
  h.Use('reasoning')
  var buf = h.Ask('LlmAsk What is six times seven?')
  h.WaitStatus(buf, 'done')
  assert_equal(['Reasoning:', 'Let me think about it.', 'Step two.', '---', 'The answer is 42.'], getbufline(buf, 1, '$'))
  var win = win_findbuf(buf)[0]
  assert_equal('1', trim(win_execute(win, 'echo foldclosed(2)')))
  assert_equal('3', trim(win_execute(win, 'echo foldclosedend(1)')))
  assert_equal('-1', trim(win_execute(win, 'echo foldclosed(5)')))
enddef

def Test_cancel_keeps_the_partial_text_and_closes_the_upstream()
  h.Use('slow')
  var buf = h.Ask('LlmAsk Write a long story')
  h.WaitFor('the first chunks', () => h.Text(buf) == 'partial 答案 🚀')
  assert_equal('streaming', h.Status(buf))
  LlmCancel
  assert_equal('cancelled', h.Status(buf))
  h.WaitFor('the mock server to see the client disconnect', () => len(h.Events('slow', 'disconnected')) == 1)
  sleep 300m
  assert_equal('partial 答案 🚀', h.Text(buf))
  assert_equal('cancelled', h.Status(buf))
  assert_match('llm-sidecar: cancelled (1)', h.Messages())
  assert_notmatch('ErrorMsg\|exited', h.Messages())
enddef

def Test_wiping_out_a_streaming_answer_cancels_it()
  h.Use('slow')
  var buf = h.Ask('LlmAsk hi')
  h.WaitFor('the first chunks', () => h.Text(buf) == 'partial 答案 🚀')
  execute 'bwipeout! ' .. buf
  h.WaitFor('the mock server to see the client disconnect', () => len(h.Events('slow', 'disconnected')) == 1)
  assert_notmatch('exited\|ErrorMsg', h.Messages())
enddef

def Test_http_error_shows_the_provider_message()
  h.Use('unauthorized')
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'error')
  assert_match('llm-sidecar: LLM server answered HTTP 401: Incorrect API key provided', h.Messages())
  assert_equal('', h.Text(buf))
enddef

def Test_no_match_shows_the_suggested_path()
  h.Use('othershape', {customEngineResponseFormat: '$.choices[0].delta.text'})
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'error')
  assert_match('suggested path: \$\.choices\[0\]\.delta\.content (gives "AlphaBeta")', h.Messages())
enddef

def Test_two_asks_at_once_stream_into_two_buffers()
  h.Use('slow')
  var first = h.Ask('LlmAsk first')
  h.WaitFor('the first answer to start', () => h.Text(first) == 'partial 答案 🚀')
  var pid = h.SidecarPid()
  h.Use('hare')
  var second = h.Ask('LlmAsk second')
  assert_notequal(first, second)
  h.WaitStatus(second, 'done')
  assert_equal('fast one', h.Text(second))
  assert_equal('streaming', h.Status(first))
  assert_equal('partial 答案 🚀', h.Text(first))
  assert_equal(pid, h.SidecarPid())
  win_gotoid(win_findbuf(first)[0])
  LlmCancel
  assert_equal('cancelled', h.Status(first))
  assert_equal('done', h.Status(second))
  h.WaitFor('the disconnect', () => len(h.Events('slow', 'disconnected')) == 1)
enddef

def Test_test_connection_and_presets()
  h.Use('hello')
  LlmTestConnection
  h.WaitFor('the report', () => h.Messages() =~ 'connection OK')
  assert_match('HTTP 200, text/event-stream', h.Messages())
  assert_match('sample: Hello, world!', h.Messages())
  h.Use('unauthorized')
  LlmTestConnection
  h.WaitFor('the failure', () => h.Messages() =~ 'connection test failed')
  assert_match('connection test failed: LLM server answered HTTP 401: Incorrect API key provided', h.Messages())
  LlmPresets
  h.WaitFor('the presets buffer', () => bufnr('llm-sidecar://presets') != -1 && h.Text(bufnr('llm-sidecar://presets')) =~ 'deepseek')
  var text = h.Text(bufnr('llm-sidecar://presets'))
  assert_match("\nollama\n", text)
  assert_match('https://api.deepseek.com/v1/chat/completions', text)
enddef

def Test_stderr_goes_to_the_log_buffer_and_vimleavepre_stops_the_sidecar()
  llm_sidecar.Stop()
  g:llm_sidecar_log_level = 'debug'
  h.Use('hello')
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'done')
  unlet g:llm_sidecar_log_level
  var pid = h.SidecarPid()
  assert_true(pid > 0)
  h.WaitFor('sidecar log lines', () => bufnr('llm-sidecar://log') != -1 && h.Text(bufnr('llm-sidecar://log')) =~ 'DEBUG')
  assert_notmatch('sk-test-token', h.Text(bufnr('llm-sidecar://log')))
  doautocmd VimLeavePre
  h.WaitFor('the sidecar to exit', () => !isdirectory('/proc/' .. pid))
  assert_false(llm_sidecar.IsRunning())
  assert_notmatch('exited', h.Messages())
  var again = h.Ask('LlmAsk again')
  h.WaitStatus(again, 'done')
  assert_equal('Hello, world!', h.Text(again))
  assert_notequal(pid, h.SidecarPid())
enddef

def Test_a_sidecar_killed_mid_stream_is_reported_and_restarted()
  h.Use('slow')
  var buf = h.Ask('LlmAsk hi')
  h.WaitFor('the first chunks', () => h.Text(buf) == 'partial 答案 🚀')
  system('kill -9 ' .. h.SidecarPid())
  h.WaitStatus(buf, 'error')
  assert_match('while answering; the partial text is kept in llm-sidecar://', h.Messages())
  assert_match('llm-sidecar exited with code -1', h.Messages())
  assert_equal('partial 答案 🚀', h.Text(buf))
  h.Use('hello')
  var again = h.Ask('LlmAsk again')
  h.WaitStatus(again, 'done')
  assert_equal('Hello, world!', h.Text(again))
enddef

def Test_a_missing_binary_is_reported()
  llm_sidecar.Stop()
  g:llm_sidecar_cmd = ['/nonexistent/llm-sidecar']
  h.Use('hello')
  execute 'LlmAsk hi'
  assert_match('cannot run /nonexistent/llm-sidecar', h.Messages())
  g:llm_sidecar_cmd = [h.BIN]
enddef
