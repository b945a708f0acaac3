package dev.llmsidecar.client;

/**
 * Receives the chunks of one completion, in order, on the client's reader thread, before its future completes.
 * It must return quickly (hand the text to the UI thread, don't block): all streams share the reader thread.
 * An exception thrown by the listener is logged and does not stop the stream.
 */
@FunctionalInterface
public interface ChunkListener {
    void onChunk(Chunk chunk);

    ChunkListener NONE = chunk -> {};
}
