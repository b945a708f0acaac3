vim9script
# Ghost-text code completion: llm/inlineCompletion with the text before and after the cursor, the answer shown
# with text properties (virtual text: the first line at the cursor, the others below the line) and inserted by
# :LlmAccept. Requests are made when typing pauses (debounced), one in flight per buffer (a newer one cancels the
# older with $/cancelRequest). Which server answers is the sidecar's choice: g:llm_sidecar_completion or the
# g:llm_sidecar_custom_llms entry whose modelType is Completion. See :help llm-sidecar-completion.

import autoload 'llm_sidecar.vim' as main

const PROP = 'llm_sidecar_ghost'
const HL = 'LlmSidecarGhostText'
const CANCELLED = -32800
# Lines of context sent around the cursor at most (the sidecar's fim settings cut further).
const MAX_PREFIX_LINES = 1500
const MAX_SUFFIX_LINES = 500

var bufs: dict<dict<any>> = {}    # buffer number -> {req: {...}, shown: {...}}
var timer = 0
var error_generation = -1         # the configuration generation whose first error was shown
var stats: dict<number> = {requests: 0, answers: 0, cached: 0, shown: 0, cleared: 0}

def State(buf: number): dict<any>
  if !has_key(bufs, buf)
    bufs[buf] = {req: {}, shown: {}, listener: 0}
  endif
  return bufs[buf]
enddef

def SetStatus(buf: number, status: string)
  if bufexists(buf)
    setbufvar(buf, 'llm_sidecar_completion_status', status)
  endif
enddef

# Automatic requests: g:llm_sidecar_completion_enabled, else on when a completion server is configured.
def AutoEnabled(): bool
  if exists('g:llm_sidecar_completion_enabled')
    return !!g:llm_sidecar_completion_enabled
  endif
  if exists('g:llm_sidecar_completion')
    return true
  endif
  var list = get(g:, 'llm_sidecar_custom_llms', [])
  if type(list) == v:t_string
    try
      list = json_decode(list)
    catch
      return false
    endtry
  endif
  return type(list) == v:t_list
    && !empty(filter(copy(list), (_, e) => type(e) == v:t_dict && get(e, 'modelType', '') =~? '^completion$'))
enddef

# [lnum, byte column (0-based), mode] where a completion goes: the cursor in Insert mode; in Normal mode before
# the character under the cursor, or after it when it is the last one of the line.
def Anchor(): list<any>
  var lnum = line('.')
  var c = col('.') - 1
  var m = mode()[0]
  if m != 'i'
    var line = getline(lnum)
    var after = c + len(strcharpart(strpart(line, c), 0, 1))
    if after >= len(line)
      c = len(line)
    endif
  endif
  return [lnum, c, m]
enddef

# --- the ghost text -------------------------------------------------------------------------------------------------

def EnsurePropType()
  if empty(prop_type_get(PROP))
    execute 'highlight default link ' .. HL .. ' Comment'
    prop_type_add(PROP, {highlight: HL})
  endif
enddef

def Clear(buf: number)
  if has_key(bufs, buf)
    bufs[buf].shown = {}
  endif
  if bufexists(buf) && !empty(prop_type_get(PROP))
    prop_remove({type: PROP, bufnr: buf, all: true})
  endif
enddef

def Render(buf: number, s: dict<any>)
  EnsurePropType()
  prop_remove({type: PROP, bufnr: buf, all: true})
  var lines = split(s.text, "\n", true)
  if lines[0] != ''
    prop_add(s.lnum, s.col + 1, {type: PROP, bufnr: buf, text: lines[0]})
  endif
  for l in lines[1 :]
    # an empty virtual line still takes its row
    prop_add(s.lnum, 0, {type: PROP, bufnr: buf, text: l == '' ? ' ' : l, text_align: 'below'})
  endfor
enddef

# Edits made any way reach the listener; autocommands only see some of them.
def Listen(buf: number)
  var st = State(buf)
  if st.listener == 0
    st.listener = listener_add((b, _, _, _, _) => {
      timer_start(0, (_) => Revalidate(b))
    }, buf)
  endif
enddef

def Show(buf: number, s: dict<any>)
  stats.shown += 1
  var st = State(buf)
  st.shown = s
  Render(buf, s)
  Listen(buf)
  SetStatus(buf, 'shown')
enddef

# After an edit or a cursor move: keeps the suggestion when the user typed its first characters (the rest stays
# shown), else removes it. Safe to call more than once for the same change.
def Revalidate(buf: number)
  if !has_key(bufs, buf) || empty(bufs[buf].shown) || bufnr('%') != buf
    return
  endif
  var s = bufs[buf].shown
  var tick = getbufvar(buf, 'changedtick')
  var [lnum, c, m] = Anchor()
  if tick == s.tick && lnum == s.lnum && c == s.col
    return
  endif
  if m == 'i' && s.mode == 'i' && lnum == s.lnum && c > s.col
    var line = getline(lnum)
    var typed = strpart(line, s.col, c - s.col)
    if strpart(line, 0, s.col) == s.before && strpart(line, c) == s.after && len(typed) < len(s.text)
        && strpart(s.text, 0, len(typed)) == typed
      s.text = strpart(s.text, len(typed))
      s.col = c
      s.before = strpart(line, 0, c)
      s.tick = tick
      Render(buf, s)
      return
    endif
  endif
  Clear(buf)
  stats.cleared += 1
  SetStatus(buf, 'cleared')
enddef

# --- requests -------------------------------------------------------------------------------------------------------

def CancelRequest(buf: number)
  if !has_key(bufs, buf) || empty(bufs[buf].req)
    return
  endif
  var req = bufs[buf].req
  bufs[buf].req = {}
  if main.IsRunning() && req.id != 0
    ch_sendexpr(main.Channel(), {method: '$/cancelRequest', params: {id: req.id}})
  endif
enddef

def ReportError(buf: number, err: dict<any>)
  var msg = main.FormatError(err)
  main.Log('completion failed: ' .. substitute(msg, "\n", ' | ', 'g'))
  SetStatus(buf, 'error')
  if error_generation == main.ConfigGeneration()
    return
  endif
  error_generation = main.ConfigGeneration()
  main.Error(msg .. "\n(completion errors are only logged from now on, until the settings change: :LlmLog)")
enddef

def OnAnswer(buf: number, req: dict<any>, msg: dict<any>)
  if !has_key(bufs, buf) || bufs[buf].req isnot req
    return   # superseded or cancelled
  endif
  bufs[buf].req = {}
  stats.answers += 1
  if has_key(msg, 'error')
    if get(msg.error, 'code', 0) != CANCELLED
      ReportError(buf, msg.error)
    endif
    return
  endif
  var result = get(msg, 'result', {})
  if type(result) != v:t_dict
    result = {}
  endif
  if get(result, 'cached', false) == true
    stats.cached += 1
  endif
  var items = get(result, 'items', [])
  var text = type(items) == v:t_list && !empty(items) && type(items[0]) == v:t_dict ? get(items[0], 'insertText', '') : ''
  if type(text) != v:t_string || text == ''
    SetStatus(buf, 'empty')
    return
  endif
  # Only where it was asked for: the buffer, the cursor and the text are as they were.
  var [lnum, c, m] = Anchor()
  if bufnr('%') != buf || getbufvar(buf, 'changedtick') != req.tick || lnum != req.lnum || c != req.col
    return
  endif
  if pumvisible() || m =~# "^[vVsS\<C-v>\<C-s>]"
    return
  endif
  var line = getline(lnum)
  Show(buf, {text: text, lnum: lnum, col: c, tick: req.tick, mode: m, before: strpart(line, 0, c),
    after: strpart(line, c)})
enddef

# Asks for a completion at the cursor of the current buffer. manual: from :LlmComplete (any mode).
def Request(manual: bool)
  var buf = bufnr('%')
  var [lnum, c, m] = Anchor()
  if !manual && (m != 'i' || pumvisible())
    return
  endif
  if !main.EnsureStarted()
    return
  endif
  CancelRequest(buf)
  var before = getline(max([1, lnum - MAX_PREFIX_LINES]), lnum)
  var after = getline(lnum, lnum + MAX_SUFFIX_LINES)
  var line = getline(lnum)
  before[-1] = strpart(line, 0, c)
  after[0] = strpart(line, c)
  var params: dict<any> = {prefix: join(before, "\n"), suffix: join(after, "\n")}
  if manual
    params.invoked = true   # asked for: a fresh answer, not the cache's
  endif
  if &filetype != ''
    params.language = &filetype
  endif
  if expand('%:p') != ''
    params.path = expand('%:p')
  endif
  var req: dict<any> = {id: 0, lnum: lnum, col: c, tick: b:changedtick}
  var sent = ch_sendexpr(main.Channel(), {method: 'llm/inlineCompletion', params: params},
    {callback: (_, msg) => OnAnswer(buf, req, msg)})
  req.id = type(sent) == v:t_dict ? get(sent, 'id', 0) : 0
  stats.requests += 1
  var st = State(buf)
  st.req = req
  SetStatus(buf, 'requesting')
enddef

def StopTimer()
  if timer != 0
    timer_stop(timer)
    timer = 0
  endif
enddef

# Restarts the debounce: a request once typing has paused for g:llm_sidecar_completion_debounce ms (300).
def Debounce()
  StopTimer()
  if !AutoEnabled() || &buftype != ''
    return
  endif
  timer = timer_start(get(g:, 'llm_sidecar_completion_debounce', 300), (_) => {
    timer = 0
    Request(false)
  })
enddef

# --- autocommands ---------------------------------------------------------------------------------------------------

export def OnChange()
  var buf = bufnr('%')
  Revalidate(buf)
  if pumvisible()
    Clear(buf)
    return
  endif
  Debounce()
enddef

export def OnTyping()
  Debounce()
enddef

export def OnMove()
  Revalidate(bufnr('%'))
enddef

export def OnPopup()
  var buf = bufnr('%')
  StopTimer()
  CancelRequest(buf)
  Clear(buf)
enddef

export def OnLeave()
  OnPopup()
enddef

export def OnWipeout(buf: number)
  if has_key(bufs, buf)
    remove(bufs, buf)
  endif
enddef

# Installs the autocommands (once); the plugin calls it on the first InsertEnter when completion is configured.
export def Init()
  augroup llm_sidecar_completion
    autocmd!
    autocmd TextChangedI,CursorMovedI * OnChange()
    autocmd TextChanged,CursorMoved * OnMove()
    autocmd TextChangedP,CompleteChanged * OnPopup()
    autocmd InsertLeave,BufLeave * OnLeave()
    autocmd BufWipeout * OnWipeout(str2nr(expand('<abuf>')))
  augroup END
enddef

# --- commands -------------------------------------------------------------------------------------------------------

# :LlmComplete
export def Complete()
  Init()
  StopTimer()
  Request(true)
enddef

export def Visible(): bool
  var buf = bufnr('%')
  return has_key(bufs, buf) && !empty(bufs[buf].shown)
enddef

# The suggestion shown in the current buffer (what is left of it), or ''.
export def Suggestion(): string
  return Visible() ? bufs[bufnr('%')].shown.text : ''
enddef

# :LlmAccept: inserts the suggestion at its place as one undo step and puts the cursor after it. False when none
# is shown.
export def Accept(): bool
  var buf = bufnr('%')
  Revalidate(buf)
  if !Visible()
    return false
  endif
  var s = bufs[buf].shown
  Clear(buf)
  var parts = split(s.text, "\n", true)
  var line = getline(s.lnum)
  var before = strpart(line, 0, s.col)
  var after = strpart(line, s.col)
  var new = copy(parts)
  new[0] = before .. new[0]
  var last_col = len(new[-1])
  new[-1] ..= after
  # its own undo step: setting 'undolevels' to itself closes the undo block
  &l:undolevels = &l:undolevels
  setline(s.lnum, new[0])
  if len(new) > 1
    append(s.lnum, new[1 :])
  endif
  &l:undolevels = &l:undolevels
  cursor(s.lnum + len(parts) - 1, last_col + 1)
  SetStatus(buf, 'accepted')
  return true
enddef

export def Dismiss()
  OnPopup()
enddef

# Automatic requests on or off; -1 toggles. Returns the new state.
export def Enable(on: number = -1): bool
  g:llm_sidecar_completion_enabled = on == -1 ? !AutoEnabled() : !!on
  if !g:llm_sidecar_completion_enabled
    OnPopup()
  endif
  return g:llm_sidecar_completion_enabled
enddef

export def Stats(): dict<number>
  return copy(stats)
enddef
