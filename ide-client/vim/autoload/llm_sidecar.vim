vim9script
# llm-sidecar client for Vim 9: one sidecar process per Vim, spoken to through a job channel in "lsp" mode
# (Vim does the JSON-RPC framing); answers stream into scratch buffers. See :help llm-sidecar.

import autoload 'llm_sidecar/keys.vim'

var job: job
var chan: channel
var streams: dict<dict<any>> = {}   # streamId -> answer state
var count = 0
var stopping = false
var sent_config: dict<any> = {}     # what the running sidecar was configured with
var config_generation = 0          # increases whenever the configuration sent changes

const LOG_NAME = 'llm-sidecar://log'
const REASONING_HEADER = 'Reasoning:'
const REASONING_END = '---'

export def Error(msg: string)
  echohl ErrorMsg
  for line in split(msg, "\n")
    echomsg line
  endfor
  echohl None
enddef

def Info(msg: string)
  for line in split(msg, "\n")
    echomsg line
  endfor
enddef

def Cmd(): list<string>
  var cmd = get(g:, 'llm_sidecar_cmd', ['llm-sidecar'])
  return type(cmd) == v:t_string ? [cmd] : cmd
enddef

# Adds the request's settings selection to params: g:llm_sidecar_settings (any settings form, with
# g:llm_sidecar_token_env / g:llm_sidecar_token_command as its key source), g:llm_sidecar_llm, g:llm_sidecar_profile.
# False (after an error) when the settings must not be sent.
def Selection(params: dict<any>): bool
  if exists('g:llm_sidecar_settings')
    var settings = keys.Apply(g:llm_sidecar_settings, 'g:llm_sidecar_token_env', 'g:llm_sidecar_token_command')
    if !keys.Check(settings, 'g:llm_sidecar_settings')
      return false
    endif
    params.settings = settings
  endif
  if exists('g:llm_sidecar_llm')
    params.llm = g:llm_sidecar_llm
  endif
  if exists('g:llm_sidecar_profile')
    params.profile = g:llm_sidecar_profile
  endif
  return true
enddef

# --- configuration: g:llm_sidecar_custom_llms, g:llm_sidecar_profiles, g:llm_sidecar_completion ---------------------
# Sent as initializationOptions when the sidecar starts, and with workspace/didChangeConfiguration before the next
# request after one of them changed.

# [ok, configuration]; ok is false (after an error) when a part must not go over the pipe.
def Configuration(): list<any>
  var c: dict<any> = {}
  if exists('g:llm_sidecar_custom_llms')
    if !keys.CheckList(g:llm_sidecar_custom_llms)
      return [false, {}]
    endif
    c.customLlms = g:llm_sidecar_custom_llms
  endif
  if exists('g:llm_sidecar_profiles')
    for [name, p] in items(g:llm_sidecar_profiles)
      if !keys.Check(p, 'g:llm_sidecar_profiles[' .. name .. ']')
        return [false, {}]
      endif
    endfor
    c.profiles = g:llm_sidecar_profiles
  endif
  if exists('g:llm_sidecar_completion')
    if !keys.Check(g:llm_sidecar_completion, 'g:llm_sidecar_completion')
      return [false, {}]
    endif
    c.completion = g:llm_sidecar_completion
  endif
  return [true, c]
enddef

# The configuration as it was last sent, and its generation (the completion errors are shown again after a change).
export def ConfigGeneration(): number
  return config_generation
enddef

def ShowConfigurationProblems(msg: dict<any>)
  var problems = get(get(get(msg, 'result', {}), 'configuration', {}), 'problems', [])
  if type(problems) != v:t_list || empty(problems)
    return
  endif
  Error(join(['llm-sidecar: configuration problems:']
    + mapnew(problems, (_, p) => '  ' .. get(p, 'field', '') .. ': ' .. get(p, 'message', '')), "\n"))
enddef

# Tells a running sidecar what changed since the configuration it was given.
def Sync()
  var [ok, cfg] = Configuration()
  if !ok || cfg == sent_config
    return
  endif
  var change = deepcopy(cfg)
  if has_key(sent_config, 'customLlms') && !has_key(cfg, 'customLlms')
    change.customLlms = []
  endif
  if has_key(sent_config, 'profiles') && !has_key(cfg, 'profiles')
    change.profiles = {}
  endif
  if has_key(sent_config, 'completion') && !has_key(cfg, 'completion')
    change.completion = v:null
  endif
  sent_config = cfg
  config_generation += 1
  ch_sendexpr(chan, {method: 'workspace/didChangeConfiguration', params: {settings: change}})
enddef

export def IsRunning(): bool
  return job_status(job) == 'run'
enddef

# Starts the sidecar when needed and sends it what changed in the configuration. For the completion module.
export def EnsureStarted(): bool
  if !Start()
    return false
  endif
  Sync()
  return true
enddef

export def Channel(): channel
  return chan
enddef

# A line of the client's own in the log buffer (llm-sidecar://log).
export def Log(msg: string)
  var buf = bufnr(LOG_NAME)
  if buf == -1
    buf = bufadd(LOG_NAME)
    bufload(buf)
    setbufvar(buf, '&buftype', 'nofile')
  endif
  appendbufline(buf, '$', strftime('%Y-%m-%dT%H:%M:%S') .. ' [client] ' .. msg)
enddef

export def Pid(): number
  return IsRunning() ? job_info(job).process : 0
enddef

def Start(): bool
  if IsRunning()
    return true
  endif
  if &encoding != 'utf-8'
    Error('llm-sidecar: needs :set encoding=utf-8 (it is ' .. &encoding .. ')')
    return false
  endif
  var cmd = Cmd()
  if empty(cmd) || !executable(cmd[0])
    Error('llm-sidecar: cannot run ' .. (empty(cmd) ? '(empty g:llm_sidecar_cmd)' : cmd[0])
      .. ' (not found or not executable); set g:llm_sidecar_cmd')
    return false
  endif
  var opts: dict<any> = {
    in_mode: 'lsp',
    out_mode: 'lsp',
    out_cb: (_, msg) => OnMessage(msg),
    # stderr (the sidecar's log) goes line by line into a hidden buffer: :LlmLog
    err_io: 'buffer',
    err_name: LOG_NAME,
    err_msg: false,
    exit_cb: (j, code) => OnExit(j, code),
    noblock: true,
  }
  if exists('g:llm_sidecar_log_level')
    opts.env = {LLM_SIDECAR_LOG: g:llm_sidecar_log_level}
  endif
  job = job_start(cmd, opts)
  if job_status(job) != 'run'
    Error('llm-sidecar: could not start ' .. join(cmd))
    return false
  endif
  chan = job_getchannel(job)
  stopping = false
  var [ok, cfg] = Configuration()
  var init: dict<any> = {processId: getpid(), clientInfo: {name: 'llm-sidecar.vim'}, capabilities: {}}
  if ok && !empty(cfg)
    init.initializationOptions = cfg
  endif
  if cfg != sent_config
    config_generation += 1
  endif
  sent_config = ok ? cfg : {}
  # The sidecar reads initialize and initialized before any later request: nothing waits for the answer.
  ch_sendexpr(chan, {method: 'initialize', params: init}, {callback: (_, msg) => ShowConfigurationProblems(msg)})
  ch_sendexpr(chan, {method: 'initialized', params: {}})
  augroup llm_sidecar
    autocmd!
    autocmd VimLeavePre * Stop()
  augroup END
  return true
enddef

def OnExit(j: job, code: number)
  # The answers this process was streaming end here, even when a newer process already runs.
  for st in values(streams)
    if st.status == 'streaming' && st.job == j
      SetStatus(st, 'error')
      Error(printf('llm-sidecar exited (code %d) while answering%s', code,
        st.text == '' ? '' : '; the partial text is kept in ' .. bufname(st.buf)))
    endif
  endfor
  if j == job && !stopping && code != 0
    Error(printf('llm-sidecar exited with code %d (its log: :LlmLog)', code))
  endif
enddef

# Stops the sidecar: shutdown, exit, and a kill if it is still running a second later. Runs on VimLeavePre.
export def Stop()
  if !IsRunning()
    return
  endif
  stopping = true
  for st in values(streams)
    if st.status == 'streaming'
      SetStatus(st, 'cancelled')
    endif
  endfor
  try
    ch_evalexpr(chan, {method: 'shutdown'}, {timeout: 1000})
    ch_sendexpr(chan, {method: 'exit'})
  catch
  endtry
  var waited = 0
  while job_status(job) == 'run' && waited < 100
    sleep 10m
    waited += 1
  endwhile
  if job_status(job) == 'run'
    job_stop(job, 'kill')
  endif
enddef

# --- answer buffers -------------------------------------------------------------------------------------------------

def SetStatus(st: dict<any>, status: string)
  st.status = status
  if bufexists(st.buf)
    setbufvar(st.buf, 'llm_sidecar_status', status)
  endif
enddef

# Appends text at line lnum (1-based): the line's end gets the first piece, new lines the rest. Returns the number
# of lines added.
def AppendAt(buf: number, lnum: number, text: string): number
  var pieces = split(text, "\n", true)
  var line = get(getbufline(buf, lnum), 0, '')
  setbufline(buf, lnum, line .. pieces[0])
  if len(pieces) > 1
    appendbufline(buf, lnum, pieces[1 :])
  endif
  return len(pieces) - 1
enddef

def FollowEnd(buf: number, old_count: number)
  for win in win_findbuf(buf)
    if line('.', win) >= old_count
      win_execute(win, 'normal! G')
    endif
  endfor
enddef

def FoldReasoning(st: dict<any>)
  if st.rlines == 0 || st.folded || !bufexists(st.buf)
    return
  endif
  st.folded = true
  for win in win_findbuf(st.buf)
    win_execute(win, ['setlocal foldmethod=manual foldenable', 'silent! normal! zE',
      printf('silent :1,%dfold', st.rlines - 1)])
  endfor
enddef

def OnChunk(p: dict<any>)
  var sid = get(p, 'streamId', '')
  var st = get(streams, type(sid) == v:t_string ? sid : string(sid), {})
  if empty(st) || st.status != 'streaming' || !bufexists(st.buf)
    return
  endif
  var text = get(p, 'text', '')
  if type(text) != v:t_string || text == ''
    return
  endif
  var buf = st.buf
  var old = len(getbufline(buf, 1, '$'))
  st.chunks += 1
  if get(p, 'kind', 'content') == 'reasoning'
    st.reasoning ..= text
    if st.rlines == 0
      appendbufline(buf, 0, [REASONING_HEADER, '', REASONING_END])
      st.rlines = 3
    endif
    st.rlines += AppendAt(buf, st.rlines - 1, text)
  else
    FoldReasoning(st)
    st.text ..= text
    AppendAt(buf, old, text)
  endif
  FollowEnd(buf, old)
enddef

def OnMessage(msg: any)
  if type(msg) != v:t_dict
    return
  endif
  var method = get(msg, 'method', '')
  if method == 'llm/chunk'
    OnChunk(get(msg, 'params', {}))
  elseif method == 'window/showMessage'
    Error('llm-sidecar: ' .. get(get(msg, 'params', {}), 'message', ''))
  endif
enddef

# --- errors ---------------------------------------------------------------------------------------------------------

def OneLine(s: string, max: number): string
  var t = substitute(s, '\_s\+', ' ', 'g')
  return strchars(t) > max ? strcharpart(t, 0, max) .. '…' : t
enddef

# The text shown for a JSON-RPC error from the sidecar.
export def FormatError(err: dict<any>): string
  var msg = 'llm-sidecar: ' .. (type(get(err, 'message', 0)) == v:t_string ? err.message : 'error ' .. string(get(err, 'code', '')))
  var data = get(err, 'data', {})
  if type(data) == v:t_dict
    for p in get(data, 'problems', [])
      msg ..= "\n  " .. get(p, 'field', '') .. ': ' .. get(p, 'message', '')
    endfor
    var sugg = get(data, 'suggestions', [])
    if get(data, 'kind', '') == 'no_match' && type(sugg) == v:t_list && !empty(sugg)
      msg ..= "\nsuggested path: " .. sugg[0].path
      if type(get(sugg[0], 'sampleText', 0)) == v:t_string
        msg ..= ' (gives "' .. OneLine(sugg[0].sampleText, 60) .. '")'
      endif
    endif
  endif
  return msg
enddef

def OnDone(sid: string, msg: dict<any>)
  var st = get(streams, sid, {})
  if empty(st) || st.status != 'streaming'
    return
  endif
  if has_key(msg, 'error')
    st.error = msg.error
    SetStatus(st, 'error')
    var text = FormatError(msg.error)
    if st.text != ''
      text ..= "\n(the partial answer is kept in " .. bufname(st.buf) .. ')'
    endif
    Error(text)
  else
    st.result = get(msg, 'result', {})
    FoldReasoning(st)
    SetStatus(st, 'done')
  endif
enddef

# --- commands -------------------------------------------------------------------------------------------------------

# Asks the LLM: prompt, then the context (a selection) in a fenced block. Returns the answer buffer, or 0.
export def Ask(prompt: string, context: string = '', filetype: string = ''): number
  var content = prompt
  if context != ''
    content = (prompt != '' ? prompt .. "\n\n" : '') .. '```' .. filetype .. "\n" .. context .. "\n```"
  endif
  if content =~ '^\_s*$'
    Error('llm-sidecar: nothing to ask (:LlmAsk {prompt}, or give a range)')
    return 0
  endif
  var sel: dict<any> = {}
  if !Selection(sel) || !EnsureStarted()
    return 0
  endif
  count += 1
  var sid = printf('vim-%d-%d', getpid(), count)
  var buf = bufadd(printf('llm-sidecar://%d', count))
  bufload(buf)
  setbufvar(buf, '&buftype', 'nofile')
  setbufvar(buf, '&bufhidden', 'hide')
  setbufvar(buf, '&swapfile', 0)
  setbufvar(buf, '&buflisted', 0)
  setbufvar(buf, '&filetype', 'markdown')
  setbufvar(buf, 'llm_sidecar_prompt', prompt)
  var st: dict<any> = {id: sid, buf: buf, status: 'streaming', text: '', reasoning: '', chunks: 0, rlines: 0,
    folded: false, request: 0, job: job}
  streams[sid] = st
  SetStatus(st, 'streaming')
  # Wiping the buffer out cancels its request.
  execute printf('autocmd BufWipeout <buffer=%d> ++once OnWipeout(%s)', buf, string(sid))
  execute get(g:, 'llm_sidecar_split', 'belowright split')
  silent execute 'buffer ' .. buf

  var messages: list<dict<string>> = []
  if exists('g:llm_sidecar_system')
    add(messages, {role: 'system', content: g:llm_sidecar_system})
  endif
  add(messages, {role: 'user', content: content})
  var req = ch_sendexpr(chan, {method: 'llm/complete', params: extend(sel, {streamId: sid, messages: messages})},
    {callback: (_, msg) => OnDone(sid, msg)})
  st.request = type(req) == v:t_dict ? get(req, 'id', 0) : 0
  return buf
enddef

# :[range]LlmAsk {prompt}
export def AskCommand(args: string, range: number, line1: number, line2: number): number
  if range > 0
    return Ask(args, join(getline(line1, line2), "\n"), &filetype)
  endif
  return Ask(args)
enddef

def OnWipeout(sid: string)
  var st = get(streams, sid, {})
  if !empty(st) && st.status == 'streaming' && IsRunning() && st.request != 0
    ch_sendexpr(chan, {method: '$/cancelRequest', params: {id: st.request}})
    st.status = 'cancelled'
  endif
  remove(streams, sid)
enddef

# Cancels the answer of the current buffer if it streams, else the latest streaming one; all: every one.
export def Cancel(all: bool = false, quiet: bool = false): number
  var targets: list<dict<any>> = []
  var cur = {}
  for st in values(streams)
    if st.buf == bufnr('%') && st.status == 'streaming'
      cur = st
    endif
  endfor
  if all
    targets = filter(values(streams), (_, st) => st.status == 'streaming')
  elseif !empty(cur)
    targets = [cur]
  else
    var latest = {}
    for st in values(streams)
      if st.status == 'streaming' && (empty(latest) || st.buf > latest.buf)
        latest = st
      endif
    endfor
    targets = empty(latest) ? [] : [latest]
  endif
  if empty(targets)
    if !quiet
      Info('llm-sidecar: no answer is streaming')
    endif
    return 0
  endif
  for st in targets
    if IsRunning() && st.request != 0
      ch_sendexpr(chan, {method: '$/cancelRequest', params: {id: st.request}})
    endif
    SetStatus(st, 'cancelled')
    FoldReasoning(st)
  endfor
  if !quiet
    Info(printf('llm-sidecar: cancelled (%d)', len(targets)))
  endif
  return len(targets)
enddef

def OnTestConnection(msg: dict<any>)
  if has_key(msg, 'error')
    Error(FormatError(msg.error))
    return
  endif
  var r = get(msg, 'result', {})
  if get(r, 'ok', false)
    var lines = ['llm-sidecar: connection OK',
      printf('  HTTP %s, %s (read as %s)', get(r, 'status', '?'), get(r, 'contentType', '?'), get(r, 'detectedResponseType', '?')),
      printf('  first byte %s ms, total %s ms', get(r, 'firstByteMs', '?'), get(r, 'totalMs', '?'))]
    if type(get(r, 'sampleText', 0)) == v:t_string
      add(lines, '  sample: ' .. OneLine(r.sampleText, 120))
    endif
    Info(join(lines, "\n"))
  else
    var text = substitute(FormatError(get(r, 'error', {})), '^llm-sidecar: ', 'llm-sidecar: connection test failed: ', '')
    var sugg = get(r, 'suggestions', [])
    if type(sugg) == v:t_list && !empty(sugg) && stridx(text, 'suggested path') < 0
      text ..= "\nsuggested path: " .. sugg[0].path
    endif
    Error(text)
  endif
enddef

export def TestConnection()
  var sel: dict<any> = {}
  if Selection(sel) && EnsureStarted()
    ch_sendexpr(chan, {method: 'llm/testConnection', params: sel}, {callback: (_, msg) => OnTestConnection(msg)})
  endif
enddef

def OnPresets(msg: dict<any>)
  if has_key(msg, 'error')
    Error(FormatError(msg.error))
    return
  endif
  var lines = ['llm-sidecar presets: use one as g:llm_sidecar_settings = {preset: "<name>", customEngineToken: "..."}', '']
  for p in get(get(msg, 'result', {}), 'presets', [])
    var aliases = get(p, 'aliases', [])
    add(lines, p.name .. (empty(aliases) ? '' : ' (' .. join(aliases, ', ') .. ')'))
    if type(get(p, 'description', 0)) == v:t_string
      add(lines, '    ' .. OneLine(p.description, 200))
    endif
    var url = type(get(p, 'urlHint', 0)) == v:t_string ? p.urlHint : get(get(p, 'settings', {}), 'customEngineServer', '')
    if type(url) == v:t_string && url != ''
      add(lines, '    ' .. url)
    endif
  endfor
  var buf = bufadd('llm-sidecar://presets')
  bufload(buf)
  setbufvar(buf, '&buftype', 'nofile')
  setbufvar(buf, '&bufhidden', 'hide')
  setbufvar(buf, '&swapfile', 0)
  deletebufline(buf, 1, '$')
  setbufline(buf, 1, lines)
  if empty(win_findbuf(buf))
    execute get(g:, 'llm_sidecar_split', 'belowright split')
    silent execute 'buffer ' .. buf
  endif
enddef

export def Presets()
  if Start()
    ch_sendexpr(chan, {method: 'llm/presets', params: {}}, {callback: (_, msg) => OnPresets(msg)})
  endif
enddef

export def OpenLog()
  var buf = bufnr(LOG_NAME)
  if buf == -1
    buf = bufadd(LOG_NAME)
    bufload(buf)
    setbufvar(buf, '&buftype', 'nofile')
  endif
  if empty(win_findbuf(buf))
    execute get(g:, 'llm_sidecar_split', 'belowright split')
    silent execute 'buffer ' .. buf
  endif
enddef
