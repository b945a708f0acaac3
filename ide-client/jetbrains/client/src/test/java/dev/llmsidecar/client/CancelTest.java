package dev.llmsidecar.client;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Cancelling the future cancels the request in the sidecar, which closes the LLM server's connection. */
class CancelTest extends WithSidecar {
    @Test
    void cancelCarriesThePartialTextAndStopsTheServerStream() throws Exception {
        StringBuffer delivered = new StringBuffer();
        CountDownLatch threeChunks = new CountDownLatch(3);
        var future = client.complete(CompleteParams.of(mock.settings("forever", 1, 20), "go"), c -> {
            delivered.append(c.text());
            threeChunks.countDown();
        });
        assertTrue(threeChunks.await(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS), "stream started");

        assertTrue(future.cancel(true));
        assertTrue(future.isCancelled());
        assertTrue(future.isDone());
        LlmCancelled c = assertThrows(LlmCancelled.class, () -> future.get(1, TimeUnit.SECONDS));
        assertTrue(c.partialText().startsWith("tick 0 tick 1 tick 2 "), c.partialText());

        // the sidecar got $/cancelRequest: it closed its connection to the LLM server
        assertTrue(mock.disconnects.tryAcquire(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS),
                "the LLM server saw the connection closed");

        // a later request's answer is read after every chunk of the cancelled stream, so by then the listener has
        // seen exactly the text the cancellation carries: nothing after the cancel reached it
        client.presets().get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals(c.partialText(), delivered.toString());

        assertFalse(future.cancel(true), "a second cancel does nothing");

        // the same sidecar keeps working
        CompletionResult r = client.complete(CompleteParams.of(mock.settings("echo", 2, 0), "after cancel"),
                ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
        assertEquals("after cancel", r.text());
    }

    @Test
    void aProgressIndicatorStyleSignalCancelsThroughAwait() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean cancelPressed = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger seen = new java.util.concurrent.atomic.AtomicInteger();
        var future = client.complete(CompleteParams.of(mock.settings("forever", 1, 20), "go"), c -> {
            if (seen.incrementAndGet() == 3) cancelPressed.set(true); // the user presses Cancel
        });
        Await.Outcome o = Await.completion(future, cancelPressed::get, java.time.Duration.ofMillis(20));
        Await.Cancelled c = assertInstanceOf(Await.Cancelled.class, o);
        assertTrue(c.cancellation().partialText().startsWith("tick 0 tick 1 tick 2 "), c.cancellation().partialText());
        assertTrue(mock.disconnects.tryAcquire(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS),
                "the LLM server saw the connection closed");

        // the other two outcomes
        Await.Done done = assertInstanceOf(Await.Done.class, Await.completion(client.complete(
                CompleteParams.of(mock.settings("echo", 2, 0), "fine"), ChunkListener.NONE), () -> false,
                java.time.Duration.ofMillis(20)));
        assertEquals("fine", done.result().text());
        Await.Failed failed = assertInstanceOf(Await.Failed.class, Await.completion(client.complete(
                CompleteParams.of(mock.settings("other_shape", 2, 0), "fine"), ChunkListener.NONE), () -> false,
                java.time.Duration.ofMillis(20)));
        assertEquals("no_match", assertInstanceOf(LlmRequestFailed.class, failed.error()).kind());
    }

    @Test
    void cancelWhileTheSidecarIsStartingSendsNothing() throws Exception {
        // a sidecar that takes 2 s to start: the cancel comes while initialize is still unanswered
        var opts = SidecarOptions.builder(java.util.List.of("sh", "-c", "sleep 2; exec \"$0\"",
                        TestSidecar.binary().toString()))
                .stderrSink(new TestSidecar.Stderr()).closeTimeout(java.time.Duration.ofSeconds(5)).build();
        try (SidecarClient slow = new SidecarClient(opts)) {
            int before = mock.requests.get();
            var future = slow.complete(CompleteParams.of(mock.settings("forever", 1, 20), "go"), ChunkListener.NONE);
            assertTrue(future.cancel(false));
            LlmCancelled c = assertThrows(LlmCancelled.class, future::join);
            assertEquals("", c.partialText());

            CompletionResult r = slow.complete(CompleteParams.of(mock.settings("echo", 2, 0), "next"),
                    ChunkListener.NONE).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            assertEquals("next", r.text());
            assertEquals(before + 1, mock.requests.get(), "the cancelled request never reached the LLM server");
        }
    }
}
