package dev.llmsidecar.client;

import com.google.gson.JsonObject;

import java.util.List;

/**
 * The result of {@code llm/validateSettings}: every problem at once, warnings about settings that work but
 * probably not as meant (e.g. {@code customFields.n} > 1 with a positional path), and the settings as they will be
 * used ({@code normalized}: canonical keys, presets and layers applied, secrets masked), null when there are problems.
 */
public record ValidationResult(boolean ok, List<Problem> problems, List<Problem> warnings, JsonObject normalized) {
    static ValidationResult from(JsonObject o) {
        return new ValidationResult(Json.bool(o, "ok"), Problem.listFrom(Json.array(o, "problems")),
                Problem.listFrom(Json.array(o, "warnings")), Json.object(o, "normalized"));
    }
}
