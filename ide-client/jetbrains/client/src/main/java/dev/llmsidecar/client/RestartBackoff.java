package dev.llmsidecar.client;

/**
 * When to start the sidecar again after it died: at once after a single death, then with exponential backoff while
 * it keeps dying without a healthy run (one that answered a request or lived long enough) in between.
 * Not thread-safe: the client calls it under its state lock.
 */
final class RestartBackoff {
    private final long initialMs;
    private final long maxMs;
    private int failures;

    RestartBackoff(long initialMs, long maxMs) {
        this.initialMs = Math.max(1, initialMs);
        this.maxMs = Math.max(this.initialMs, maxMs);
    }

    /** A process died; {@code healthy} when it had answered a request or lived long enough. */
    void recordDeath(boolean healthy) {
        failures = healthy ? 1 : failures + 1;
    }

    /** A process could not be started at all. */
    void recordStartFailure() {
        failures++;
    }

    /** Consecutive deaths so far. */
    int failures() { return failures; }

    /** The delay before the next start. */
    long nextDelayMs() {
        if (failures <= 1) return 0;
        int shift = Math.min(failures - 2, 30);
        long d = initialMs << shift;
        return d <= 0 || d > maxMs ? maxMs : d;
    }
}
