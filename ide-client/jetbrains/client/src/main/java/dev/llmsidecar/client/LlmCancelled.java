package dev.llmsidecar.client;

import java.util.concurrent.CancellationException;

/**
 * A completion was cancelled. It is a {@link CancellationException}, so {@code future.isCancelled()} is true and
 * {@code get()}/{@code join()} throw it directly; it carries the text streamed before the cancel.
 */
public final class LlmCancelled extends CancellationException {
    private final String partialText;
    private final String partialReasoning;

    public LlmCancelled(String message, String partialText, String partialReasoning) {
        super(message);
        this.partialText = partialText == null ? "" : partialText;
        this.partialReasoning = partialReasoning;
    }

    /**
     * For a cancel through the future: exactly the content of the chunks delivered to the listener (later chunks
     * are dropped). For a cancel reported by the sidecar: its {@code partialText}.
     */
    public String partialText() { return partialText; }

    /** The reasoning text streamed before the cancel, or null when there was none. */
    public String partialReasoning() { return partialReasoning; }
}
