package dev.llmsidecar.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/**
 * The result of {@code llm/inlineCompletion}.
 *
 * @param items       the suggestions, best first; empty when the model had nothing to add
 * @param firstByteMs when the server's first byte came, or null (a cached answer)
 * @param totalMs     the whole request, or null
 * @param cached      answered from the sidecar's cache (the user typed what was suggested): no request was sent
 * @param raw         the whole result object
 */
public record InlineCompletion(List<Item> items, Long firstByteMs, Long totalMs, boolean cached, JsonObject raw) {

    /** One suggestion: the text to insert at the cursor (several lines possibly). */
    public record Item(String insertText) {}

    /** The first suggestion's text, or "" when there is none. */
    public String text() {
        return items.isEmpty() ? "" : items.get(0).insertText();
    }

    public boolean isEmpty() {
        return items.isEmpty() || text().isEmpty();
    }

    static InlineCompletion from(JsonObject o) {
        List<Item> items = new ArrayList<>();
        var a = Json.array(o, "items");
        if (a != null) {
            for (JsonElement e : a) {
                if (!e.isJsonObject()) continue;
                String text = Json.string(e.getAsJsonObject(), "insertText");
                if (text != null) items.add(new Item(text));
            }
        }
        JsonObject timings = Json.object(o, "timings");
        return new InlineCompletion(List.copyOf(items), Json.longValue(timings, "firstByteMs"),
                Json.longValue(timings, "totalMs"), Json.bool(o, "cached"), o);
    }
}
