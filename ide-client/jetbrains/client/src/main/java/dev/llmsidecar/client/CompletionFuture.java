package dev.llmsidecar.client;

import com.google.gson.JsonElement;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * The future of one {@code llm/complete}. {@link #cancel(boolean)} sends {@code $/cancelRequest} and completes the
 * future at once with an {@link LlmCancelled} that carries exactly the text of the chunks accepted before the cancel;
 * chunks that arrive afterwards are dropped, so the listener never sees text the cancellation does not carry.
 */
final class CompletionFuture extends CompletableFuture<CompletionResult> implements Connection.StreamRoute {
    private static final System.Logger LOG = System.getLogger("llm-sidecar.client");

    private final ChunkListener listener;
    private final Executor executor;
    private final Object lock = new Object();
    private final StringBuilder content = new StringBuilder();
    private StringBuilder reasoning;
    private boolean cancelled;
    private Connection connection;
    private long requestId;
    private String streamId;

    CompletionFuture(ChunkListener listener, Executor executor) {
        this.listener = listener == null ? ChunkListener.NONE : listener;
        this.executor = executor;
    }

    /**
     * Called just before the request is written. Returns false when the future was cancelled (or failed) before it
     * could be sent: then nothing is sent.
     */
    boolean attach(Connection c, long id, String streamId) {
        synchronized (lock) {
            if (cancelled || isDone()) return false;
            this.connection = c;
            this.requestId = id;
            this.streamId = streamId;
            return true;
        }
    }

    @Override
    public String streamId() {
        synchronized (lock) {
            return streamId;
        }
    }

    @Override
    public void onChunk(Chunk chunk) {
        synchronized (lock) {
            if (cancelled) return;
            if (chunk.isReasoning()) {
                if (reasoning == null) reasoning = new StringBuilder();
                reasoning.append(chunk.text());
            } else {
                content.append(chunk.text());
            }
        }
        try {
            listener.onChunk(chunk);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "chunk listener threw", e);
        }
    }

    @Override
    public void onResult(JsonElement result) {
        CompletionResult r;
        try {
            r = CompletionResult.from(result.getAsJsonObject());
        } catch (RuntimeException e) {
            onError(new SidecarException(SidecarException.INTERNAL_ERROR,
                    "llm/complete returned an unexpected result: " + result, null, e));
            return;
        }
        executor.execute(() -> complete(r));
    }

    @Override
    public void onError(RuntimeException error) {
        executor.execute(() -> completeExceptionally(error));
    }

    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        Connection c;
        long id;
        LlmCancelled ex;
        synchronized (lock) {
            if (cancelled || isDone()) return false;
            cancelled = true;
            c = connection;
            id = requestId;
            ex = new LlmCancelled("llm/complete cancelled", content.toString(),
                    reasoning == null ? null : reasoning.toString());
        }
        boolean changed = completeExceptionally(ex);
        if (c != null) c.cancel(id);
        return changed;
    }
}
