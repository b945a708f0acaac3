package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Consumer;

/** How to start and supervise the sidecar. Immutable; build with {@link #builder(Path)}. */
public final class SidecarOptions {
    final List<String> command;
    final Map<String, String> environment;
    final Path workingDirectory;
    final Consumer<String> stderrSink;
    final JsonObject initializationOptions;
    final Duration closeTimeout;
    final Duration initialBackoff;
    final Duration maxBackoff;
    final Duration healthyAfter;
    final Executor callbackExecutor;
    final String clientName;

    private SidecarOptions(Builder b) {
        this.command = List.copyOf(b.command);
        this.environment = Map.copyOf(b.environment);
        this.workingDirectory = b.workingDirectory;
        this.stderrSink = b.stderrSink;
        this.initializationOptions = b.initializationOptions == null ? null : b.initializationOptions.deepCopy();
        this.closeTimeout = b.closeTimeout;
        this.initialBackoff = b.initialBackoff;
        this.maxBackoff = b.maxBackoff;
        this.healthyAfter = b.healthyAfter;
        this.callbackExecutor = b.callbackExecutor;
        this.clientName = b.clientName;
    }

    /** Runs the sidecar binary at {@code binary} with no arguments. */
    public static Builder builder(Path binary) {
        return new Builder(List.of(binary.toString()));
    }

    /** Runs any command that speaks the protocol on stdio (a wrapper script, for instance). */
    public static Builder builder(List<String> command) {
        return new Builder(command);
    }

    public List<String> command() { return command; }

    public static final class Builder {
        private final List<String> command;
        private final Map<String, String> environment = new LinkedHashMap<>();
        private Path workingDirectory;
        private Consumer<String> stderrSink = defaultStderrSink();
        private JsonObject initializationOptions;
        private Duration closeTimeout = Duration.ofSeconds(3);
        private Duration initialBackoff = Duration.ofMillis(500);
        private Duration maxBackoff = Duration.ofSeconds(30);
        private Duration healthyAfter = Duration.ofSeconds(30);
        private Executor callbackExecutor = ForkJoinPool.commonPool();
        private String clientName = "llm-sidecar-jetbrains";

        private Builder(List<String> command) {
            if (command.isEmpty()) throw new IllegalArgumentException("empty command");
            this.command = new ArrayList<>(command);
        }

        /** Adds an environment variable for the child, e.g. {@code LLM_SIDECAR_LOG=debug}. */
        public Builder env(String name, String value) { environment.put(name, value); return this; }

        public Builder workingDirectory(Path dir) { this.workingDirectory = dir; return this; }

        /** Receives every line the sidecar writes to stderr (its log), on the stderr thread. */
        public Builder stderrSink(Consumer<String> sink) { this.stderrSink = Objects.requireNonNull(sink); return this; }

        /**
         * Sent with {@code initialize} on every start (and so again after a restart): {@code customLlms},
         * {@code profiles}. Without it, {@code initialize} is still sent, with no options.
         */
        public Builder initializationOptions(JsonObject o) { this.initializationOptions = o; return this; }

        /** How long {@link SidecarClient#close()} waits for shutdown/exit before killing the process. */
        public Builder closeTimeout(Duration d) { this.closeTimeout = d; return this; }

        /**
         * Restart backoff: the first restart after a death is immediate; each further death without a healthy run
         * in between waits {@code initial}, doubling up to {@code max}.
         */
        public Builder restartBackoff(Duration initial, Duration max) {
            this.initialBackoff = initial;
            this.maxBackoff = max;
            return this;
        }

        /** A process that lived this long, or answered a request, resets the backoff when it dies. */
        public Builder healthyAfter(Duration d) { this.healthyAfter = d; return this; }

        /** Where futures are completed (not chunks: those come on the reader thread). Default: the common pool. */
        public Builder callbackExecutor(Executor e) { this.callbackExecutor = Objects.requireNonNull(e); return this; }

        public Builder clientName(String name) { this.clientName = name; return this; }

        public SidecarOptions build() { return new SidecarOptions(this); }
    }

    private static Consumer<String> defaultStderrSink() {
        System.Logger log = System.getLogger("llm-sidecar.stderr");
        return line -> log.log(System.Logger.Level.INFO, line);
    }
}
