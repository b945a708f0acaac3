package dev.llmsidecar.client;

import com.google.gson.JsonObject;

/** Maps a JSON-RPC error object to the typed exceptions. */
final class Errors {
    private Errors() {}

    /** The exception a request fails with: {@link LlmCancelled} for -32800, else a {@link SidecarException}. */
    static RuntimeException fromRpcErrorOrCancel(JsonObject error) {
        Integer code = Json.integer(error, "code");
        if (code != null && code == SidecarException.REQUEST_CANCELLED) {
            JsonObject data = Json.object(error, "data");
            return new LlmCancelled(message(error), Json.string(data, "partialText"),
                    Json.string(data, "partialReasoning"));
        }
        return fromRpcError(error);
    }

    static SidecarException fromRpcError(JsonObject error) {
        Integer code = Json.integer(error, "code");
        JsonObject data = Json.object(error, "data");
        String message = message(error);
        int c = code == null ? SidecarException.INTERNAL_ERROR : code;
        if (c == SidecarException.REQUEST_FAILED) return new LlmRequestFailed(message, data);
        if (c == SidecarException.INVALID_PARAMS) return new InvalidSettings(message, data);
        return new SidecarException(c, message, data);
    }

    private static String message(JsonObject error) {
        String m = Json.string(error, "message");
        return m == null ? "llm-sidecar error" : m;
    }
}
