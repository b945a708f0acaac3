vim9script
# What the Vim client's test files share: the mock LLM server, settings pointing at it, waiting on conditions,
# the answer and ghost-text inspectors. Imported by chat.vim, keys.vim and completion.vim; run.vim runs them.
import autoload 'llm_sidecar.vim'
import autoload 'llm_sidecar/completion.vim'

const HERE = expand('<sfile>:p:h')
export const ROOT = fnamemodify(HERE, ':h')
const MOCK = fnamemodify(ROOT .. '/../mock-llm/mock_llm.py', ':p')
export const BIN = empty($LLM_SIDECAR_BIN) ? fnamemodify(ROOT .. '/../../target/release/llm-sidecar', ':p') : $LLM_SIDECAR_BIN
const LOG = empty($VIM_TEST_LOG) ? '/dev/stdout' : $VIM_TEST_LOG
const TIMEOUT = 20000

export def Out(line: string)
  writefile([line], LOG, 'a')
enddef

export var mock: dict<any> = {}

export def StartMock()
  var dir = tempname() .. '-mock-llm'
  mkdir(dir, 'p')
  var j = job_start(['python3', MOCK, '--state-dir', dir, '--max-seconds', '600'], {out_io: 'null', err_io: 'null'})
  mock = {dir: dir, job: j, port: 0}
  WaitFor('the mock LLM server to listen', () => filereadable(dir .. '/port'))
  mock.port = str2nr(readfile(dir .. '/port')[0])
enddef

export def StopMock()
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
export def WaitFor(what: string, Cond: func(): bool, timeout: number = TIMEOUT): bool
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

export def Events(scenario: string, event: string = ''): list<dict<any>>
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
export def Settings(scenario: string, extra: dict<any> = {}): dict<any>
  var s: dict<any> = {
    preset: 'deepseek',
    customEngineServer: printf('http://127.0.0.1:%d/%s/v1/chat/completions', mock.port, scenario),
    customEngineToken: 'sk-test-token',
    retry: {maxRetries: 0},
  }
  return extend(s, extra)
enddef

export def Use(scenario: string, extra: dict<any> = {})
  g:llm_sidecar_settings = Settings(scenario, extra)
enddef

export def AnswerBuffers(): list<number>
  return getbufinfo()->filter((_, b) => b.name =~ '^llm-sidecar://\d\+$')->map((_, b) => b.bufnr)->sort('n')
enddef

# :LlmAsk ...; returns the new answer buffer.
export def Ask(cmdline: string): number
  var before = len(AnswerBuffers())
  execute cmdline
  var bufs = AnswerBuffers()
  assert_equal(before + 1, len(bufs), 'one new answer buffer')
  return bufs[-1]
enddef

export def Text(buf: number): string
  return join(getbufline(buf, 1, '$'), "\n")
enddef

export def Status(buf: number): string
  return getbufvar(buf, 'llm_sidecar_status', '')
enddef

export def WaitStatus(buf: number, want: string)
  WaitFor('status ' .. want .. ' of buffer ' .. buf, () => Status(buf) == want)
enddef

export def Messages(): string
  return execute('messages')
enddef

export def SidecarPid(): number
  return llm_sidecar.Pid()
enddef

# --- keys and completion -------------------------------------------------------------------------------------------


# Settings for a scenario without any token (the key source tests add theirs).
export def SettingsWithoutToken(scenario: string, extra: dict<any> = {}): dict<any>
  var s = Settings(scenario)
  remove(s, 'customEngineToken')
  return extend(s, extra)
enddef

# Code-completion settings for a fim* scenario of the mock (/v1/completions shape: choices[0].text).
export def FimSettings(scenario: string, extra: dict<any> = {}): dict<any>
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
export def Ghost(buf: number): dict<any>
  var out: dict<any> = {}
  if empty(prop_type_get('llm_sidecar_ghost'))
    return out   # nothing was ever shown
  endif
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

export def CompletionStatus(): string
  return get(b:, 'llm_sidecar_completion_status', '')
enddef

# :LlmComplete and wait for its answer; then the status must be `want`.
export def CompleteAndWait(want: string)
  var before = completion.Stats().answers
  LlmComplete
  WaitFor('the completion answer', () => completion.Stats().answers > before)
  assert_equal(want, CompletionStatus(), Messages())
enddef

export def Scratch(lines: list<string>): number
  enew!
  setlocal buftype=nofile
  setline(1, lines)
  return bufnr('%')
enddef

export def CountMatches(text: string, pat: string): number
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

# Starts a channel log (what a user debugging the channel sees); returns its file.
export def ChannelLog(): string
  var file = tempname()
  ch_logfile(file, 'w')
  return file
enddef

export def ChannelLogText(file: string): string
  ch_logfile('')
  return join(readfile(file), "\n")
enddef
