package dev.llmsidecar.client;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A sidecar that writes a lot to stderr never stalls: the client keeps the pipe drained (a pipe holds 64 KiB on
 * Linux; a child writing more to an undrained stderr blocks for ever).
 */
class StderrTest {
    static MockLlmServer mock;

    @BeforeAll
    static void start() throws Exception {
        mock = new MockLlmServer();
    }

    @AfterAll
    static void stop() {
        if (mock != null) mock.close();
    }

    @Test
    void aTraceLoggingSidecarServesManyRequests() throws Exception {
        TestSidecar.Stderr stderr = new TestSidecar.Stderr();
        stderr.keep = false;
        var opts = TestSidecar.options(stderr).env("LLM_SIDECAR_LOG", "trace").build();
        try (SidecarClient client = new SidecarClient(opts)) {
            String prompt = "stderr pressure ".repeat(40);
            for (int round = 0; round < 8; round++) {
                List<CompletableFuture<CompletionResult>> futures = new ArrayList<>();
                for (int i = 0; i < 128; i++) {
                    futures.add(client.complete(CompleteParams.of(mock.settings("echo", 4, 0), prompt + i),
                            ChunkListener.NONE));
                }
                for (int i = 0; i < futures.size(); i++) {
                    assertEquals(prompt + i, futures.get(i).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS).text());
                }
            }
            System.out.println("trace stderr: " + stderr.chars.get() + " chars");
            // ~300 bytes of trace log per request: 1024 requests write several times a pipe's 64 KiB
            assertTrue(stderr.chars.get() > 64 * 1024,
                    "the sidecar wrote more than a pipe's capacity to stderr: " + stderr.chars.get());
        }
    }

    @Test
    void megabytesOfStderrBeforeTheFirstFrameDoNotBlock() throws Exception {
        TestSidecar.Stderr stderr = new TestSidecar.Stderr();
        stderr.keep = false;
        // 4 MB on stderr before the sidecar even starts: if nobody reads it, the wrapper blocks and never execs
        var opts = SidecarOptions.builder(List.of("sh", "-c",
                        "i=0; while [ $i -lt 40000 ]; do echo \"noise line $i: ü € 你好 ..................................................................\"; i=$((i+1)); done >&2; exec \"$0\"",
                        TestSidecar.binary().toString()))
                .stderrSink(stderr).build();
        try (SidecarClient client = new SidecarClient(opts)) {
            CompletionResult r = client.complete(CompleteParams.of(mock.settings("echo", 4, 0), "still here"),
                    ChunkListener.NONE).get(3 * TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            assertEquals("still here", r.text());
            assertTrue(stderr.chars.get() > 3_000_000, String.valueOf(stderr.chars.get()));
        }
    }
}
