-- Runs the busted suite inside Neovim's own LuaJIT, with the plugin on the runtimepath:
--   nvim --headless -u NONE -i NONE -c 'luafile test/run.lua'        (Neovim 0.7 has no `nvim -l`)
-- Busted and its modules come from Debian's lua-busted (Lua 5.1 paths). Exits 0 when every test passed.
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
local root = vim.fn.fnamemodify(here, ':h')
vim.opt.runtimepath:prepend(root)
vim.cmd('runtime plugin/llm_sidecar.lua')

local share, lib = '/usr/share/lua/5.1', '/usr/lib/x86_64-linux-gnu/lua/5.1'
local found = vim.fn.glob('/usr/lib/*/lua/5.1/lfs.so', false, true)[1] -- the multiarch folder of lua-filesystem
if found then lib = vim.fn.fnamemodify(found, ':h') end
package.path = share .. '/?.lua;' .. share .. '/?/init.lua;' .. here .. '/?.lua;' .. package.path
package.cpath = lib .. '/?.so;' .. package.cpath

-- One instance of the plugin's modules for every spec file, as in a real editor (busted would load them anew per file).
_G.arg = { [0] = 'busted', '--output=gtest', '--no-auto-insulate', '--directory=' .. here, here .. '/spec' }
local filter = os.getenv('BUSTED_FILTER')
if filter and filter ~= '' then table.insert(_G.arg, 1, '--filter=' .. filter) end

local ok, err = pcall(require('busted.runner'), { standalone = false })
io.stdout:flush()
if not ok and err ~= nil then io.stderr:write('busted: ' .. tostring(err) .. '\n') end
-- busted's runner raises a bare error() when a test failed.
vim.cmd(ok and 'qall!' or 'cquit 1')
