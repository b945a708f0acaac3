package dev.llmsidecar.client;

/**
 * One {@code llm/chunk} notification of a completion: {@code seq} counts 0, 1, 2, ... per stream across both kinds;
 * {@code kind} is {@code "content"} (answer text) or {@code "reasoning"}.
 */
public record Chunk(long seq, String text, String kind) {
    public boolean isReasoning() { return "reasoning".equals(kind); }
}
