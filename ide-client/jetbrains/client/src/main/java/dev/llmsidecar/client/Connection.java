package dev.llmsidecar.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One running sidecar process: the writer (callers serialised on a lock), the reader thread that dispatches
 * responses and chunks, and the stderr thread that keeps the child's stderr drained into the log.
 */
final class Connection {
    /** What a request in flight receives. */
    interface Pending {
        /** An {@code llm/chunk} of this request's stream (reader thread). */
        default void onChunk(Chunk chunk) {}

        void onResult(JsonElement result);

        void onError(RuntimeException error);

        /** Whether a successful answer shows the process is healthy (not so for {@code initialize}). */
        default boolean showsHealth() { return true; }
    }

    private static final System.Logger LOG = System.getLogger("llm-sidecar.client");
    private static final int STDERR_TAIL_LINES = 20;

    private final Process process;
    private final OutputStream stdin;
    private final Object writeLock = new Object();
    private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
    private final Map<String, Pending> streams = new ConcurrentHashMap<>();
    private final Deque<String> stderrTail = new ArrayDeque<>();
    private final Thread reader;
    private final Thread stderrReader;
    private final Consumer<Connection> onDeath;
    private final long startedNanos = System.nanoTime();
    private volatile boolean answered;
    private volatile boolean closing;
    private SidecarDied death; // guarded by this

    private Connection(Process process, Consumer<String> stderrSink, Consumer<Connection> onDeath) {
        this.process = process;
        this.onDeath = onDeath;
        this.stdin = new BufferedOutputStream(process.getOutputStream(), 64 * 1024);
        long pid = process.pid();
        this.stderrReader = new Thread(() -> drainStderr(stderrSink), "llm-sidecar-stderr-" + pid);
        this.reader = new Thread(this::readLoop, "llm-sidecar-reader-" + pid);
        stderrReader.setDaemon(true);
        reader.setDaemon(true);
    }

    static Connection start(SidecarOptions options, Consumer<Connection> onDeath) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(options.command);
        pb.environment().putAll(options.environment);
        if (options.workingDirectory != null) pb.directory(options.workingDirectory.toFile());
        pb.redirectInput(ProcessBuilder.Redirect.PIPE);
        pb.redirectOutput(ProcessBuilder.Redirect.PIPE);
        pb.redirectError(ProcessBuilder.Redirect.PIPE);
        Process p = pb.start();
        Connection c = new Connection(p, options.stderrSink, onDeath);
        c.stderrReader.start();
        c.reader.start();
        return c;
    }

    long pid() { return process.pid(); }

    boolean isAlive() {
        synchronized (this) {
            if (death != null) return false;
        }
        return process.isAlive();
    }

    /** Answered at least one request, or has run long enough: its death does not count towards backoff. */
    boolean wasHealthy(long healthyAfterNanos) {
        return answered || System.nanoTime() - startedNanos >= healthyAfterNanos;
    }

    int inFlight() { return pending.size(); }

    /** Sends a request; {@code streamId} (or null) routes its chunks to {@code p}. */
    void request(long id, String method, JsonElement params, String streamId, Pending p) {
        synchronized (this) {
            if (death != null) {
                p.onError(death);
                return;
            }
            pending.put(id, p);
            if (streamId != null) streams.put(streamId, p);
        }
        JsonObject msg = new JsonObject();
        msg.addProperty("jsonrpc", "2.0");
        msg.addProperty("id", id);
        msg.addProperty("method", method);
        if (params != null && !params.isJsonNull()) msg.add("params", params);
        try {
            send(msg);
        } catch (IOException e) {
            // A broken pipe: the process is exiting or has closed its input. The reader sees the end of its output
            // and fails this request with the exit code and the last stderr lines. Not destroy() at once: that
            // closes our ends of stdout and stderr and loses the process's last words. A process that closed its
            // input but lingers is useless, though, so it goes after a grace period.
            LOG.log(System.Logger.Level.DEBUG, "could not write " + method + " to llm-sidecar: " + e);
            killIfLingering();
        }
    }

    private final java.util.concurrent.atomic.AtomicBoolean lingerWatch = new java.util.concurrent.atomic.AtomicBoolean();

    private void killIfLingering() {
        if (!process.isAlive() || !lingerWatch.compareAndSet(false, true)) return;
        Thread t = new Thread(() -> {
            try {
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    LOG.log(System.Logger.Level.WARNING, "llm-sidecar stopped reading its input; killing it");
                    process.destroyForcibly();
                }
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "llm-sidecar-linger-" + process.pid());
        t.setDaemon(true);
        t.start();
    }

    void notify(String method, JsonElement params) throws IOException {
        JsonObject msg = new JsonObject();
        msg.addProperty("jsonrpc", "2.0");
        msg.addProperty("method", method);
        if (params != null) msg.add("params", params);
        send(msg);
    }

    /** Best effort: asks the sidecar to cancel request {@code id}. */
    void cancel(long id) {
        JsonObject params = new JsonObject();
        params.addProperty("id", id);
        try {
            notify("$/cancelRequest", params);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "could not send $/cancelRequest for " + id, e);
        }
    }

    private void send(JsonObject msg) throws IOException {
        byte[] body = Json.GSON.toJson(msg).getBytes(StandardCharsets.UTF_8);
        synchronized (writeLock) {
            Framing.write(stdin, body);
        }
    }

    private void readLoop() {
        InputStream in = new BufferedInputStream(process.getInputStream(), 64 * 1024);
        Throwable failure = null;
        try {
            while (true) {
                byte[] body = Framing.read(in);
                if (body == null) break;
                JsonElement msg;
                try {
                    msg = JsonParser.parseString(new String(body, StandardCharsets.UTF_8));
                } catch (JsonParseException e) {
                    LOG.log(System.Logger.Level.WARNING, "llm-sidecar sent a frame that is not JSON", e);
                    continue;
                }
                if (msg.isJsonObject()) dispatch(msg.getAsJsonObject());
            }
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
        died(failure);
    }

    private void dispatch(JsonObject msg) {
        JsonElement idEl = msg.get("id");
        String method = Json.string(msg, "method");
        if (method == null) {
            if (idEl == null || !idEl.isJsonPrimitive() || !idEl.getAsJsonPrimitive().isNumber()) {
                if (msg.has("error")) LOG.log(System.Logger.Level.WARNING, "llm-sidecar error without id: " + msg);
                return;
            }
            long id = idEl.getAsLong();
            Pending p = pending.remove(id);
            if (p == null) return; // cancelled and already answered, or not ours
            if (p instanceof StreamRoute r) streams.remove(r.streamId());
            JsonObject error = Json.object(msg, "error");
            if (error != null) {
                p.onError(Errors.fromRpcErrorOrCancel(error));
            } else {
                if (p.showsHealth()) answered = true;
                JsonElement result = msg.get("result");
                p.onResult(result == null ? JsonNull.INSTANCE : result);
            }
            return;
        }
        if (idEl != null && !idEl.isJsonNull()) {
            // a request from the server: the protocol defines none, answer "method not found"
            JsonObject reply = new JsonObject();
            reply.addProperty("jsonrpc", "2.0");
            reply.add("id", idEl);
            JsonObject err = new JsonObject();
            err.addProperty("code", SidecarException.METHOD_NOT_FOUND);
            err.addProperty("message", "client does not implement " + method);
            reply.add("error", err);
            try {
                send(reply);
            } catch (IOException ignored) {
                // the reader will see the end of stream
            }
            return;
        }
        JsonObject params = Json.object(msg, "params");
        switch (method) {
            case "llm/chunk" -> {
                String streamId = Json.string(params, "streamId");
                Pending p = streamId == null ? null : streams.get(streamId);
                if (p == null) return;
                Long seq = Json.longValue(params, "seq");
                String text = Json.string(params, "text");
                String kind = Json.string(params, "kind");
                p.onChunk(new Chunk(seq == null ? -1 : seq, text == null ? "" : text, kind == null ? "content" : kind));
            }
            case "window/showMessage", "window/logMessage" ->
                    LOG.log(System.Logger.Level.WARNING, "llm-sidecar: " + Json.string(params, "message"));
            default -> LOG.log(System.Logger.Level.DEBUG, "ignored notification " + method);
        }
    }

    /** Marks the process dead and fails every request in flight. */
    private void died(Throwable failure) {
        Integer code = null;
        try {
            if (process.waitFor(5, TimeUnit.SECONDS)) code = process.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            stderrReader.join(2000); // so the error quotes the process's last words
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Pending> failed;
        SidecarDied d;
        synchronized (this) {
            int n = pending.size();
            String what = closing ? "llm-sidecar was shut down by the client"
                    : "llm-sidecar (pid " + process.pid() + ") "
                    + (code == null ? "closed its output" : "exited with code " + code + describeSignal(code))
                    + (n == 0 ? "" : " with " + n + (n == 1 ? " request" : " requests") + " in flight");
            if (failure != null && !closing) what += " (" + failure.getMessage() + ")";
            d = new SidecarDied(what + stderrSuffix(), code, stderrTail(), failure);
            death = d;
            failed = new ArrayList<>(pending.values());
            pending.clear();
            streams.clear();
        }
        if (!closing) LOG.log(System.Logger.Level.WARNING, d.getMessage());
        // first the client's state (no longer current, death counted for backoff), so that whoever reacts to the
        // failures below and calls again already gets a new process with the right delay
        onDeath.accept(this);
        for (Pending p : failed) {
            try {
                p.onError(d);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "failing a request threw", e);
            }
        }
    }

    private static String describeSignal(int code) {
        return code > 128 && code < 160 ? " (killed by signal " + (code - 128) + ")" : "";
    }

    private void drainStderr(Consumer<String> sink) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getErrorStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                synchronized (stderrTail) {
                    if (stderrTail.size() == STDERR_TAIL_LINES) stderrTail.removeFirst();
                    stderrTail.addLast(line.length() > 500 ? line.substring(0, 500) + "..." : line);
                }
                try {
                    sink.accept(line);
                } catch (RuntimeException e) {
                    // a broken sink must not stop the draining, or the child blocks on a full pipe
                }
            }
        } catch (IOException e) {
            // the process is gone
        }
    }

    List<String> stderrTail() {
        synchronized (stderrTail) {
            return new ArrayList<>(stderrTail);
        }
    }

    private String stderrSuffix() {
        List<String> tail = stderrTail();
        if (tail.isEmpty()) return "";
        List<String> last = tail.subList(Math.max(0, tail.size() - 5), tail.size());
        return "; last stderr lines: " + String.join(" | ", last);
    }

    /**
     * Orderly shutdown within {@code timeoutNanos}: {@code shutdown}, then {@code exit}, then closing stdin; the
     * process is killed if it is still running at the deadline. Requests in flight fail.
     */
    void shutdown(long timeoutNanos) {
        closing = true;
        long deadline = System.nanoTime() + timeoutNanos;
        if (isAlive()) {
            java.util.concurrent.CompletableFuture<JsonElement> done = new java.util.concurrent.CompletableFuture<>();
            request(-1, "shutdown", null, null, new Pending() {
                public void onResult(JsonElement result) { done.complete(result); }

                public void onError(RuntimeException error) { done.completeExceptionally(error); }
            });
            try {
                done.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (Exception e) {
                LOG.log(System.Logger.Level.DEBUG, "shutdown was not answered: " + e);
            }
            try {
                notify("exit", null);
            } catch (IOException ignored) {
                // already gone
            }
        }
        try {
            stdin.close();
        } catch (IOException ignored) {
            // already closed
        }
        try {
            if (!process.waitFor(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                LOG.log(System.Logger.Level.WARNING, "llm-sidecar did not exit in time; killing it");
                process.destroy();
                if (!process.waitFor(1, TimeUnit.SECONDS)) process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }

    /** Exit code once the process has exited, else null. */
    Integer exitCode() {
        return process.isAlive() ? null : process.exitValue();
    }

    /** A pending request that owns a stream. */
    interface StreamRoute extends Pending {
        String streamId();
    }
}
