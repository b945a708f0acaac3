package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** customLlms and profiles configured once, named per request, and restored after a restart. */
class ConfigurationTest {
    static MockLlmServer mock;

    @BeforeAll
    static void start() throws Exception {
        mock = new MockLlmServer();
    }

    @AfterAll
    static void stop() {
        if (mock != null) mock.close();
    }

    /** An AutoDev 2.x customLlms entry for the mock server. */
    private static JsonObject customLlm(String name, String mode) {
        JsonObject e = JsonParser.parseString("""
                {"description": "mock", "auth": {"type": "Bearer", "token": "sk-entry"},
                 "responseFormat": "$.choices[0].delta.content", "modelType": "Plan"}""").getAsJsonObject();
        e.addProperty("name", name);
        e.addProperty("url", mock.url("/v1/chat/completions"));
        e.addProperty("requestFormat",
                "{\"customFields\": {\"model\": \"m\", \"stream\": true, \"mock_mode\": \"" + mode + "\"}}");
        return e;
    }

    @Test
    void initializationOptionsAreSentOnEveryStart() throws Exception {
        JsonObject init = new JsonObject();
        JsonArray llms = new JsonArray();
        llms.add(customLlm("Mock Echo", "echo"));
        init.add("customLlms", llms);
        var opts = TestSidecar.options(new TestSidecar.Stderr()).initializationOptions(init).build();
        try (SidecarClient client = new SidecarClient(opts)) {
            CompleteParams byName = CompleteParams.builder().llm("Mock Echo").user("by name").build();
            assertEquals("by name", client.complete(byName, ChunkListener.NONE)
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());
            assertEquals("by name", client.complete(CompleteParams.builder().modelType("Plan").user("by name").build(),
                    ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());

            // a runtime profile, then a crash: the new process gets both again
            JsonObject profiles = new JsonObject();
            JsonObject work = mock.settings("echo", 2, 0).toJson();
            profiles.add("work", work);
            JsonObject change = new JsonObject();
            change.add("profiles", profiles);
            client.configure(change);
            assertEquals("profile", client.complete(CompleteParams.builder().profile("work").user("profile").build(),
                    ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());

            long pid = client.pid().orElseThrow();
            ProcessHandle.of(pid).orElseThrow().destroyForcibly();
            ProcessHandle.of(pid).ifPresent(h -> h.onExit().join());
            // the death may not be noticed yet by the reader: the call either fails with SidecarDied or restarts
            CompletionResult r = null;
            for (int i = 0; i < 3 && r == null; i++) {
                try {
                    r = client.complete(byName, ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    assertInstanceOf(SidecarDied.class, e.getCause());
                }
            }
            assertNotNull(r);
            assertEquals("by name", r.text());
            assertNotEquals(pid, client.pid().orElseThrow());
            assertEquals("again", client.complete(CompleteParams.builder().profile("work").user("again").build(),
                    ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());
        }
    }

    @Test
    void anUnknownEntryIsAnInvalidParamsError() throws Exception {
        try (SidecarClient client = new SidecarClient(TestSidecar.options(new TestSidecar.Stderr()).build())) {
            ExecutionException ex = assertThrows(ExecutionException.class, () -> client.complete(
                    CompleteParams.builder().llm("Nope").user("x").build(), ChunkListener.NONE)
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
            InvalidSettings e = assertInstanceOf(InvalidSettings.class, ex.getCause());
            assertFalse(e.problems().isEmpty());
        }
    }
}
