package dev.llmsidecar.client;

import org.junit.jupiter.api.Test;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Structured errors arrive as typed exceptions with the protocol's data. */
class ErrorsTest extends WithSidecar {
    private static Throwable failure(LlmSettings s) {
        ExecutionException ex = assertThrows(ExecutionException.class, () ->
                client.complete(CompleteParams.of(s, "Say hello to the world"), ChunkListener.NONE)
                        .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
        return ex.getCause();
    }

    @Test
    void aPathThatMatchesNothingFailsWithSuggestions() {
        LlmRequestFailed e = assertInstanceOf(LlmRequestFailed.class, failure(mock.settings("other_shape", 3, 0)));
        assertEquals(-32803, e.code());
        assertEquals("no_match", e.kind());
        assertEquals("$.choices[0].delta.content", e.path());
        assertEquals("", e.partialText(), "nothing matched, so nothing was produced");
        assertFalse(e.suggestions().isEmpty());
        Suggestion first = e.suggestions().get(0);
        assertEquals("$.output.text", first.path(), e.suggestions().toString());
        assertTrue("Say hello to the world".startsWith(first.sampleText()) && !first.sampleText().isEmpty(),
                first.sampleText());
        assertNull(e.status());
    }

    @Test
    void anHttpErrorCarriesStatusAndTheProvidersMessage() {
        LlmSettings s = mock.settings("echo", 3, 0);
        s.customEngineServer = mock.url("/v1/unauthorized");
        LlmRequestFailed e = assertInstanceOf(LlmRequestFailed.class, failure(s));
        assertEquals("http_status", e.kind());
        assertEquals(401, e.status());
        assertEquals("Incorrect API key provided", e.providerMessage());
        assertTrue(e.getMessage().contains("Incorrect API key provided"), e.getMessage());
        assertEquals("", e.partialText());
        assertTrue(e.suggestions().isEmpty());
        assertFalse(String.valueOf(e.data()).contains("sk-test-token"), "the token never comes back");
    }

    @Test
    void anUnreachableServerIsAConnectError() {
        LlmSettings s = mock.settings("echo", 3, 0);
        s.customEngineServer = "http://127.0.0.1:1/v1/chat/completions";
        s.additionalSettings = "{\"retry\": {\"maxRetries\": 0}}";
        LlmRequestFailed e = assertInstanceOf(LlmRequestFailed.class, failure(s));
        assertEquals("connect", e.kind());
        assertNotNull(e.url());
    }

    @Test
    void anUnknownMethodIsARpcError() {
        ExecutionException ex = assertThrows(ExecutionException.class, () ->
                client.request("llm/noSuchMethod", new com.google.gson.JsonObject())
                        .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
        SidecarException e = assertInstanceOf(SidecarException.class, ex.getCause());
        assertEquals(-32601, e.code());
    }
}
