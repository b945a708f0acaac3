vim9script
# API keys stay off the pipe: a channel log (ch_logfile()) never holds them.
# Sourced by run.vim, which runs every Test_ function with a fresh mock server.
import autoload 'llm_sidecar.vim'
import './helpers.vim' as h

const ENV_KEY = 'sk-env-7f3a91c4e2'
const CMD_KEY = 'sk-cmd-5d8b20aa61'
const HEADER_KEY = 'azure-key-93be4410'

def Test_token_env_keeps_the_key_out_of_the_channel_log()
  llm_sidecar.Stop()
  setenv('LLM_SIDECAR_TEST_KEY', ENV_KEY)
  g:llm_sidecar_settings = h.SettingsWithoutToken('hello')
  g:llm_sidecar_token_env = 'LLM_SIDECAR_TEST_KEY'
  var log = h.ChannelLog()
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'done')
  var text = h.ChannelLogText(log)
  assert_equal('Hello, world!', h.Text(buf))
  assert_equal('Bearer ' .. ENV_KEY, h.Events('hello', 'request')[0].headers.authorization)
  assert_match('llm/complete', text)
  assert_match('LLM_SIDECAR_TEST_KEY', text)
  assert_notmatch(ENV_KEY, text)
enddef

def Test_token_command_keeps_the_key_out_of_the_channel_log()
  var file = tempname()
  writefile([CMD_KEY], file)
  g:llm_sidecar_settings = h.SettingsWithoutToken('hello')
  g:llm_sidecar_token_command = ['cat', file]
  var log = h.ChannelLog()
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'done')
  var text = h.ChannelLogText(log)
  assert_equal('Bearer ' .. CMD_KEY, h.Events('hello', 'request')[0].headers.authorization)
  assert_match('llm/complete', text)
  assert_notmatch(CMD_KEY, text)
enddef

def Test_a_customheaders_env_source_keeps_a_header_key_off_the_pipe()
  llm_sidecar.Stop()   # a new sidecar inherits the variable
  setenv('LLM_SIDECAR_TEST_HEADER_KEY', HEADER_KEY)
  g:llm_sidecar_settings = h.SettingsWithoutToken('hello', {customEngineRequestFormat: {
    customFields: {model: 'deepseek-chat', stream: true},
    customHeaders: {'api-key': {env: 'LLM_SIDECAR_TEST_HEADER_KEY'}}}})
  var log = h.ChannelLog()
  var buf = h.Ask('LlmAsk hi')
  h.WaitStatus(buf, 'done')
  var text = h.ChannelLogText(log)
  assert_equal(HEADER_KEY, h.Events('hello', 'request')[0].headers['api-key'])
  assert_notmatch(HEADER_KEY, text)
  assert_notmatch('customHeaders value', h.Messages())
enddef

def Test_a_plain_key_in_customheaders_is_warned_about_once()
  h.Use('hello', {customEngineRequestFormat: '{"customFields": {"model": "deepseek-chat", "stream": true}, '
    .. '"customHeaders": {"x-api-key": "plain-header-key", "X-Trace": "on"}}'})
  h.WaitStatus(h.Ask('LlmAsk hi'), 'done')
  h.WaitStatus(h.Ask('LlmAsk again'), 'done')
  assert_equal(1, h.CountMatches(h.Messages(), 'the customHeaders value of "x-api-key" looks like a key'))
  assert_match('{"x-api-key": {"env": "NAME"}}', h.Messages())
  assert_notmatch('X-Trace', h.Messages())
enddef

def Test_two_token_sources_are_refused_and_nothing_is_sent()
  g:llm_sidecar_settings = h.Settings('hello')
  g:llm_sidecar_token_env = 'LLM_SIDECAR_TEST_KEY'
  var before = len(h.AnswerBuffers())
  LlmAsk hi
  assert_equal(before, len(h.AnswerBuffers()))
  assert_match('set only one of customEngineToken, customEngineTokenEnv (nothing was sent)', h.Messages())
  assert_equal([], h.Events('hello'))
enddef
