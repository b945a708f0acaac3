package dev.llmsidecar.client;

import com.google.gson.JsonElement;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.Function;

/**
 * The future of one request without a stream. {@link #cancel(boolean)} sends {@code $/cancelRequest} (when the
 * request was written) and completes the future at once with an {@link LlmCancelled}; the sidecar's late answer
 * is dropped. A cancel before the request was written sends nothing.
 */
final class RequestFuture<T> extends CompletableFuture<T> implements Connection.Pending {
    private final String method;
    private final Function<JsonElement, T> map;
    private final Executor executor;
    private final Object lock = new Object();
    private boolean cancelled;
    private Connection connection;
    private long requestId;

    RequestFuture(String method, Function<JsonElement, T> map, Executor executor) {
        this.method = method;
        this.map = map;
        this.executor = executor;
    }

    /** Called just before the request is written; false when it was cancelled first (then nothing is sent). */
    boolean attach(Connection c, long id) {
        synchronized (lock) {
            if (cancelled || isDone()) return false;
            this.connection = c;
            this.requestId = id;
            return true;
        }
    }

    @Override
    public void onResult(JsonElement result) {
        T value;
        try {
            value = map.apply(result);
        } catch (RuntimeException e) {
            onError(new SidecarException(SidecarException.INTERNAL_ERROR,
                    method + " returned an unexpected result: " + result, null, e));
            return;
        }
        executor.execute(() -> complete(value));
    }

    @Override
    public void onError(RuntimeException error) {
        executor.execute(() -> completeExceptionally(error));
    }

    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        Connection c;
        long id;
        synchronized (lock) {
            if (cancelled || isDone()) return false;
            cancelled = true;
            c = connection;
            id = requestId;
        }
        boolean changed = completeExceptionally(new LlmCancelled(method + " cancelled", "", null));
        if (c != null) c.cancel(id);
        return changed;
    }
}
