package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.util.List;

/**
 * {@code -32803}: the completion failed. {@link #kind()} is one of {@code connect}, {@code timeout},
 * {@code http_status}, {@code stream_error}, {@code no_match}, {@code decode}, {@code interrupted},
 * {@code too_large}; the other accessors read the protocol's {@code data} fields (null when absent).
 */
public final class LlmRequestFailed extends SidecarException {
    public LlmRequestFailed(String message, JsonObject data) {
        super(REQUEST_FAILED, message, data);
    }

    /** The HTTP status ({@code http_status}), or null. */
    public Integer status() { return Json.integer(rawData(), "status"); }

    /** The server's own error message ({@code http_status}, {@code stream_error}), or null. */
    public String providerMessage() { return Json.string(rawData(), "providerMessage"); }

    /** The text produced before the failure; never null (possibly empty). */
    public String partialText() {
        String s = Json.string(rawData(), "partialText");
        return s == null ? "" : s;
    }

    /** The reasoning text produced before the failure, or null when the sidecar sent none. */
    public String partialReasoning() { return Json.string(rawData(), "partialReasoning"); }

    /** JsonPaths that would have produced text ({@code no_match}), closest first; empty otherwise. */
    public List<Suggestion> suggestions() { return Suggestion.listFrom(Json.array(rawData(), "suggestions")); }

    /** How many HTTP requests were made, or null. */
    public Integer attempts() { return Json.integer(rawData(), "attempts"); }

    /** The configured JsonPath that matched nothing ({@code no_match}). */
    public String path() { return Json.string(rawData(), "path"); }

    /** {@code connect}, {@code firstByte}, {@code idle} or {@code total} ({@code timeout}). */
    public String phase() { return Json.string(rawData(), "phase"); }

    /** The first 4 KiB of the error body ({@code http_status}). */
    public String body() { return Json.string(rawData(), "body"); }

    /** Transport detail ({@code connect}, {@code decode}, {@code interrupted}). */
    public String detail() { return Json.string(rawData(), "detail"); }

    /**
     * What to change, when the sidecar knows ({@code connect}: {@code http://} for a plain-HTTP server,
     * {@code caCertificates} for an untrusted certificate; {@code http_status}: the usual endpoint path after a 404).
     */
    public String hint() { return Json.string(rawData(), "hint"); }

    /** The URL that could not be reached ({@code connect}), without query. */
    public String url() { return Json.string(rawData(), "url"); }

    private JsonObject rawData() {
        JsonObject d = data();
        return d == null ? new JsonObject() : d;
    }
}
