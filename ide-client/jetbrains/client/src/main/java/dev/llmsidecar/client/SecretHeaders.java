package dev.llmsidecar.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Keys in {@code customHeaders} (Azure's {@code api-key}, Anthropic's {@code x-api-key}, an {@code Authorization}
 * header) are secrets like the token: an IDE keeps them in its password store, not in its settings file.
 * {@link #split} takes the plain values of key-like headers out of a request format (what the settings file
 * keeps), {@link #join} puts them back before a request. A header whose value is a key source object
 * ({@code {"env": NAME}}, {@code {"command": [...]}}) holds no secret and stays where it is.
 */
public final class SecretHeaders {
    private SecretHeaders() {}

    /** The request format without the key-like header values, and those values by header name. */
    public record Split(String requestFormat, Map<String, String> secrets) {}

    /** True for a header name that usually carries a credential. */
    public static boolean isKeyLike(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (String word : new String[]{"key", "token", "secret", "authorization", "auth", "password", "credential"}) {
            if (n.contains(word)) return true;
        }
        return false;
    }

    /**
     * Takes the plain (string) values of key-like headers out of {@code requestFormat} (AutoDev's JSON text). A
     * format that is not a JSON object is returned as it is, with no secrets: the sidecar reports what is wrong
     * with it.
     */
    public static Split split(String requestFormat) {
        JsonObject format = parse(requestFormat);
        JsonObject headers = format == null ? null : Json.object(format, "customHeaders");
        Map<String, String> secrets = new LinkedHashMap<>();
        if (headers == null) return new Split(requestFormat == null ? "" : requestFormat, secrets);
        for (String name : new java.util.ArrayList<>(headers.keySet())) {
            JsonElement v = headers.get(name);
            if (isKeyLike(name) && v.isJsonPrimitive() && v.getAsJsonPrimitive().isString()) {
                secrets.put(name, v.getAsString());
                headers.remove(name);
            }
        }
        if (secrets.isEmpty()) return new Split(requestFormat, secrets);
        if (headers.size() == 0) format.remove("customHeaders");
        return new Split(format.size() == 0 ? "" : Json.GSON.toJson(format), secrets);
    }

    /** Puts {@code secrets} back into the {@code customHeaders} of {@code requestFormat}. */
    public static String join(String requestFormat, Map<String, String> secrets) {
        if (secrets == null || secrets.isEmpty()) return requestFormat == null ? "" : requestFormat;
        JsonObject format = requestFormat == null || requestFormat.isBlank() ? new JsonObject() : parse(requestFormat);
        if (format == null) return requestFormat; // not an object: sent as is, and reported by the sidecar
        JsonObject headers = Json.object(format, "customHeaders");
        if (headers == null) {
            headers = new JsonObject();
            format.add("customHeaders", headers);
        }
        for (var e : secrets.entrySet()) headers.addProperty(e.getKey(), e.getValue());
        return Json.GSON.toJson(format);
    }

    private static JsonObject parse(String text) {
        if (text == null || text.isBlank()) return null;
        try {
            JsonElement e = JsonParser.parseString(text);
            return e.isJsonObject() ? e.getAsJsonObject() : null;
        } catch (JsonParseException e) {
            return null;
        }
    }
}
