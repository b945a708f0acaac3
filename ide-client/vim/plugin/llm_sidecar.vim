vim9script
# Commands of the llm-sidecar client. Configuration: g:llm_sidecar_cmd (a list, default ['llm-sidecar']) and
# g:llm_sidecar_settings (a dict in any settings form the sidecar accepts). See :help llm-sidecar.
if exists('g:loaded_llm_sidecar')
  finish
endif
g:loaded_llm_sidecar = 1

import autoload 'llm_sidecar.vim'
import autoload 'llm_sidecar/completion.vim' as llm_completion

command -range -nargs=* LlmAsk llm_sidecar.AskCommand(<q-args>, <range>, <line1>, <line2>)
command -bang LlmCancel llm_sidecar.Cancel(<bang>false)
command LlmTestConnection llm_sidecar.TestConnection()
command LlmPresets llm_sidecar.Presets()
command LlmLog llm_sidecar.OpenLog()
command LlmStop llm_sidecar.Stop()
command LlmComplete llm_completion.Complete()
command LlmAccept {
    if !llm_completion.Accept()
      echomsg 'llm-sidecar: no completion is shown'
    endif
  }
command LlmCompletionToggle echomsg 'llm-sidecar: automatic completion ' .. (llm_completion.Enable() ? 'on' : 'off')

# Nothing is mapped by default; e.g. imap <M-l> <Plug>(llm-accept). In Insert mode the accepted text is its own undo
# step.
inoremap <silent> <Plug>(llm-accept) <C-g>u<Cmd>call llm_sidecar#completion#Accept()<CR><C-g>u
nnoremap <silent> <Plug>(llm-accept) <Cmd>call llm_sidecar#completion#Accept()<CR>
inoremap <silent> <Plug>(llm-dismiss) <Cmd>call llm_sidecar#completion#Dismiss()<CR>
nnoremap <silent> <Plug>(llm-dismiss) <Cmd>call llm_sidecar#completion#Dismiss()<CR>

# Ghost text while typing, once a completion server is configured (the autoload script is loaded only then).
def CompletionConfigured(): bool
  return exists('g:llm_sidecar_completion') || exists('g:llm_sidecar_custom_llms')
      || get(g:, 'llm_sidecar_completion_enabled', 0)
enddef
augroup llm_sidecar_completion
  autocmd!
  autocmd InsertEnter * if CompletionConfigured() | llm_completion.Init() | endif
augroup END
