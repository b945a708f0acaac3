vim9script
# Where the API key comes from, and what must not go over the pipe to the sidecar (a channel log,
# ch_logfile(), writes every message). The sidecar reads a key itself from customEngineTokenEnv,
# customEngineTokenCommand or a customHeaders value {env: ...} / {command: [...]}: this file puts
# g:llm_sidecar_token_env / g:llm_sidecar_token_command there, refuses settings that name two token sources,
# and warns once about a key-like customHeaders value written in plain text. See :help llm-sidecar-keys.

const TOKEN = 'customEngineToken'
const TOKEN_ENV = 'customEngineTokenEnv'
const TOKEN_COMMAND = 'customEngineTokenCommand'
# Header names that carry a key (Azure's api-key, x-api-key, Authorization, ...).
const KEY_HEADER = '\ckey\|token\|secret\|auth\|password\|cookie\|signature\|credential'

var warned: dict<bool> = {}

def NonEmpty(v: any): bool
  return type(v) == v:t_string && v =~ '\S'
enddef

def Given(v: any): bool
  return type(v) != v:t_none   # v:none and v:null
enddef

# A request format as the JSON string AutoDev stores, or a dict.
def Decoded(v: any): dict<any>
  if type(v) == v:t_dict
    return v
  endif
  if type(v) == v:t_string
    try
      var d = json_decode(v)
      return type(d) == v:t_dict ? d : {}
    catch
    endtry
  endif
  return {}
enddef

# The settings with the token source of the given variables (a copy; {} stays {}).
export def Apply(settings: dict<any>, env_var: string, command_var: string): dict<any>
  if empty(settings) || (!exists(env_var) && !exists(command_var))
    return settings
  endif
  var s = deepcopy(settings)
  if exists(env_var)
    s[TOKEN_ENV] = eval(env_var)
  endif
  if exists(command_var)
    s[TOKEN_COMMAND] = eval(command_var)
  endif
  return s
enddef

# The token sources a settings dict names, by their keys.
export def TokenSources(s: dict<any>): list<string>
  var auth = type(get(s, 'auth', 0)) == v:t_dict ? s.auth : {}
  var out: list<string> = []
  if NonEmpty(get(s, TOKEN, 0)) || NonEmpty(get(auth, 'token', 0))
    add(out, has_key(s, TOKEN) ? TOKEN : 'auth.token')
  endif
  if Given(get(s, TOKEN_ENV, v:none)) || Given(get(auth, 'tokenEnv', v:none))
    add(out, has_key(s, TOKEN_ENV) ? TOKEN_ENV : 'auth.tokenEnv')
  endif
  if Given(get(s, TOKEN_COMMAND, v:none)) || Given(get(auth, 'tokenCommand', v:none))
    add(out, has_key(s, TOKEN_COMMAND) ? TOKEN_COMMAND : 'auth.tokenCommand')
  endif
  return out
enddef

# customHeaders names whose value is a key-like string.
export def PlainKeyHeaders(s: dict<any>): list<string>
  var sources: list<dict<any>> = []
  for f in ['customEngineRequestFormat', 'requestFormat']
    var rf = Decoded(get(s, f, 0))
    if type(get(rf, 'customHeaders', 0)) == v:t_dict
      add(sources, rf.customHeaders)
    endif
  endfor
  var cr = get(s, 'customRequest', 0)
  if type(cr) == v:t_dict && type(get(cr, 'headers', 0)) == v:t_dict
    add(sources, cr.headers)
  endif
  var out: list<string> = []
  for headers in sources
    for [name, value] in items(headers)
      if NonEmpty(value) && name =~ KEY_HEADER
        add(out, name)
      endif
    endfor
  endfor
  return sort(out)
enddef

def WarnOnce(msg: string)
  if has_key(warned, msg)
    return
  endif
  warned[msg] = true
  echohl WarningMsg
  echomsg msg
  echohl None
enddef

# Checks one settings dict before it goes over the pipe; `where` names it. False (after an error message) when it
# must not be sent: two token sources.
export def Check(s: any, where: string): bool
  if type(s) != v:t_dict
    return true
  endif
  var sources = TokenSources(s)
  if len(sources) > 1
    echohl ErrorMsg
    echomsg printf('llm-sidecar: %s: set only one of %s (nothing was sent)', where, join(sources, ', '))
    echohl None
    return false
  endif
  for name in PlainKeyHeaders(s)
    WarnOnce(printf('llm-sidecar: %s: the customHeaders value of "%s" looks like a key written in plain text; '
      .. 'let the sidecar read it: {"%s": {"env": "NAME"}} or {"command": ["pass", "show", "..."]} '
      .. '(:help llm-sidecar-keys)', where, name, name))
  endfor
  return true
enddef

# Checks every entry of a customLlms list (a list of dicts, or AutoDev's JSON string).
export def CheckList(list: any): bool
  var entries = list
  if type(list) == v:t_string
    try
      entries = json_decode(list)
    catch
      return true
    endtry
  endif
  if type(entries) != v:t_list
    return true
  endif
  var i = 0
  for e in entries
    i += 1
    var name = type(e) == v:t_dict && type(get(e, 'name', 0)) == v:t_string ? e.name : string(i)
    if !Check(e, 'customLlms[' .. name .. ']')
      return false
    endif
  endfor
  return true
enddef
