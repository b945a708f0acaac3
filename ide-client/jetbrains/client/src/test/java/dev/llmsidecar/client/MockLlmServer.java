package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-style LLM server on 127.0.0.1 for the tests. What it does is chosen per request by fields the tests put
 * in {@code customFields} (the sidecar copies them to the top level of the body):
 * <ul>
 *   <li>{@code mock_mode: "echo"} (default): streams the last message back as SSE chunks of {@code mock_piece}
 *       code points (default 4), {@code mock_delay_ms} apart, then {@code finish_reason: stop} and {@code [DONE]};</li>
 *   <li>{@code "forever"}: streams {@code "tick N "} every {@code mock_delay_ms} until the client goes away, then
 *       counts a disconnect;</li>
 *   <li>{@code "other_shape"}: streams the text at {@code $.output.text}, where the usual path finds nothing.</li>
 * </ul>
 * {@code /v1/unauthorized} answers 401 with an OpenAI-style error body.
 *
 * <p>{@code /v1/completions} is a FIM (code completion) server in OpenAI's completions shape: it records the body
 * ({@link #fimBodies}) and answers {@code {"choices": [{"text": <fimAnswer>}]}} as JSON; a body whose {@code model}
 * is {@code "mock-hang"} gets the response head and then whitespace every 50 ms until the client goes away (counted
 * in {@link #disconnects}).
 */
final class MockLlmServer implements AutoCloseable {
    private final HttpServer server;
    private final ExecutorService executor = Executors.newCachedThreadPool();
    /** Every request body received, decoded as UTF-8. */
    final List<String> bodies = new CopyOnWriteArrayList<>();
    /** Released once per "forever" stream that ended because the client closed the connection. */
    final Semaphore disconnects = new Semaphore(0);
    final AtomicInteger requests = new AtomicInteger();
    /** The request headers of every request, lower-case names (the last value of each). */
    final List<java.util.Map<String, String>> headers = new CopyOnWriteArrayList<>();
    /** Every body received at /v1/completions, parsed. */
    final List<JsonObject> fimBodies = new CopyOnWriteArrayList<>();
    /** Released once per body received at /v1/completions. */
    final Semaphore fimReceived = new Semaphore(0);
    /** What /v1/completions answers. */
    volatile String fimAnswer = "return a + b;";

    MockLlmServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 256);
        server.setExecutor(executor);
        server.createContext("/v1/chat/completions", this::chat);
        server.createContext("/v1/unauthorized", this::unauthorized);
        server.createContext("/v1/completions", this::fim);
        server.start();
    }

    String url(String path) {
        return "http://127.0.0.1:" + server.getAddress().getPort() + path;
    }

    /** Settings for this server in AutoDev's v1 form; {@code customFields} gets {@code fields} merged in. */
    LlmSettings settings(JsonObject fields) {
        JsonObject custom = new JsonObject();
        custom.addProperty("model", "mock-model");
        custom.addProperty("stream", true);
        if (fields != null) for (var e : fields.entrySet()) custom.add(e.getKey(), e.getValue());
        JsonObject format = new JsonObject();
        format.add("customFields", custom);
        return LlmSettings.autoDev(url("/v1/chat/completions"), "sk-test-token", "SSE",
                "$.choices[0].delta.content", Json.GSON.toJson(format));
    }

    LlmSettings settings(String mode, int pieceCodePoints, int delayMs) {
        JsonObject f = new JsonObject();
        f.addProperty("mock_mode", mode);
        f.addProperty("mock_piece", pieceCodePoints);
        f.addProperty("mock_delay_ms", delayMs);
        return settings(f);
    }

    private void recordHeaders(HttpExchange ex) {
        java.util.Map<String, String> h = new java.util.TreeMap<>();
        for (var e : ex.getRequestHeaders().entrySet()) {
            List<String> values = e.getValue();
            if (!values.isEmpty()) h.put(e.getKey().toLowerCase(java.util.Locale.ROOT), values.get(values.size() - 1));
        }
        headers.add(h);
    }

    private void fim(HttpExchange ex) throws IOException {
        requests.incrementAndGet();
        recordHeaders(ex);
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        JsonObject req = JsonParser.parseString(body).getAsJsonObject();
        fimBodies.add(req);
        fimReceived.release();
        ex.getResponseHeaders().set("Content-Type", "application/json");
        if (req.has("model") && req.get("model").getAsString().equals("mock-hang")) {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            try {
                long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
                while (System.nanoTime() < end) {
                    out.write(' ');
                    out.flush();
                    sleep(50);
                }
                out.close();
            } catch (IOException e) {
                disconnects.release();
                ex.close();
            }
            return;
        }
        JsonObject choice = new JsonObject();
        choice.addProperty("index", 0);
        choice.addProperty("text", fimAnswer);
        choice.addProperty("finish_reason", "stop");
        JsonArray choices = new JsonArray();
        choices.add(choice);
        JsonObject answer = new JsonObject();
        answer.addProperty("id", "cmpl-1");
        answer.addProperty("object", "text_completion");
        answer.add("choices", choices);
        byte[] b = Json.GSON.toJson(answer).getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(200, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    /** Settings for the FIM endpoint: OpenAI completions shape, prefix and suffix sent as prompt and suffix. */
    JsonObject fimSettings(String model) {
        JsonObject s = new JsonObject();
        s.addProperty("customEngineServer", url("/v1/completions"));
        s.addProperty("model", model);
        JsonObject fim = new JsonObject();
        fim.addProperty("mode", "separate");
        s.add("fim", fim);
        return s;
    }

    private void chat(HttpExchange ex) throws IOException {
        requests.incrementAndGet();
        recordHeaders(ex);
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        bodies.add(body);
        JsonObject req = JsonParser.parseString(body).getAsJsonObject();
        String mode = req.has("mock_mode") ? req.get("mock_mode").getAsString() : "echo";
        int piece = req.has("mock_piece") ? req.get("mock_piece").getAsInt() : 4;
        int delay = req.has("mock_delay_ms") ? req.get("mock_delay_ms").getAsInt() : 0;
        JsonArray messages = req.getAsJsonArray("messages");
        String last = messages.get(messages.size() - 1).getAsJsonObject().get("content").getAsString();

        ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        try {
            switch (mode) {
                case "forever" -> {
                    long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
                    for (int i = 0; System.nanoTime() < end; i++) {
                        event(out, delta("tick " + i + " "));
                        sleep(delay);
                    }
                }
                case "reasoning" -> {
                    // DeepSeek-R1 style: delta.reasoning_content first, then delta.content
                    for (String p : pieces("Let me think. ", piece)) {
                        JsonObject o = delta(null);
                        o.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("delta")
                                .addProperty("reasoning_content", p);
                        event(out, o);
                        sleep(delay);
                    }
                    for (String p : pieces(last, piece)) {
                        event(out, delta(p));
                        sleep(delay);
                    }
                    done(out);
                }
                case "other_shape" -> {
                    for (String p : pieces(last, piece)) {
                        JsonObject o = new JsonObject();
                        o.addProperty("id", "resp-1");
                        JsonObject output = new JsonObject();
                        output.addProperty("text", p);
                        o.add("output", output);
                        event(out, o);
                        sleep(delay);
                    }
                    done(out);
                }
                default -> {
                    for (String p : pieces(last, piece)) {
                        event(out, delta(p));
                        sleep(delay);
                    }
                    JsonObject stop = new JsonObject();
                    JsonArray choices = new JsonArray();
                    JsonObject c = new JsonObject();
                    c.addProperty("index", 0);
                    c.add("delta", new JsonObject());
                    c.addProperty("finish_reason", "stop");
                    choices.add(c);
                    stop.add("choices", choices);
                    event(out, stop);
                    done(out);
                }
            }
            out.close();
        } catch (IOException e) {
            if (mode.equals("forever")) disconnects.release();
            ex.close();
        }
    }

    private void unauthorized(HttpExchange ex) throws IOException {
        requests.incrementAndGet();
        bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
        byte[] b = "{\"error\": {\"message\": \"Incorrect API key provided\", \"type\": \"invalid_request_error\"}}"
                .getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(401, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private static JsonObject delta(String text) {
        JsonObject o = new JsonObject();
        o.addProperty("id", "chatcmpl-1");
        o.addProperty("model", "mock-model");
        JsonArray choices = new JsonArray();
        JsonObject c = new JsonObject();
        c.addProperty("index", 0);
        JsonObject d = new JsonObject();
        if (text != null) d.addProperty("content", text);
        c.add("delta", d);
        c.add("finish_reason", com.google.gson.JsonNull.INSTANCE);
        choices.add(c);
        o.add("choices", choices);
        return o;
    }

    private static void event(OutputStream out, JsonElement data) throws IOException {
        out.write(("data: " + Json.GSON.toJson(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void done(OutputStream out) throws IOException {
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /** Splits on code points, so a piece never cuts a surrogate pair. */
    static List<String> pieces(String s, int codePoints) {
        List<String> out = new java.util.ArrayList<>();
        int[] cps = s.codePoints().toArray();
        for (int i = 0; i < cps.length; i += codePoints) {
            out.add(new String(cps, i, Math.min(codePoints, cps.length - i)));
        }
        return out;
    }

    private static void sleep(int ms) {
        if (ms <= 0) return;
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
