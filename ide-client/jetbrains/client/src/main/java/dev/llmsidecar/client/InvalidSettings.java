package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.util.List;

/** {@code -32602}: bad settings or params, with every problem at once. */
public final class InvalidSettings extends SidecarException {
    public InvalidSettings(String message, JsonObject data) {
        super(INVALID_PARAMS, message, data);
    }

    /** Each problem with the field as the user typed it. */
    public List<Problem> problems() {
        JsonObject d = data();
        return Problem.listFrom(d == null ? null : Json.array(d, "problems"));
    }

    /** True when at least one problem is in the settings ({@code kind: invalid_settings}). */
    public boolean inSettings() { return "invalid_settings".equals(kind()); }
}
