package dev.llmsidecar.client;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** A sidecar that dies: in-flight requests fail clearly, the next call restarts it, with backoff. */
class CrashTest {
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
    void killedMidStreamFailsTheFutureAndTheNextCallRestarts() throws Exception {
        try (SidecarClient client = new SidecarClient(TestSidecar.options(new TestSidecar.Stderr()).build())) {
            CountDownLatch firstChunk = new CountDownLatch(1);
            StringBuffer seen = new StringBuffer();
            var streaming = client.complete(CompleteParams.of(mock.settings("forever", 1, 20), "go"), c -> {
                seen.append(c.text());
                firstChunk.countDown();
            });
            var other = client.complete(CompleteParams.of(mock.settings("forever", 1, 50), "go"), ChunkListener.NONE);
            assertTrue(firstChunk.await(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
            long pid = client.pid().orElseThrow();
            assertTrue(ProcessHandle.of(pid).orElseThrow().destroyForcibly());

            for (var f : List.of(streaming, other)) {
                ExecutionException ex = assertThrows(ExecutionException.class,
                        () -> f.get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
                SidecarDied died = assertInstanceOf(SidecarDied.class, ex.getCause());
                assertEquals(137, died.exitCode(), "SIGKILL");
                assertTrue(died.getMessage().contains("exited with code 137"), died.getMessage());
                assertTrue(died.getMessage().contains("in flight"), died.getMessage());
            }
            assertFalse(seen.toString().isEmpty());

            // the next call starts a new sidecar, at once (one death is not a crash loop)
            assertEquals(Duration.ZERO, client.nextRestartDelay());
            CompletionResult r = client.complete(CompleteParams.of(mock.settings("echo", 3, 0), "back again"),
                    ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            assertEquals("back again", r.text());
            assertNotEquals(pid, client.pid().orElseThrow(), "a new process");
        }
    }

    @Test
    void aSidecarThatDiesAtStartFailsWithItsStderrAndBacksOff() throws Exception {
        var opts = SidecarOptions.builder(List.of("sh", "-c", "echo 'fatal: cannot bind the sky' >&2; exit 3"))
                .stderrSink(new TestSidecar.Stderr())
                .restartBackoff(Duration.ofMillis(100), Duration.ofMillis(400))
                .build();
        try (SidecarClient client = new SidecarClient(opts)) {
            for (int i = 0; i < 4; i++) {
                ExecutionException ex = assertThrows(ExecutionException.class, () -> client.presets()
                        .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
                SidecarDied died = assertInstanceOf(SidecarDied.class, ex.getCause());
                assertEquals(3, died.exitCode());
                assertTrue(died.getMessage().contains("exited with code 3"), died.getMessage());
                assertTrue(died.getMessage().contains("fatal: cannot bind the sky"), died.getMessage());
                assertEquals(List.of("fatal: cannot bind the sky"), died.stderrTail());
            }
            // four deaths in a row without a healthy run: the delay grew to the cap
            assertEquals(Duration.ofMillis(400), client.nextRestartDelay());
        }
    }

    @Test
    void aSidecarThatCrashesOnEveryRequestAfterInitializeBacksOff() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        var opts = SidecarOptions.builder(List.of(java, "-cp", System.getProperty("java.class.path"),
                        CrashAfterInitSidecar.class.getName()))
                .stderrSink(new TestSidecar.Stderr())
                .restartBackoff(Duration.ofMillis(100), Duration.ofMillis(400))
                .build();
        try (SidecarClient client = new SidecarClient(opts)) {
            for (int i = 0; i < 3; i++) {
                ExecutionException ex = assertThrows(ExecutionException.class, () -> client.presets()
                        .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
                SidecarDied died = assertInstanceOf(SidecarDied.class, ex.getCause());
                assertEquals(7, died.exitCode());
                assertTrue(died.getMessage().contains("1 request in flight"), died.getMessage());
                assertTrue(died.getMessage().contains("crash-after-init: giving up"), died.getMessage());
            }
            // answering initialize is not a healthy run: three deaths in a row back off
            assertEquals(Duration.ofMillis(200), client.nextRestartDelay());
        }
    }

    @Test
    void aMissingBinaryIsReportedAsUnavailable() {
        Path missing = Path.of("/nonexistent/llm-sidecar");
        try (SidecarClient client = new SidecarClient(SidecarOptions.builder(missing).build())) {
            ExecutionException ex = assertThrows(ExecutionException.class, () -> client.presets()
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
            SidecarUnavailable e = assertInstanceOf(SidecarUnavailable.class, ex.getCause());
            assertTrue(e.getMessage().contains("/nonexistent/llm-sidecar"), e.getMessage());
        }
    }

    @Test
    void backoffGrowsWhileItKeepsDyingAndResetsAfterAHealthyRun() {
        RestartBackoff b = new RestartBackoff(500, 8000);
        assertEquals(0, b.nextDelayMs());
        b.recordDeath(false);
        assertEquals(0, b.nextDelayMs(), "the first restart is immediate");
        b.recordDeath(false);
        assertEquals(500, b.nextDelayMs());
        b.recordDeath(false);
        assertEquals(1000, b.nextDelayMs());
        for (int i = 0; i < 40; i++) b.recordStartFailure();
        assertEquals(8000, b.nextDelayMs(), "capped, no overflow");
        b.recordDeath(true);
        assertEquals(0, b.nextDelayMs(), "a healthy run resets");
    }

    @Test
    void closeShutsTheSidecarDownAndLaterCallsFail() throws Exception {
        SidecarClient client = new SidecarClient(TestSidecar.options(new TestSidecar.Stderr()).build());
        client.presets().get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        ProcessHandle h = ProcessHandle.of(client.pid().orElseThrow()).orElseThrow();
        var inFlight = client.complete(CompleteParams.of(mock.settings("forever", 1, 20), "go"), ChunkListener.NONE);
        client.close();
        assertFalse(h.isAlive(), "close() returns once the process is gone");
        // the sidecar cancels what is in flight when it shuts down; a request it had not answered fails as died
        Throwable t = assertThrows(Throwable.class, () -> inFlight.get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
        if (t instanceof ExecutionException ee) t = ee.getCause();
        assertTrue(t instanceof LlmCancelled || t instanceof SidecarDied, t.toString());
        ExecutionException later = assertThrows(ExecutionException.class,
                () -> client.presets().get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS));
        assertInstanceOf(SidecarUnavailable.class, later.getCause());
        client.close(); // idempotent
    }
}
