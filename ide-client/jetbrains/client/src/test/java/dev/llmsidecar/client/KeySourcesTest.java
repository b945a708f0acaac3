package dev.llmsidecar.client;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Keys kept out of settings files and off the pipe: the token from the sidecar's environment or a command
 * (key sources), and key-like {@code customHeaders} values split off for the password store and joined back.
 */
class KeySourcesTest {
    static MockLlmServer mock;

    @BeforeAll
    static void start() throws Exception {
        mock = new MockLlmServer();
    }

    @AfterAll
    static void stop() {
        if (mock != null) mock.close();
    }

    private static Map<String, String> lastHeaders() {
        return mock.headers.get(mock.headers.size() - 1);
    }

    @Test
    void theTokenComesFromTheSidecarsEnvironmentOrACommand() throws Exception {
        var options = TestSidecar.options(new TestSidecar.Stderr()).env("JB_TEST_TOKEN", "sk-from-env-0a1b2c").build();
        try (SidecarClient client = new SidecarClient(options)) {
            LlmSettings s = mock.settings("echo", 4, 0);
            s.customEngineToken = "";
            s.customEngineTokenEnv = "JB_TEST_TOKEN";
            assertFalse(s.toJson().toString().contains("sk-from-env"), "the token is not in what is sent");
            assertEquals("env", client.complete(CompleteParams.of(s, "env"), ChunkListener.NONE)
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());
            assertEquals("Bearer sk-from-env-0a1b2c", lastHeaders().get("authorization"));

            s.customEngineTokenEnv = "";
            s.customEngineTokenCommand = "printf 'sk-from command-9f8e'";
            assertEquals("[\"printf\",\"sk-from command-9f8e\"]",
                    s.toJson().get("customEngineTokenCommand").toString());
            // an argument with a space cannot be a token: the sidecar names the source, never the value
            var e = assertThrows(java.util.concurrent.ExecutionException.class, () -> client.complete(
                    CompleteParams.of(s, "cmd"), ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
            InvalidSettings invalid = assertInstanceOf(InvalidSettings.class, e.getCause());
            assertEquals("customEngineTokenCommand", invalid.problems().get(0).field(), invalid.problems().toString());
            assertFalse(invalid.toString().contains("9f8e"), invalid.toString());

            s.customEngineTokenCommand = "[\"printf\", \"sk-from-command-9f8e\"]";
            assertEquals("cmd", client.complete(CompleteParams.of(s, "cmd"), ChunkListener.NONE)
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());
            assertEquals("Bearer sk-from-command-9f8e", lastHeaders().get("authorization"));
        }
    }

    @Test
    void commandLinesSplitLikeArgvWithoutAShell() {
        assertEquals(List.of("pass", "show", "deepseek"), LlmSettings.argv("  pass show   deepseek "));
        assertEquals(List.of("security", "find-generic-password", "-s", "my key", "-w"),
                LlmSettings.argv("security find-generic-password -s \"my key\" -w"));
        assertEquals(List.of("echo", "$HOME", "a'b"), LlmSettings.argv("echo '$HOME' \"a'b\""));
        assertEquals(List.of("a b", "c"), LlmSettings.argv("[\"a b\", \"c\"]"));
    }

    @Test
    void keyLikeHeaderValuesAreSplitOffAndJoinedBack() throws Exception {
        String format = """
                {"customFields": {"model": "mock-model", "stream": true},
                 "customHeaders": {"api-key": "ak-azure-1234", "X-Api-Key": "xak-5678", "Authorization": "Bearer ab-9",
                                   "X-Goog-Api-Key": "AIza-0000", "X-Session-Token": "st-1", "X-Trace": "visible",
                                   "x-signed": {"env": "JB_SIGNATURE"}}}""";
        SecretHeaders.Split split = SecretHeaders.split(format);
        assertEquals(Map.of("api-key", "ak-azure-1234", "X-Api-Key", "xak-5678", "Authorization", "Bearer ab-9",
                "X-Goog-Api-Key", "AIza-0000", "X-Session-Token", "st-1"), split.secrets());
        for (String secret : split.secrets().values()) {
            assertFalse(split.requestFormat().contains(secret), split.requestFormat());
        }
        assertTrue(split.requestFormat().contains("\"X-Trace\":\"visible\""), split.requestFormat());
        assertTrue(split.requestFormat().contains("{\"env\":\"JB_SIGNATURE\"}"), split.requestFormat());
        assertEquals(com.google.gson.JsonParser.parseString(format),
                com.google.gson.JsonParser.parseString(SecretHeaders.join(split.requestFormat(), split.secrets())));

        // what is sent after joining reaches the server
        var options = TestSidecar.options(new TestSidecar.Stderr()).env("JB_SIGNATURE", "sig-from-env").build();
        try (SidecarClient client = new SidecarClient(options)) {
            LlmSettings s = mock.settings("echo", 4, 0);
            s.customEngineToken = "";
            s.customEngineRequestFormat = SecretHeaders.join(split.requestFormat(), split.secrets());
            client.complete(CompleteParams.of(s, "h"), ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            Map<String, String> h = lastHeaders();
            assertEquals("ak-azure-1234", h.get("api-key"));
            assertEquals("xak-5678", h.get("x-api-key"));
            assertEquals("Bearer ab-9", h.get("authorization"));
            assertEquals("visible", h.get("x-trace"));
            assertEquals("sig-from-env", h.get("x-signed"));
        }

        // nothing to split: the format is kept as it was; not JSON: kept, for the sidecar to report
        assertEquals("{\"customFields\": {}}", SecretHeaders.split("{\"customFields\": {}}").requestFormat());
        assertEquals("{not json", SecretHeaders.split("{not json").requestFormat());
        assertTrue(SecretHeaders.split("{not json").secrets().isEmpty());
    }

    @Test
    void theFormShowsPlaceholdersAndKeepsStoredValuesBehindThem() {
        Map<String, String> stored = Map.of("api-key", "ak-stored-1111", "x-token", "tk-old");
        String shown = SecretHeaders.masked("{\"customFields\": {\"model\": \"m\"}}", stored.keySet());
        assertTrue(shown.contains(SecretHeaders.STORED), shown);
        assertFalse(shown.contains("ak-stored"), shown);
        // the user keeps api-key, removes x-token, types a new x-api-key
        String edited = shown.replace("\"x-token\":\"" + SecretHeaders.STORED + "\"", "\"x-api-key\":\"xak-new\"");
        SecretHeaders.Split split = SecretHeaders.split(edited, stored);
        assertEquals(Map.of("api-key", "ak-stored-1111", "x-api-key", "xak-new"), split.secrets());
        assertFalse(split.requestFormat().contains("customHeaders"), split.requestFormat());
    }

    @Test
    void customLlmsEntriesKeepTheirTokensAndHeaderKeysOutOfTheSettingsFile() {
        com.google.gson.JsonArray list = com.google.gson.JsonParser.parseString("""
                [{"name": "Azure", "url": "https://x.openai.azure.com/...", "auth": {"type": "Bearer", "token": "sk-entry-1"},
                  "requestFormat": "{\\"customHeaders\\": {\\"api-key\\": \\"az-2\\", \\"X-Trace\\": \\"t\\"}}",
                  "modelType": "Default"},
                 {"name": "Local", "url": "http://127.0.0.1:11434/api/chat", "auth": {"type": "Bearer", "tokenEnv": "OLLAMA_KEY"},
                  "customRequest": {"headers": {"x-api-key": "loc-3"}, "body": {"model": "m"}}, "modelType": "Completion"}]
                """).getAsJsonArray();
        SecretHeaders.SplitList split = SecretHeaders.splitCustomLlms(list, Map.of());
        String kept = split.customLlms().toString();
        for (String secret : List.of("sk-entry-1", "az-2", "loc-3")) assertFalse(kept.contains(secret), kept);
        assertTrue(kept.contains("OLLAMA_KEY") && kept.contains("X-Trace"), kept);
        assertEquals(3, split.secrets().size(), split.secrets().toString());
        com.google.gson.JsonArray joined = SecretHeaders.joinCustomLlms(split.customLlms(), split.secrets());
        assertEquals("sk-entry-1", joined.get(0).getAsJsonObject().getAsJsonObject("auth").get("token").getAsString());
        assertTrue(joined.get(0).getAsJsonObject().get("requestFormat").getAsString().contains("\"api-key\":\"az-2\""));
        assertEquals("loc-3", joined.get(1).getAsJsonObject().getAsJsonObject("customRequest")
                .getAsJsonObject("headers").get("x-api-key").getAsString());

        // shown with placeholders, saved again unchanged: the stored values stay
        Map<String, String> placeholders = new java.util.HashMap<>();
        for (String k : split.secrets().keySet()) placeholders.put(k, SecretHeaders.STORED);
        com.google.gson.JsonArray form = SecretHeaders.joinCustomLlms(split.customLlms(), placeholders);
        assertFalse(form.toString().contains("sk-entry-1"));
        assertEquals(split.secrets(), SecretHeaders.splitCustomLlms(form, split.secrets()).secrets());
    }
}
