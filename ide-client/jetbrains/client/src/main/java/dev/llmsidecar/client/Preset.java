package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.util.List;

/**
 * A built-in starting point from {@code llm/presets}. {@code urlHint} is set when the URL must be completed by
 * the user (Azure). Use it as {@code {"preset": name, "customEngineToken": ...}}.
 */
public record Preset(String name, List<String> aliases, String description, String urlHint, String docs,
                     JsonObject settings) {
    static Preset from(JsonObject o) {
        return new Preset(Json.string(o, "name"), List.copyOf(Json.strings(o, "aliases")),
                Json.string(o, "description"), Json.string(o, "urlHint"), Json.string(o, "docs"),
                Json.object(o, "settings"));
    }

    /** The preset's settings as the plain settings class (its request format as a JSON text). */
    public LlmSettings toLlmSettings() {
        LlmSettings s = settings == null ? new LlmSettings() : LlmSettings.fromJsonObject(settings);
        return s;
    }

    @Override
    public String toString() { return description == null ? name : name + " (" + description + ")"; }
}
