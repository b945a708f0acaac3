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
cmd('LlmComplete', function() require('llm_sidecar.completion').complete() end,
  { desc = 'Ask for a code completion at the cursor, shown as ghost text' })
cmd('LlmAccept', function()
  if not require('llm_sidecar.completion').accept() then
    vim.notify('llm-sidecar: no completion is shown', vim.log.levels.WARN, { title = 'llm-sidecar' })
  end
end, { desc = 'Insert the completion shown as ghost text' })
cmd('LlmCompletionToggle', function()
  local on = require('llm_sidecar.completion').enable()
  vim.notify('llm-sidecar: automatic completion ' .. (on and 'on' or 'off'), vim.log.levels.INFO, { title = 'llm-sidecar' })
end, { desc = 'Turn automatic ghost-text completion on or off' })

-- Nothing is mapped by default; for example: vim.keymap.set('i', '<M-l>', '<Plug>(llm-accept)').
-- In Insert mode the accepted text is its own undo step (<C-g>u before and after).
vim.keymap.set('i', '<Plug>(llm-accept)', "<C-g>u<Cmd>lua require('llm_sidecar.completion').accept()<CR><C-g>u",
  { silent = true, desc = 'Accept the llm-sidecar completion' })
vim.keymap.set('n', '<Plug>(llm-accept)', "<Cmd>lua require('llm_sidecar.completion').accept()<CR>",
  { silent = true, desc = 'Accept the llm-sidecar completion' })
vim.keymap.set({ 'i', 'n' }, '<Plug>(llm-dismiss)', "<Cmd>lua require('llm_sidecar.completion').dismiss()<CR>",
  { silent = true, desc = 'Dismiss the llm-sidecar completion' })
