package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The client of one {@code llm-sidecar} process, spawned on first use. All methods are non-blocking and
 * thread-safe; {@link #close()} blocks for at most the configured close timeout.
 *
 * <p>If the process dies, requests in flight fail with {@link SidecarDied} and the next call starts a new
 * process: at once after one death, with exponential backoff while it keeps dying.
 */
public final class SidecarClient implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("llm-sidecar.client");

    private final SidecarOptions options;
    private final AtomicLong ids = new AtomicLong();
    private final Object state = new Object();
    private final RestartBackoff backoff;
    private final ScheduledExecutorService scheduler;
    private Connection current; // guarded by state
    private CompletableFuture<Connection> starting; // guarded by state
    private JsonObject serverInfo; // guarded by state
    private JsonObject configuration; // guarded by state: initializationOptions plus later configure() calls
    private boolean closed; // guarded by state

    public SidecarClient(SidecarOptions options) {
        this.options = options;
        this.backoff = new RestartBackoff(options.initialBackoff.toMillis(), options.maxBackoff.toMillis());
        this.configuration = options.initializationOptions == null ? null : options.initializationOptions.deepCopy();
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "llm-sidecar-restart");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Streams one completion. {@code listener} gets each chunk in order on the reader thread; the future completes
     * after the last chunk. Cancelling the future sends {@code $/cancelRequest} and completes it with an
     * {@link LlmCancelled} carrying the partial text. Failures: {@link LlmRequestFailed}, {@link InvalidSettings},
     * {@link SidecarDied}, {@link SidecarUnavailable}.
     */
    public CompletableFuture<CompletionResult> complete(CompleteParams params, ChunkListener listener) {
        CompletionFuture f = new CompletionFuture(listener, options.callbackExecutor);
        JsonObject p = params.toJson();
        connection().whenComplete((conn, err) -> {
            if (err != null) {
                f.onError(unwrap(err));
                return;
            }
            long id = ids.incrementAndGet();
            String streamId = "jb-" + id;
            if (!f.attach(conn, id, streamId)) return;
            p.addProperty("streamId", streamId);
            conn.request(id, "llm/complete", p, streamId, f);
        });
        return f;
    }

    /**
     * One code completion at the cursor ({@code llm/inlineCompletion}). Cancelling the future sends
     * {@code $/cancelRequest} and completes it with {@link LlmCancelled} at once; an editor cancels the previous
     * request whenever the user types again. A request the sidecar superseded also ends with {@link LlmCancelled}.
     * Failures: {@link LlmRequestFailed}, {@link InvalidSettings} (also when no completion settings are configured),
     * {@link SidecarDied}, {@link SidecarUnavailable}.
     */
    public CompletableFuture<InlineCompletion> inlineCompletion(InlineCompletionParams params) {
        RequestFuture<InlineCompletion> f = new RequestFuture<>("llm/inlineCompletion",
                r -> InlineCompletion.from(r.getAsJsonObject()), options.callbackExecutor);
        JsonObject p = params.toJson();
        connection().whenComplete((conn, err) -> {
            if (err != null) {
                f.onError(unwrap(err));
                return;
            }
            long id = ids.incrementAndGet();
            if (!f.attach(conn, id)) return;
            conn.request(id, "llm/inlineCompletion", p, null, f);
        });
        return f;
    }

    /** The built-in presets ({@code llm/presets}). */
    public CompletableFuture<List<Preset>> presets() {
        return call("llm/presets", new JsonObject(), r -> {
            List<Preset> out = new ArrayList<>();
            JsonArray a = Json.array(r.getAsJsonObject(), "presets");
            if (a != null) for (JsonElement e : a) if (e.isJsonObject()) out.add(Preset.from(e.getAsJsonObject()));
            return List.copyOf(out);
        });
    }

    /** Every problem of the settings at once ({@code llm/validateSettings}). */
    public CompletableFuture<ValidationResult> validateSettings(LlmSettings settings) {
        return validateSettings(CompleteParams.builder().settings(settings).build());
    }

    /** Validates a settings selection (inline settings, {@code llm}, {@code modelType}, {@code profile}). */
    public CompletableFuture<ValidationResult> validateSettings(CompleteParams selection) {
        JsonObject p = selection.toJson();
        p.remove("messages");
        return call("llm/validateSettings", p, r -> ValidationResult.from(r.getAsJsonObject()));
    }

    /** One completion through exactly the chat path, reported ({@code llm/testConnection}). */
    public CompletableFuture<TestConnectionResult> testConnection(LlmSettings settings) {
        return testConnection(CompleteParams.builder().settings(settings).build());
    }

    /** Tests a settings selection; its messages, if any, replace the default short prompt. */
    public CompletableFuture<TestConnectionResult> testConnection(CompleteParams selection) {
        return call("llm/testConnection", selection.toJson(), r -> TestConnectionResult.from(r.getAsJsonObject()));
    }

    /**
     * Replaces the {@code customLlms} and/or {@code profiles} it names
     * ({@code workspace/didChangeConfiguration}); remembered and sent again with {@code initialize} after a restart.
     */
    public void configure(JsonObject settings) {
        Connection c;
        synchronized (state) {
            JsonObject merged = configuration == null ? new JsonObject() : configuration;
            for (var e : settings.entrySet()) merged.add(e.getKey(), e.getValue().deepCopy());
            configuration = merged;
            c = current;
        }
        if (c != null && c.isAlive()) {
            JsonObject params = new JsonObject();
            params.add("settings", settings.deepCopy());
            try {
                c.notify("workspace/didChangeConfiguration", params);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, "configure: the sidecar is gone; sent on restart", e);
            }
        }
    }

    /**
     * Sends the user's AutoDev 2.x {@code customLlms} list: its {@code Completion} entry then serves
     * {@link #inlineCompletion} and its {@code Default} entry serves {@link #complete} when a request names no
     * settings. Sent as {@code workspace/didChangeConfiguration} now and in {@code initializationOptions} on every
     * (re)start. Take it only from the user's own settings, never from a project file: it decides where requests
     * and keys go.
     */
    public void configureCustomLlms(JsonArray customLlms) {
        JsonObject change = new JsonObject();
        change.add("customLlms", customLlms == null ? new JsonArray() : customLlms.deepCopy());
        configure(change);
    }

    /** {@link #configureCustomLlms(JsonArray)} from the JSON text AutoDev stores (an array of entries). */
    public void configureCustomLlms(String autoDevJson) {
        JsonElement parsed = com.google.gson.JsonParser.parseString(autoDevJson == null || autoDevJson.isBlank()
                ? "[]" : autoDevJson);
        if (!parsed.isJsonArray()) throw new IllegalArgumentException("customLlms must be a JSON array of entries");
        configureCustomLlms(parsed.getAsJsonArray());
    }

    /**
     * The settings code completion uses when a request names none and no {@code customLlms} entry has
     * {@code modelType: Completion}: a settings object in the chat form with {@code fim}, {@code {"llm": name}}
     * or {@code {"profile": name}}; null removes them.
     */
    public void configureCompletion(JsonObject completion) {
        JsonObject change = new JsonObject();
        change.add("completion", completion == null ? com.google.gson.JsonNull.INSTANCE : completion.deepCopy());
        configure(change);
    }

    /** Any method, raw: for methods this class does not wrap. */
    public CompletableFuture<JsonElement> request(String method, JsonElement params) {
        return call(method, params, r -> r);
    }

    /** The {@code serverInfo} of the running sidecar's {@code initialize} result, or null before the first start. */
    public JsonObject serverInfo() {
        synchronized (state) {
            return serverInfo == null ? null : serverInfo.deepCopy();
        }
    }

    /** The pid of the running sidecar, if one is running. */
    public OptionalLong pid() {
        synchronized (state) {
            return current != null && current.isAlive() ? OptionalLong.of(current.pid()) : OptionalLong.empty();
        }
    }

    /** How long the next start would wait (0 unless the sidecar keeps dying). */
    public Duration nextRestartDelay() {
        synchronized (state) {
            return Duration.ofMillis(backoff.nextDelayMs());
        }
    }

    /**
     * Sends {@code shutdown} then {@code exit}, waits for the process for at most the close timeout, then kills
     * it. Requests in flight fail with {@link SidecarDied}; later calls fail with {@link SidecarUnavailable}.
     */
    @Override
    public void close() {
        Connection c;
        CompletableFuture<Connection> pendingStart;
        synchronized (state) {
            if (closed) return;
            closed = true;
            c = current;
            current = null;
            pendingStart = starting;
            starting = null;
        }
        if (c != null) c.shutdown(options.closeTimeout.toNanos());
        scheduler.shutdownNow();
        // a start that had not run yet never will; one that is running shuts its process down when it sees closed
        if (pendingStart != null) pendingStart.completeExceptionally(new SidecarUnavailable("the client is closed", null));
    }

    private <T> CompletableFuture<T> call(String method, JsonElement params, Function<JsonElement, T> map) {
        CompletableFuture<T> f = new CompletableFuture<>();
        connection().whenComplete((conn, err) -> {
            if (err != null) {
                complete(f, null, unwrap(err));
                return;
            }
            long id = ids.incrementAndGet();
            conn.request(id, method, params, null, new Connection.Pending() {
                @Override
                public void onResult(JsonElement result) {
                    T value;
                    try {
                        value = map.apply(result);
                    } catch (RuntimeException e) {
                        complete(f, null, new SidecarException(SidecarException.INTERNAL_ERROR,
                                method + " returned an unexpected result: " + result, null, e));
                        return;
                    }
                    complete(f, value, null);
                }

                @Override
                public void onError(RuntimeException error) {
                    complete(f, null, error);
                }
            });
        });
        return f;
    }

    private <T> void complete(CompletableFuture<T> f, T value, Throwable error) {
        options.callbackExecutor.execute(() -> {
            if (error != null) f.completeExceptionally(error);
            else f.complete(value);
        });
    }

    private static RuntimeException unwrap(Throwable t) {
        while (t instanceof CompletionException && t.getCause() != null) t = t.getCause();
        return t instanceof RuntimeException r ? r : new SidecarUnavailable(t.getMessage(), t);
    }

    /** The running connection, or a start (immediate, or after the backoff delay). */
    private CompletableFuture<Connection> connection() {
        CompletableFuture<Connection> s;
        long delay;
        synchronized (state) {
            if (closed) return CompletableFuture.failedFuture(new SidecarUnavailable("the client is closed", null));
            if (current != null && current.isAlive()) return CompletableFuture.completedFuture(current);
            if (starting != null) return starting;
            s = new CompletableFuture<>();
            starting = s;
            delay = backoff.nextDelayMs();
        }
        // always on the scheduler thread: spawning a process never blocks the caller (the IDE's UI thread, say)
        if (delay > 0) LOG.log(System.Logger.Level.INFO, "llm-sidecar keeps dying; starting it again in " + delay + " ms");
        try {
            scheduler.schedule(() -> start(s), delay, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            startFailed(s, new SidecarUnavailable("the client is closed", e));
        }
        return s;
    }

    private void start(CompletableFuture<Connection> s) {
        Connection c;
        JsonObject initOptions;
        synchronized (state) {
            if (closed) {
                startFailedLocked(s);
                s.completeExceptionally(new SidecarUnavailable("the client is closed", null));
                return;
            }
            initOptions = configuration == null ? null : configuration.deepCopy();
        }
        try {
            c = Connection.start(options, this::onDeath);
        } catch (IOException | RuntimeException e) {
            startFailed(s, new SidecarUnavailable("could not start llm-sidecar (" + String.join(" ", options.command)
                    + "): " + e.getMessage(), e));
            return;
        }
        JsonObject init = new JsonObject();
        init.addProperty("processId", ProcessHandle.current().pid());
        JsonObject clientInfo = new JsonObject();
        clientInfo.addProperty("name", options.clientName);
        init.add("clientInfo", clientInfo);
        init.add("capabilities", new JsonObject());
        if (initOptions != null) init.add("initializationOptions", initOptions);
        c.request(ids.incrementAndGet(), "initialize", init, null, new Connection.Pending() {
            @Override
            public void onResult(JsonElement result) {
                try {
                    c.notify("initialized", new JsonObject());
                } catch (IOException e) {
                    // the reader sees the death and fails what is in flight
                }
                boolean closedMeanwhile;
                synchronized (state) {
                    closedMeanwhile = closed;
                    if (!closed) {
                        current = c;
                        starting = null;
                        serverInfo = result.isJsonObject() ? Json.object(result.getAsJsonObject(), "serverInfo") : null;
                    }
                }
                if (closedMeanwhile) {
                    shutdownInBackground(c);
                    startFailed(s, new SidecarUnavailable("the client is closed", null));
                } else {
                    s.complete(c);
                }
            }

            @Override
            public boolean showsHealth() {
                return false;
            }

            @Override
            public void onError(RuntimeException error) {
                // died before answering (SidecarDied), or refused initialize: either way this start failed, and a
                // process that refused is not kept running
                if (!(error instanceof SidecarDied)) shutdownInBackground(c);
                startFailed(s, error);
            }
        });
    }

    /** Not on the reader thread: shutdown waits for a response that only the reader can deliver. */
    private void shutdownInBackground(Connection c) {
        Thread t = new Thread(() -> c.shutdown(options.closeTimeout.toNanos()), "llm-sidecar-shutdown-" + c.pid());
        t.setDaemon(true);
        t.start();
    }

    private void startFailed(CompletableFuture<Connection> s, RuntimeException error) {
        synchronized (state) {
            startFailedLocked(s);
        }
        s.completeExceptionally(error);
    }

    private void startFailedLocked(CompletableFuture<Connection> s) {
        if (starting == s) starting = null;
        backoff.recordStartFailure();
    }

    private void onDeath(Connection c) {
        synchronized (state) {
            if (current == c) {
                current = null;
                if (!closed) backoff.recordDeath(c.wasHealthy(options.healthyAfter.toNanos()));
            }
        }
    }
}
