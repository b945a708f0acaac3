package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/** A JsonPath that would have produced text from what the server sent, with the text it would have produced. */
public record Suggestion(String path, String sampleText) {
    static List<Suggestion> listFrom(JsonArray a) {
        List<Suggestion> out = new ArrayList<>();
        if (a == null) return out;
        for (JsonElement e : a) {
            if (e.isJsonObject()) {
                JsonObject o = e.getAsJsonObject();
                String path = Json.string(o, "path");
                if (path != null) out.add(new Suggestion(path, Json.string(o, "sampleText")));
            }
        }
        return List.copyOf(out);
    }
}
