package dev.llmsidecar.client;

import org.junit.jupiter.api.Test;

import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.*;

/** Streaming against the real sidecar and a mock OpenAI-style server. */
class StreamingTest extends WithSidecar {
    @Test
    void chunksArriveInOrderBeforeTheResult() throws Exception {
        String prompt = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox.";
        List<Chunk> chunks = new CopyOnWriteArrayList<>();
        AtomicBoolean doneDuringChunk = new AtomicBoolean();
        var holder = new java.util.concurrent.atomic.AtomicReference<java.util.concurrent.Future<?>>();
        var future = client.complete(CompleteParams.of(mock.settings("echo", 5, 2), prompt), c -> {
            chunks.add(c);
            var f = holder.get();
            if (f != null && f.isDone()) doneDuringChunk.set(true);
        });
        holder.set(future);
        CompletionResult r = future.get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);

        List<String> expected = MockLlmServer.pieces(prompt, 5);
        assertEquals(expected.size(), chunks.size(), "one chunk per SSE event");
        for (int i = 0; i < chunks.size(); i++) {
            assertEquals(i, chunks.get(i).seq(), "seq counts 0, 1, 2, ...");
            assertEquals(expected.get(i), chunks.get(i).text());
            assertEquals("content", chunks.get(i).kind());
        }
        assertFalse(doneDuringChunk.get(), "no chunk after the future completed");
        assertEquals(prompt, r.text());
        assertEquals(expected.size(), r.chunks());
        assertEquals("stop", r.finishReason());
        assertEquals(200, r.status());
        assertEquals("sse", r.responseType());
        assertNull(r.reasoning());
        assertNotNull(r.timings().totalMs());
        assertEquals(1, r.timings().attempts());
        assertEquals(List.of(), r.warnings());
    }

    @Test
    void reasoningChunksAreTypedAndCountedInTheSameSequence() throws Exception {
        LlmSettings s = mock.settings("reasoning", 4, 0);
        s.reasoningFormat = "$.choices[0].delta.reasoning_content";
        List<Chunk> chunks = new CopyOnWriteArrayList<>();
        CompletionResult r = client.complete(CompleteParams.of(s, "The answer."), chunks::add)
                .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals("Let me think. ", r.reasoning());
        assertEquals("The answer.", r.text());
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        for (int i = 0; i < chunks.size(); i++) {
            Chunk c = chunks.get(i);
            assertEquals(i, c.seq(), "one sequence across both kinds");
            (c.isReasoning() ? reasoning : content).append(c.text());
        }
        assertTrue(chunks.get(0).isReasoning());
        assertEquals("content", chunks.get(chunks.size() - 1).kind());
        assertEquals(r.reasoning(), reasoning.toString());
        assertEquals(r.text(), content.toString());
        assertEquals(chunks.size(), r.chunks());
    }

    @Test
    void cjkAndEmojiRoundTripUnderANonUtf8DefaultCharset() throws Exception {
        // surefire runs this JVM with -Dfile.encoding=ISO-8859-1: any use of the platform charset would garble
        assertNotEquals(StandardCharsets.UTF_8, Charset.defaultCharset(),
                "the test JVM must run with a non-UTF-8 default charset to prove the explicit UTF-8");
        String prompt = "你好，世界！こんにちは 안녕하세요 — 😀🚀 👩‍💻 naïve café Ωμέγα ✓";
        int before = mock.bodies.size();
        StringBuilder streamed = new StringBuilder();
        // one code point per event: every multi-byte character and every surrogate pair travels alone
        CompletionResult r = client.complete(CompleteParams.builder()
                        .settings(mock.settings("echo", 1, 0))
                        .system("Réponds en 中文 🙂")
                        .user(prompt).build(), c -> streamed.append(c.text()))
                .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);

        assertEquals(prompt, r.text(), "sidecar -> client");
        assertEquals(prompt, streamed.toString(), "chunks");
        assertEquals(prompt.codePointCount(0, prompt.length()), r.chunks());
        String body = mock.bodies.get(before);
        var sent = com.google.gson.JsonParser.parseString(body).getAsJsonObject().getAsJsonArray("messages");
        assertEquals("Réponds en 中文 🙂", sent.get(0).getAsJsonObject().get("content").getAsString(), "client -> server");
        assertEquals(prompt, sent.get(1).getAsJsonObject().get("content").getAsString(), "client -> server");
    }

    @Test
    void aListenerThatThrowsDoesNotStopTheStream() throws Exception {
        java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
        CompletionResult r = client.complete(CompleteParams.of(mock.settings("echo", 2, 0), "abcdefgh"), c -> {
            calls.incrementAndGet();
            throw new IllegalStateException("a broken UI callback");
        }).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals("abcdefgh", r.text());
        assertEquals(4, calls.get(), "every chunk still reached the listener");
    }

    @Test
    void megabyteFramesBothWays() throws Exception {
        // ~3 MB of UTF-8 in one request frame, and 2 MB-ish answered in 8192-code-point chunks
        String prompt = "日本語のテキスト、そして emoji 🎉 ".repeat(40_000);
        CompletionResult r = client.complete(CompleteParams.of(mock.settings("echo", 8192, 0), prompt),
                ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals(prompt.length(), r.text().length());
        assertEquals(prompt, r.text());
    }

    @Test
    void presetsListTheCommonServers() throws Exception {
        List<Preset> presets = client.presets().get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        List<String> names = presets.stream().map(Preset::name).toList();
        for (String n : List.of("deepseek", "openai", "ollama", "anthropic", "azure-openai")) {
            assertTrue(names.contains(n), n + " in " + names);
        }
        Preset deepseek = presets.stream().filter(p -> p.name().equals("deepseek")).findFirst().orElseThrow();
        assertTrue(deepseek.toLlmSettings().customEngineServer.startsWith("https://api.deepseek.com"),
                deepseek.settings().toString());
        Preset azure = presets.stream().filter(p -> p.name().equals("azure-openai")).findFirst().orElseThrow();
        assertNotNull(azure.urlHint(), "Azure's URL must be completed by the user");
    }

    @Test
    void serverInfoComesFromInitialize() throws Exception {
        client.presets().get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals("llm-sidecar", client.serverInfo().get("name").getAsString());
    }

    @Test
    void validateSettingsReportsEveryProblem() throws Exception {
        ValidationResult good = client.validateSettings(mock.settings("echo", 4, 0))
                .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertTrue(good.ok(), good.problems().toString());
        assertNotNull(good.normalized());
        assertFalse(good.normalized().toString().contains("sk-test-token"), "secrets are masked");

        LlmSettings bad = mock.settings("echo", 4, 0);
        bad.customEngineResponseFormat = "$.choices[0].delta.content.length()";
        bad.customEngineServer = "ftp://example.invalid/x";
        ValidationResult r = client.validateSettings(bad).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertFalse(r.ok());
        assertNull(r.normalized());
        List<String> fields = r.problems().stream().map(Problem::field).toList();
        assertTrue(fields.contains("customEngineResponseFormat"), fields.toString());
        assertTrue(fields.contains("customEngineServer"), fields.toString());
    }

    @Test
    void badSettingsFailACompletionWithTypedProblems() throws Exception {
        LlmSettings bad = mock.settings("echo", 4, 0);
        bad.customEngineResponseFormat = "$.choices[0";
        var ex = assertThrows(java.util.concurrent.ExecutionException.class, () ->
                client.complete(CompleteParams.of(bad, "hi"), ChunkListener.NONE)
                        .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
        InvalidSettings e = assertInstanceOf(InvalidSettings.class, ex.getCause());
        assertEquals(-32602, e.code());
        assertTrue(e.inSettings());
        assertEquals("customEngineResponseFormat", e.problems().get(0).field());
        assertTrue(e.problems().get(0).message().contains("column"), e.problems().get(0).message());
    }

    @Test
    void testConnectionGoesThroughTheChatPath() throws Exception {
        int before = mock.requests.get();
        TestConnectionResult ok = client.testConnection(mock.settings("echo", 4, 0))
                .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertTrue(ok.ok(), String.valueOf(ok.raw()));
        assertEquals(200, ok.status());
        assertTrue(ok.matched());
        assertFalse(ok.sampleText().isEmpty());
        assertNull(ok.error());
        assertTrue(mock.requests.get() > before, "the mock server was called");

        TestConnectionResult miss = client.testConnection(mock.settings("other_shape", 4, 0))
                .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertFalse(miss.ok());
        assertTrue(miss.suggestions().stream().anyMatch(s -> s.path().equals("$.output.text")),
                miss.suggestions().toString());
        LlmRequestFailed err = assertInstanceOf(LlmRequestFailed.class, miss.error());
        assertEquals("no_match", err.kind());
    }
}
