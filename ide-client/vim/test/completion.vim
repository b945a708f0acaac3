vim9script
# Ghost-text completion against the real sidecar and the mock's fim scenarios.
# Sourced by run.vim, which runs every Test_ function with a fresh mock server.
import autoload 'llm_sidecar.vim'
import autoload 'llm_sidecar/completion.vim'
import './helpers.vim' as h

def Test_llmcomplete_shows_ghost_text_at_the_cursor_with_the_text_around_it()
  g:llm_sidecar_completion = h.FimSettings('fim')
  var before = '    s = "日本🎌" + '
  var buf = h.Scratch(['# 你好 👋🏽 — 日本', 'def add(a, b):', before .. 'rest', '', 'print(add(1, 2))'])
  cursor(3, len(before) + 1)
  h.CompleteAndWait('shown')
  assert_equal({lnum: 3, col: len(before), first: 'total = a + b', rest: ['    return total']}, h.Ghost(buf))
  assert_equal("total = a + b\n    return total", completion.Suggestion())
  var req = h.Events('fim', 'request')
  assert_equal(1, len(req))
  assert_equal("# 你好 👋🏽 — 日本\ndef add(a, b):\n" .. before, req[0].body.prompt)
  assert_equal("rest\n\nprint(add(1, 2))", req[0].body.suffix)
  assert_equal('Bearer sk-fim-token', req[0].headers.authorization)
  assert_equal(before .. 'rest', getline(3))
enddef

def Test_llmaccept_inserts_it_exactly_as_one_undo_step()
  g:llm_sidecar_completion = h.FimSettings('fim')
  var buf = h.Scratch(['def add(a, b):', '    ', 'print(add(1, 2))'])
  cursor(2, 4)   # on the last character: the completion goes after it
  h.CompleteAndWait('shown')
  assert_equal({lnum: 2, col: 4, first: 'total = a + b', rest: ['    return total']}, h.Ghost(buf))
  &undolevels = &undolevels
  LlmAccept
  assert_equal(['def add(a, b):', '    total = a + b', '    return total', 'print(add(1, 2))'], getline(1, '$'))
  assert_equal(3, line('.'))
  assert_equal({}, h.Ghost(buf))
  silent undo
  assert_equal(['def add(a, b):', '    ', 'print(add(1, 2))'], getline(1, '$'))
enddef

def Test_an_edit_that_does_not_match_removes_the_ghost_text()
  g:llm_sidecar_completion = h.FimSettings('fim')
  var buf = h.Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  h.CompleteAndWait('shown')
  setline(2, '    z')
  # listener_flush(): what a redraw does, and -es never redraws
  h.WaitFor('the suggestion to go', () => {
    listener_flush(buf)
    return !completion.Visible()
  })
  assert_equal({}, h.Ghost(buf))
  assert_equal('cleared', h.CompletionStatus())
enddef

def Test_a_newer_completion_request_cancels_the_older()
  g:llm_sidecar_completion = h.FimSettings('fimslow')
  var buf = h.Scratch(['def add(a, b):', '    '])
  var dir = tempname()
  execute 'keepalt file ' .. dir .. '/first.py'
  cursor(2, 4)
  LlmComplete
  h.WaitFor('the slow request to reach the server', () => len(h.Events('fimslow', 'request')) == 1)
  assert_equal('requesting', h.CompletionStatus())
  # Another path: the sidecar, which replaces a request for the same document by itself, sees two documents, so
  # only the client's $/cancelRequest closes the first request.
  execute 'keepalt file ' .. dir .. '/second.py'
  g:llm_sidecar_completion = h.FimSettings('fim')
  h.CompleteAndWait('shown')
  h.WaitFor('the server to see the slow request closed', () => len(h.Events('fimslow', 'disconnected')) == 1)
  assert_equal('total = a + b', h.Ghost(buf).first)
  assert_notmatch('Error\|failed', h.Messages())
enddef

def Test_customllms_completion_entry_serves_ghost_text_and_default_entry_chat()
  llm_sidecar.Stop()
  unlet! g:llm_sidecar_settings
  var Entries = (fim: string) => [
    {name: 'Chat', url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', h.mock.port),
      auth: {type: 'Bearer', token: 'sk-chat'}, modelType: 'Default',
      requestFormat: '{"customFields": {"model": "chat-model", "stream": true}}',
      responseFormat: '$.choices[0].delta.content'},
    {name: 'Coder', url: printf('http://127.0.0.1:%d/%s/v1/completions', h.mock.port, fim),
      auth: {type: 'Bearer', token: 'sk-coder'}, modelType: 'Completion',
      requestFormat: '{"customFields": {"model": "coder-model", "stream": true}}',
      responseFormat: '$.choices[0].text', fim: {multiline: true}},
  ]
  g:llm_sidecar_custom_llms = Entries('fim')
  var answer = h.Ask('LlmAsk hi')
  h.WaitStatus(answer, 'done')
  assert_equal('Hello, world!', h.Text(answer))
  var chat = h.Events('hello', 'request')
  assert_equal('Bearer sk-chat', chat[0].headers.authorization)
  assert_equal('chat-model', chat[0].body.model)
  var buf = h.Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  h.CompleteAndWait('shown')
  assert_equal('total = a + b', h.Ghost(buf).first)
  assert_equal('Bearer sk-coder', h.Events('fim', 'request')[0].headers.authorization)
  # a changed list reaches the running sidecar
  var pid = h.SidecarPid()
  g:llm_sidecar_custom_llms = Entries('fimunicode')
  h.CompleteAndWait('shown')
  assert_equal('print("你好 👋🏽")', h.Ghost(buf).first)
  assert_equal(pid, h.SidecarPid())
enddef

def Test_completion_llm_name_picks_a_customllms_entry()
  g:llm_sidecar_custom_llms = [
    {name: 'Chat', url: printf('http://127.0.0.1:%d/hello/v1/chat/completions', h.mock.port), modelType: 'Default',
      responseFormat: '$.choices[0].delta.content'},
    {name: 'Coder', url: printf('http://127.0.0.1:%d/fimunicode/v1/completions', h.mock.port),
      requestFormat: '{"customFields": {"model": "coder-model"}}', responseFormat: '$.choices[0].text'}]
  g:llm_sidecar_completion = {llm: 'Coder'}
  var buf = h.Scratch(['x = 1', ''])
  cursor(2, 1)
  h.CompleteAndWait('shown')
  assert_equal('print("你好 👋🏽")', h.Ghost(buf).first)
  assert_equal('coder-model', h.Events('fimunicode', 'request')[0].body.model)
  assert_equal([], h.Events('hello', 'request'))
enddef

def Test_completion_errors_are_shown_once_until_the_settings_change()
  g:llm_sidecar_completion = h.FimSettings('fimerror')
  var buf = h.Scratch(['def add(a, b):', '    '])
  cursor(2, 4)
  h.CompleteAndWait('error')
  h.CompleteAndWait('error')
  h.CompleteAndWait('error')
  assert_equal(3, len(h.Events('fimerror', 'request')))
  assert_equal(1, h.CountMatches(h.Messages(), 'FIM backend exploded'))
  assert_equal(3, h.CountMatches(h.Text(bufnr('llm-sidecar://log')), 'completion failed: .*FIM backend exploded'))
  assert_equal({}, h.Ghost(buf))
  g:llm_sidecar_completion = h.FimSettings('fimerror', {model: 'other'})
  h.CompleteAndWait('error')
  assert_equal(2, h.CountMatches(h.Messages(), 'FIM backend exploded'))
enddef

# Typing is driven in a second Vim in a hidden terminal (term_sendkeys), so its Insert mode sees keys as a user's:
# a timer in it writes its state to a file, which the test reads.
def Test_ghost_text_while_typing_in_a_vim_in_a_terminal()
  var dir = tempname()
  mkdir(dir, 'p')
  var state = dir .. '/state.json'
  writefile(['vim9script',
    'set encoding=utf-8',
    '&runtimepath = ' .. string(h.ROOT) .. ' .. "," .. &runtimepath',
    'runtime plugin/llm_sidecar.vim',
    'import autoload "llm_sidecar/completion.vim"',
    'g:llm_sidecar_cmd = [' .. string(h.BIN) .. ']',
    'g:llm_sidecar_completion = json_decode(' .. string(json_encode(h.FimSettings('fim'))) .. ')',
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
    h.WaitFor('the second Vim to start', () => Read())
    term_sendkeys(term, 'Go    ')
    h.WaitFor('ghost text after the pause', () => Read() && st.suggestion != '')
    assert_equal('i', st.mode)
    assert_equal("total = a + b\n    return total", st.suggestion)
    assert_equal(4, st.col)
    var req = h.Events('fim', 'request')
    assert_equal(1, len(req))
    assert_equal("def add(a, b):\n    ", req[0].body.prompt)
    assert_equal('', req[0].body.suffix)

    # typing along the suggestion: the rest stays, and the next request is answered by the sidecar's cache
    var answers = st.stats.answers
    term_sendkeys(term, 'tot')
    h.WaitFor('the request after typing', () => Read() && st.stats.answers > answers)
    assert_equal("al = a + b\n    return total", st.suggestion)
    assert_equal(7, st.col)
    assert_equal(1, st.stats.cached)
    assert_equal(1, len(h.Events('fim', 'request')))

    # a key that does not match removes it at once; a new request follows the pause
    var cleared = st.stats.cleared
    term_sendkeys(term, 'x')
    h.WaitFor('the key to be typed', () => Read() && st.lines[1] == '    totx')
    assert_true(st.stats.cleared > cleared, 'the suggestion was removed')
    h.WaitFor('a new suggestion after the pause', () => Read() && st.suggestion != '' && st.col == 8)

    term_sendkeys(term, "\<Tab>")
    h.WaitFor('the accepted text', () => Read() && len(st.lines) == 3)
    assert_equal(['def add(a, b):', '    totxtotal = a + b', '    return total'], st.lines)
    assert_equal('i', st.mode)
    assert_equal([3, 17], st.cursor)
    term_sendkeys(term, "\<Esc>u")
    h.WaitFor('the undo', () => Read() && len(st.lines) == 2)
    assert_equal(['def add(a, b):', '    totx'], st.lines)
  finally
    term_sendkeys(term, "\<Esc>:qa!\<CR>")
    h.WaitFor('the second Vim to exit', () => job_status(term_getjob(term)) != 'run', 5000)
    execute 'bwipeout! ' .. term
    delete(dir, 'rf')
  endtry
enddef
