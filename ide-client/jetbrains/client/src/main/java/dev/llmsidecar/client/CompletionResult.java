package dev.llmsidecar.client;

import com.google.gson.JsonObject;

/**
 * The result of {@code llm/complete}.
 *
 * @param text         all content pieces joined
 * @param reasoning    reasoning text, or null when none was extracted
 * @param finishReason the server's finish reason, or null
 * @param usage        the last usage object the server sent, as is, or null
 * @param chunks       the number of non-empty pieces (= llm/chunk notifications sent)
 * @param responseType what was actually read: sse, json or ndjson
 * @param status       the HTTP status
 * @param contentType  the response's Content-Type, or null
 * @param timings      when the first byte and first chunk came, the total, and the HTTP attempts
 * @param warnings     what went wrong without stopping the answer (e.g. several choices mixed); empty when none
 * @param raw          the whole result object, for fields this class does not name
 */
public record CompletionResult(String text, String reasoning, String finishReason, JsonObject usage, long chunks,
                               String responseType, Integer status, String contentType, Timings timings,
                               java.util.List<String> warnings, JsonObject raw) {

    public record Timings(Long firstByteMs, Long firstChunkMs, Long totalMs, Integer attempts) {
        static Timings from(JsonObject o) {
            if (o == null) return new Timings(null, null, null, null);
            return new Timings(Json.longValue(o, "firstByteMs"), Json.longValue(o, "firstChunkMs"),
                    Json.longValue(o, "totalMs"), Json.integer(o, "attempts"));
        }
    }

    static CompletionResult from(JsonObject o) {
        Long chunks = Json.longValue(o, "chunks");
        String text = Json.string(o, "text");
        return new CompletionResult(text == null ? "" : text, Json.string(o, "reasoning"),
                Json.string(o, "finishReason"), Json.object(o, "usage"), chunks == null ? 0 : chunks,
                Json.string(o, "responseType"), Json.integer(o, "status"), Json.string(o, "contentType"),
                Timings.from(Json.object(o, "timings")), java.util.List.copyOf(Json.strings(o, "warnings")), o);
    }
}
