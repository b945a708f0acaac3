package dev.llmsidecar.client;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/** Finds the real sidecar binary and builds clients for the tests. */
final class TestSidecar {
    /** Generous: a shared 2-core machine. */
    static final long TIMEOUT_S = 60;

    private TestSidecar() {}

    /**
     * The binary: system property {@code llm.sidecar.bin}, else {@code LLM_SIDECAR_BIN}, else the release build of
     * this checkout. A missing binary fails the tests: they are only meaningful against the real sidecar.
     */
    static Path binary() {
        String p = System.getProperty("llm.sidecar.bin");
        if (p == null || p.isBlank() || p.startsWith("${")) p = System.getenv("LLM_SIDECAR_BIN");
        Path path = p == null || p.isBlank()
                ? Path.of("../../../target/release/llm-sidecar").toAbsolutePath().normalize()
                : Path.of(p);
        if (!Files.isExecutable(path)) {
            throw new IllegalStateException("llm-sidecar binary not found at " + path
                    + " (set LLM_SIDECAR_BIN or -Dllm.sidecar.bin)");
        }
        return path;
    }

    /** Collects what the sidecar writes to stderr. */
    static final class Stderr implements java.util.function.Consumer<String> {
        final List<String> lines = new CopyOnWriteArrayList<>();
        final AtomicLong chars = new AtomicLong();
        volatile boolean keep = true;

        @Override
        public void accept(String line) {
            chars.addAndGet(line.length() + 1);
            if (keep) lines.add(line);
        }
    }

    static SidecarOptions.Builder options(Stderr stderr) {
        return SidecarOptions.builder(binary())
                .stderrSink(stderr)
                .closeTimeout(Duration.ofSeconds(5))
                .restartBackoff(Duration.ofMillis(50), Duration.ofSeconds(2));
    }
}
