vim9script
# The Vim client's tests, in the real Vim, against the real llm-sidecar and the mock LLM server:
#   LLM_SIDECAR_BIN=... vim -Nu NONE -i NONE -es -c 'source test/run.vim' </dev/null
# Each Test_ function runs with a fresh mock server; assert_*() failures are collected from v:errors. One line per
# test and a closing "vim: N passed, N failed" go to $VIM_TEST_LOG (default: /dev/stdout). Exits 0 when all passed.
set nocompatible encoding=utf-8 hidden
const HERE = expand('<sfile>:p:h')
&runtimepath = fnamemodify(HERE, ':h') .. ',' .. &runtimepath
runtime plugin/llm_sidecar.vim
import autoload 'llm_sidecar.vim'
import autoload 'llm_sidecar/completion.vim'
import './helpers.vim' as h

for file in ['chat.vim', 'keys.vim', 'completion.vim']
  execute 'source ' .. fnameescape(HERE .. '/' .. file)
endfor

# --- runner ---------------------------------------------------------------------------------------------------------

g:llm_sidecar_cmd = [h.BIN]
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
    h.StartMock()
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
    h.StopMock()
  endtry
  var ms = float2nr(reltimefloat(reltime(t)) * 1000)
  if empty(v:errors)
    passed += 1
    h.Out(printf('ok   %s (%d ms)', short, ms))
  else
    failed += 1
    h.Out(printf('FAIL %s (%d ms)', short, ms))
    for e in v:errors
      h.Out('     ' .. e)
    endfor
    h.Out('     messages: ' .. substitute(h.Messages(), "\n", ' | ', 'g'))
  endif
endfor
llm_sidecar.Stop()
h.Out(printf('vim: ran %d tests in %.1f s', passed + failed, reltimefloat(reltime(started))))
h.Out(printf('vim: %d passed, %d failed', passed, failed))
if failed > 0 || passed == 0
  cquit 1
endif
qall!
