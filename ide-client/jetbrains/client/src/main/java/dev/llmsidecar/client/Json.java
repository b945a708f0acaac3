package dev.llmsidecar.client;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;

import java.util.ArrayList;
import java.util.List;

/** The one Gson instance and small accessors for reading the sidecar's messages leniently. */
final class Json {
    /** No HTML escaping: text goes over the pipe as the user wrote it (UTF-8), not as \u003c escapes. */
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private Json() {}

    static String string(JsonObject o, String key) {
        if (o == null) return null;
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) return null;
        if (e.isJsonPrimitive()) return e.getAsString();
        return GSON.toJson(e);
    }

    static Integer integer(JsonObject o, String key) {
        if (o == null) return null;
        JsonElement e = o.get(key);
        if (e instanceof JsonPrimitive && ((JsonPrimitive) e).isNumber()) return e.getAsInt();
        return null;
    }

    static Long longValue(JsonObject o, String key) {
        if (o == null) return null;
        JsonElement e = o.get(key);
        if (e instanceof JsonPrimitive && ((JsonPrimitive) e).isNumber()) return e.getAsLong();
        return null;
    }

    static boolean bool(JsonObject o, String key) {
        if (o == null) return false;
        JsonElement e = o.get(key);
        return e instanceof JsonPrimitive && ((JsonPrimitive) e).isBoolean() && e.getAsBoolean();
    }

    static JsonObject object(JsonObject o, String key) {
        if (o == null) return null;
        JsonElement e = o.get(key);
        return e != null && e.isJsonObject() ? e.getAsJsonObject() : null;
    }

    static JsonArray array(JsonObject o, String key) {
        if (o == null) return null;
        JsonElement e = o.get(key);
        return e != null && e.isJsonArray() ? e.getAsJsonArray() : null;
    }

    static List<String> strings(JsonObject o, String key) {
        List<String> out = new ArrayList<>();
        JsonArray a = array(o, key);
        if (a != null) {
            for (JsonElement e : a) {
                if (e.isJsonPrimitive()) out.add(e.getAsString());
            }
        }
        return out;
    }
}
