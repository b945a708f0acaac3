package dev.llmsidecar.client;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Many completions on one sidecar at once: every chunk reaches its own listener, in order. */
class ConcurrencyTest extends WithSidecar {
    @Test
    void sixtyFourConcurrentCompletions() throws Exception {
        int n = 64;
        List<String> prompts = new ArrayList<>();
        List<List<Chunk>> received = new ArrayList<>();
        List<CompletableFuture<CompletionResult>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String prompt = "request " + i + " of " + n + ": " + "lorem ipsum 数据 ".repeat(1 + i % 7) + "#" + i;
            List<Chunk> chunks = new CopyOnWriteArrayList<>();
            prompts.add(prompt);
            received.add(chunks);
            futures.add(client.complete(CompleteParams.of(mock.settings("echo", 3, 5), prompt), chunks::add));
        }
        CompletableFuture.allOf(futures.toArray(new CompletableFuture[0])).get(3 * TestSidecar.TIMEOUT_S,
                TimeUnit.SECONDS);
        for (int i = 0; i < n; i++) {
            CompletionResult r = futures.get(i).get();
            assertEquals(prompts.get(i), r.text(), "result " + i);
            List<Chunk> chunks = received.get(i);
            assertEquals(r.chunks(), chunks.size(), "chunks of " + i);
            StringBuilder joined = new StringBuilder();
            for (int k = 0; k < chunks.size(); k++) {
                assertEquals(k, chunks.get(k).seq(), "seq of stream " + i);
                joined.append(chunks.get(k).text());
            }
            assertEquals(prompts.get(i), joined.toString(), "stream " + i + " got only its own chunks");
        }
    }
}
