-- Commands of the llm-sidecar client; configuration: require('llm_sidecar').setup({...}). See :help llm_sidecar.
if vim.g.loaded_llm_sidecar then return end
vim.g.loaded_llm_sidecar = 1

local function cmd(name, fn, opts)
  opts.desc = opts.desc or name
  vim.api.nvim_create_user_command(name, fn, opts)
end

cmd('LlmAsk', function(o) require('llm_sidecar').ask_command(o) end,
  { nargs = '*', range = true, desc = 'Ask the LLM; with a range, the lines are sent with the prompt' })
cmd('LlmCancel', function(o) require('llm_sidecar').cancel({ all = o.bang }) end,
  { bang = true, desc = 'Cancel the streaming answer (!: all of them)' })
cmd('LlmTestConnection', function() require('llm_sidecar').test_connection() end,
  { desc = 'Send one test completion with the configured settings' })
cmd('LlmPresets', function() require('llm_sidecar').presets() end, { desc = 'List the built-in server presets' })
cmd('LlmLog', function() require('llm_sidecar').open_log() end, { desc = "Open the sidecar's log" })
cmd('LlmStop', function() require('llm_sidecar').stop() end, { desc = 'Stop the sidecar process' })
