vim9script
# Commands of the llm-sidecar client. Configuration: g:llm_sidecar_cmd (a list, default ['llm-sidecar']) and
# g:llm_sidecar_settings (a dict in any settings form the sidecar accepts). See :help llm-sidecar.
if exists('g:loaded_llm_sidecar')
  finish
endif
g:loaded_llm_sidecar = 1

import autoload 'llm_sidecar.vim'

command -range -nargs=* LlmAsk llm_sidecar.AskCommand(<q-args>, <range>, <line1>, <line2>)
command -bang LlmCancel llm_sidecar.Cancel(<bang>false)
command LlmTestConnection llm_sidecar.TestConnection()
command LlmPresets llm_sidecar.Presets()
command LlmLog llm_sidecar.OpenLog()
command LlmStop llm_sidecar.Stop()
