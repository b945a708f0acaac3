package dev.llmsidecar.client;

import com.google.gson.JsonObject;

/**
 * An error from the sidecar or about it. Subclasses type the cases a client acts on: {@link LlmRequestFailed}
 * (the LLM server or the completion failed), {@link InvalidSettings}, {@link SidecarDied} (the process exited) and
 * {@link SidecarUnavailable} (it could not be started). Other JSON-RPC errors come as this class with their code.
 */
public class SidecarException extends RuntimeException {
    /** JSON-RPC codes the protocol uses. */
    public static final int PARSE_ERROR = -32700, INVALID_REQUEST = -32600, METHOD_NOT_FOUND = -32601,
            INVALID_PARAMS = -32602, INTERNAL_ERROR = -32603, REQUEST_CANCELLED = -32800, REQUEST_FAILED = -32803;

    private final int code;
    private final JsonObject data;

    public SidecarException(int code, String message, JsonObject data) {
        this(code, message, data, null);
    }

    public SidecarException(int code, String message, JsonObject data, Throwable cause) {
        super(message, cause);
        this.code = code;
        this.data = data;
    }

    /** The JSON-RPC error code, or 0 when the error did not come from the sidecar (process died, not started). */
    public int code() { return code; }

    /** The error's {@code data} object as sent, or null. */
    public JsonObject data() { return data == null ? null : data.deepCopy(); }

    /** {@code data.kind}, or null. */
    public String kind() { return Json.string(data, "kind"); }
}
