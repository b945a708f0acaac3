package dev.llmsidecar.client;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/**
 * Waiting for a completion on a worker thread that has its own cancel signal, such as an IDE progress indicator:
 * the wait polls the signal and cancels the completion when it is raised, and the outcome is one of three typed cases.
 */
public final class Await {
    private Await() {}

    /** How a completion ended. */
    public sealed interface Outcome permits Done, Cancelled, Failed {}

    /** It finished. */
    public record Done(CompletionResult result) implements Outcome {}

    /** It was cancelled (by the signal, through the future, or by the sidecar); carries the partial text. */
    public record Cancelled(LlmCancelled cancellation) implements Outcome {}

    /** It failed: {@link LlmRequestFailed}, {@link InvalidSettings}, {@link SidecarDied}, ... (never wrapped). */
    public record Failed(Throwable error) implements Outcome {}

    /**
     * Blocks until {@code future} completes, checking {@code cancelRequested} every {@code poll}; when it turns true
     * the future is cancelled ({@code $/cancelRequest}) and the outcome is {@link Cancelled} at once. If this thread
     * is interrupted the completion is cancelled too, and the interrupt is passed on.
     */
    public static Outcome completion(CompletableFuture<CompletionResult> future, BooleanSupplier cancelRequested,
                                     Duration poll) throws InterruptedException {
        long pollNanos = Math.max(1, poll.toNanos());
        while (true) {
            if (cancelRequested.getAsBoolean()) future.cancel(true);
            try {
                return new Done(future.get(pollNanos, TimeUnit.NANOSECONDS));
            } catch (TimeoutException stillRunning) {
                // poll the signal again
            } catch (LlmCancelled c) {
                return new Cancelled(c);
            } catch (java.util.concurrent.CancellationException c) {
                return new Cancelled(new LlmCancelled(c.getMessage(), "", null));
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                while (cause instanceof CompletionException && cause.getCause() != null) cause = cause.getCause();
                if (cause instanceof LlmCancelled c) return new Cancelled(c);
                return new Failed(cause == null ? e : cause);
            } catch (InterruptedException e) {
                future.cancel(true);
                throw e;
            }
        }
    }
}
