package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/** One settings or params problem: {@code field} names the key as the user typed it (e.g. {@code customEngineServer}). */
public record Problem(String field, String message) {
    static List<Problem> listFrom(JsonArray a) {
        List<Problem> out = new ArrayList<>();
        if (a == null) return out;
        for (JsonElement e : a) {
            if (e.isJsonObject()) {
                JsonObject o = e.getAsJsonObject();
                out.add(new Problem(Json.string(o, "field"), Json.string(o, "message")));
            }
        }
        return List.copyOf(out);
    }

    @Override
    public String toString() { return field == null ? message : field + ": " + message; }
}
