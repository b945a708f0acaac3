package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.util.List;

/**
 * The result of {@code llm/testConnection}: one completion sent through exactly the chat path. On failure
 * {@code ok} is false and {@link #error()} is the typed error {@code llm/complete} would have failed with.
 */
public record TestConnectionResult(boolean ok, Integer status, String contentType, String detectedResponseType,
                                   Long firstByteMs, Long totalMs, String sampleText, boolean matched,
                                   List<Suggestion> suggestions, String finishReason, SidecarException error,
                                   JsonObject raw) {
    static TestConnectionResult from(JsonObject o) {
        JsonObject err = Json.object(o, "error");
        return new TestConnectionResult(Json.bool(o, "ok"), Json.integer(o, "status"), Json.string(o, "contentType"),
                Json.string(o, "detectedResponseType"), Json.longValue(o, "firstByteMs"),
                Json.longValue(o, "totalMs"), Json.string(o, "sampleText"), Json.bool(o, "matched"),
                Suggestion.listFrom(Json.array(o, "suggestions")), Json.string(o, "finishReason"),
                err == null ? null : Errors.fromRpcError(err), o);
    }
}
