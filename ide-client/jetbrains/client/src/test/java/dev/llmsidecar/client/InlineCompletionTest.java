package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Code completion ({@code llm/inlineCompletion}) through the real sidecar against the mock FIM server: the text
 * around the cursor reaches the server exactly (CJK and emoji before the cursor), the suggestion comes back,
 * cancel reaches the server, and the {@code customLlms} list and {@code completion} settings sent with
 * {@code configure...} pick what serves completion and chat.
 */
class InlineCompletionTest {
    static MockLlmServer mock;

    @BeforeAll
    static void start() throws Exception {
        mock = new MockLlmServer();
    }

    @AfterAll
    static void stop() {
        if (mock != null) mock.close();
    }

    private static SidecarClient newClient() {
        return new SidecarClient(TestSidecar.options(new TestSidecar.Stderr()).build());
    }

    private static <T> T get(CompletableFuture<T> f) throws Exception {
        return f.get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
    }

    private static JsonObject lastFimBody() {
        return mock.fimBodies.get(mock.fimBodies.size() - 1);
    }

    @Test
    void theTextAroundTheCursorGoesOutAndTheSuggestionComesBack() throws Exception {
        String prefix = "// 合計を返す 👋🏽 naïve\nint add(int a, int b) {\n    ";
        String suffix = "\n}\n";
        mock.fimAnswer = "return a + b;";
        try (SidecarClient client = newClient()) {
            InlineCompletion c = get(client.inlineCompletion(InlineCompletionParams.builder(prefix, suffix)
                    .language("java").path("src/Add.java").settings(mock.fimSettings("mock-fim")).build()));
            assertEquals("return a + b;", c.text());
            assertFalse(c.cached());
            assertNotNull(c.totalMs());
            JsonObject body = lastFimBody();
            assertEquals(prefix, body.get("prompt").getAsString(), body.toString());
            assertEquals(suffix, body.get("suffix").getAsString(), body.toString());
            assertEquals("mock-fim", body.get("model").getAsString());
        }
    }

    @Test
    void aMultiLineSuggestionComesBackWhole() throws Exception {
        String answer = "int larger = a > b ? a : b;\n    log(\"max\", larger);\n    return larger;";
        mock.fimAnswer = answer;
        try (SidecarClient client = newClient()) {
            InlineCompletion c = get(client.inlineCompletion(InlineCompletionParams.builder(
                    "int max(int a, int b) {\n    ", "\n}\n").settings(mock.fimSettings("mock-multi")).build()));
            assertEquals(answer, c.text());
        }
    }

    @Test
    void cancellingSendsCancelRequestAndTheServerSeesTheConnectionClose() throws Exception {
        try (SidecarClient client = newClient()) {
            mock.fimReceived.drainPermits();
            mock.disconnects.drainPermits();
            CompletableFuture<InlineCompletion> f = client.inlineCompletion(InlineCompletionParams
                    .builder("def slow(", ")\n").settings(mock.fimSettings("mock-hang")).build());
            assertTrue(mock.fimReceived.tryAcquire(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS), "the request arrived");
            assertTrue(f.cancel(true));
            assertThrows(CancellationException.class, () -> get(f));
            LlmCancelled cancelled = assertThrows(LlmCancelled.class, f::join);
            assertTrue(cancelled.getMessage().contains("llm/inlineCompletion"), cancelled.getMessage());
            assertTrue(mock.disconnects.tryAcquire(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS),
                    "the sidecar closed the connection to the server");
            // the sidecar keeps serving
            mock.fimAnswer = "x";
            assertEquals("x", get(client.inlineCompletion(InlineCompletionParams.builder("a = ", "\n")
                    .settings(mock.fimSettings("mock-after-cancel")).build())).text());
        }
    }

    /** An AutoDev 2.x entry; chat entries use the echoing chat endpoint. */
    private static JsonObject entry(String name, String modelType, boolean fim) {
        JsonObject e = new JsonObject();
        e.addProperty("name", name);
        e.addProperty("description", "");
        e.add("auth", JsonParser.parseString("{\"type\": \"Bearer\", \"token\": \"\"}"));
        e.addProperty("modelType", modelType);
        if (fim) {
            e.addProperty("url", mock.url("/v1/completions"));
            e.addProperty("requestFormat", "{\"customFields\": {\"model\": \"" + name + "\"}}");
            e.add("fim", JsonParser.parseString("{\"mode\": \"separate\"}"));
        } else {
            e.addProperty("url", mock.url("/v1/chat/completions"));
            e.addProperty("requestFormat", "{\"customFields\": {\"model\": \"" + name + "\", \"stream\": true}}");
            e.addProperty("responseFormat", "$.choices[0].delta.content");
        }
        return e;
    }

    @Test
    void theCustomLlmsListPicksTheCompletionEntryForCompletionAndTheDefaultEntryForChat() throws Exception {
        JsonArray llms = new JsonArray();
        llms.add(entry("Planner", "Plan", false));
        llms.add(entry("Chat", "Default", false));
        llms.add(entry("Coder", "Completion", true));
        mock.fimAnswer = "42;";
        try (SidecarClient client = newClient()) {
            client.configureCustomLlms(llms); // before the first start: sent in initializationOptions
            InlineCompletion c = get(client.inlineCompletion(InlineCompletionParams.builder("x = ", "\n").build()));
            assertEquals("42;", c.text());
            assertEquals("Coder", lastFimBody().get("model").getAsString());

            int before = mock.bodies.size();
            CompletionResult chat = get(client.complete(CompleteParams.builder().user("hello chat").build(),
                    ChunkListener.NONE));
            assertEquals("hello chat", chat.text());
            assertEquals(before + 1, mock.bodies.size());
            assertEquals("Chat", JsonParser.parseString(mock.bodies.get(before)).getAsJsonObject()
                    .get("model").getAsString());

            // changed while running: workspace/didChangeConfiguration
            JsonArray changed = new JsonArray();
            changed.add(entry("Chat", "Default", false));
            changed.add(entry("Coder 2", "Completion", true));
            client.configureCustomLlms(Json.GSON.toJson(changed));
            get(client.inlineCompletion(InlineCompletionParams.builder("y = ", "\n").build()));
            assertEquals("Coder 2", lastFimBody().get("model").getAsString());
        }
    }

    @Test
    void completionSettingsNameAnEntryOrAreInlineAndFollowChanges() throws Exception {
        JsonArray llms = new JsonArray();
        llms.add(entry("Chat", "Default", false));
        llms.add(entry("Fim A", "Others", true));
        mock.fimAnswer = "done();";
        try (SidecarClient client = newClient()) {
            client.configureCustomLlms(llms);
            JsonObject byName = new JsonObject();
            byName.addProperty("llm", "Fim A");
            client.configureCompletion(byName);
            assertEquals("done();", get(client.inlineCompletion(InlineCompletionParams.builder("a", "").build()))
                    .text());
            assertEquals("Fim A", lastFimBody().get("model").getAsString());

            client.configureCompletion(mock.fimSettings("inline-fim"));
            get(client.inlineCompletion(InlineCompletionParams.builder("b", "").build()));
            assertEquals("inline-fim", lastFimBody().get("model").getAsString());

            // after a crash the new process gets the list and the completion settings again
            long pid = client.pid().orElseThrow();
            ProcessHandle.of(pid).orElseThrow().destroyForcibly();
            ProcessHandle.of(pid).ifPresent(h -> h.onExit().join());
            InlineCompletion again = null;
            for (int i = 0; i < 3 && again == null; i++) {
                try {
                    again = get(client.inlineCompletion(InlineCompletionParams.builder("c", "").build()));
                } catch (ExecutionException e) {
                    assertInstanceOf(SidecarDied.class, e.getCause());
                }
            }
            assertNotNull(again);
            assertEquals("inline-fim", lastFimBody().get("model").getAsString());
        }
    }

    @Test
    void withoutCompletionSettingsTheErrorSaysHowToConfigureThem() throws Exception {
        try (SidecarClient client = newClient()) {
            ExecutionException ex = assertThrows(ExecutionException.class,
                    () -> get(client.inlineCompletion(InlineCompletionParams.builder("a", "b").build())));
            InvalidSettings e = assertInstanceOf(InvalidSettings.class, ex.getCause());
            assertFalse(e.problems().isEmpty());
            assertTrue(e.getMessage().contains("completion") || e.problems().toString().contains("completion"),
                    e.getMessage() + " " + e.problems());
        }
    }
}
