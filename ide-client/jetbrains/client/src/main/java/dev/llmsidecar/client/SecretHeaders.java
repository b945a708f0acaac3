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
    /**
     * What a settings form shows for a header value kept in the password store; {@link #split} keeps the stored
     * value for a header that still holds it.
     */
    public static final String STORED = "<stored in the password store>";

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
        return split(requestFormat, Map.of());
    }

    /**
     * {@link #split(String)} for a form edited by the user: a header whose value is still {@link #STORED} keeps its
     * value from {@code stored}; one that is gone is dropped (so is its stored value).
     */
    public static Split split(String requestFormat, Map<String, String> stored) {
        JsonObject format = parse(requestFormat);
        JsonObject headers = format == null ? null : Json.object(format, "customHeaders");
        Map<String, String> secrets = new LinkedHashMap<>();
        boolean dropped = false;
        if (headers == null) return new Split(requestFormat == null ? "" : requestFormat, secrets);
        for (String name : new java.util.ArrayList<>(headers.keySet())) {
            JsonElement v = headers.get(name);
            if (isKeyLike(name) && v.isJsonPrimitive() && v.getAsJsonPrimitive().isString()) {
                String value = v.getAsString();
                if (value.equals(STORED)) {
                    value = stored.get(name);
                    if (value == null) {
                        headers.remove(name); // the placeholder of nothing: dropped
                        dropped = true;
                        continue;
                    }
                }
                secrets.put(name, value);
                headers.remove(name);
            }
        }
        if (secrets.isEmpty() && !dropped) return new Split(requestFormat, secrets);
        if (headers.size() == 0) format.remove("customHeaders");
        return new Split(format.size() == 0 ? "" : Json.GSON.toJson(format), secrets);
    }

    /** The request format as a settings form shows it: each stored header with {@link #STORED} as its value. */
    public static String masked(String requestFormat, java.util.Collection<String> storedNames) {
        Map<String, String> placeholders = new LinkedHashMap<>();
        for (String name : storedNames) placeholders.put(name, STORED);
        return join(requestFormat, placeholders);
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

    /** An AutoDev 2.x {@code customLlms} list without its secrets, and those secrets by {@link #key}. */
    public record SplitList(com.google.gson.JsonArray customLlms, Map<String, String> secrets) {}

    /** Where a secret of a {@code customLlms} entry lives: the entry's name, then {@code auth.token} or the header. */
    public static String key(String entryName, String where) {
        return entryName + "\n" + where;
    }

    /**
     * Takes the secrets out of a {@code customLlms} list: each entry's {@code auth.token} and the key-like header
     * values of its {@code requestFormat} (a JSON string or an object) and {@code customRequest.headers}. A value
     * that is still {@link #STORED} keeps its value from {@code stored}. Key sources ({@code auth.tokenEnv},
     * {@code auth.tokenCommand}, {@code {"env": ...}} headers) are not secrets and stay.
     */
    public static SplitList splitCustomLlms(com.google.gson.JsonArray customLlms, Map<String, String> stored) {
        com.google.gson.JsonArray out = customLlms == null ? new com.google.gson.JsonArray() : customLlms.deepCopy();
        Map<String, String> secrets = new LinkedHashMap<>();
        for (JsonElement e : out) {
            if (!e.isJsonObject()) continue;
            JsonObject entry = e.getAsJsonObject();
            String name = Json.string(entry, "name");
            if (name == null) continue;
            JsonObject auth = Json.object(entry, "auth");
            String token = Json.string(auth, "token");
            if (token != null && !token.isEmpty()) {
                String value = token.equals(STORED) ? stored.get(key(name, "auth.token")) : token;
                if (value != null) secrets.put(key(name, "auth.token"), value);
                auth.remove("token");
            }
            for (String where : new String[]{"requestFormat", "customRequest"}) {
                JsonElement f = entry.get(where);
                if (f == null || f.isJsonNull()) continue;
                boolean text = f.isJsonPrimitive();
                String formatText;
                if (where.equals("customRequest")) {
                    JsonObject h = f.isJsonObject() ? Json.object(f.getAsJsonObject(), "headers") : null;
                    if (h == null) continue;
                    JsonObject wrapped = new JsonObject();
                    wrapped.add("customHeaders", h);
                    formatText = Json.GSON.toJson(wrapped);
                } else {
                    formatText = text ? f.getAsString() : Json.GSON.toJson(f);
                }
                Map<String, String> mine = new LinkedHashMap<>();
                String prefix = key(name, where + "\n");
                for (var s : stored.entrySet()) {
                    if (s.getKey().startsWith(prefix)) mine.put(s.getKey().substring(prefix.length()), s.getValue());
                }
                Split split = split(formatText, mine);
                for (var s : split.secrets().entrySet()) secrets.put(prefix + s.getKey(), s.getValue());
                if (where.equals("customRequest")) {
                    JsonObject rest = parse(split.requestFormat());
                    JsonObject headers = rest == null ? null : Json.object(rest, "customHeaders");
                    f.getAsJsonObject().add("headers", headers == null ? new JsonObject() : headers);
                } else if (text) {
                    entry.addProperty(where, split.requestFormat());
                } else {
                    JsonObject parsed = parse(split.requestFormat());
                    entry.add(where, parsed == null ? new JsonObject() : parsed);
                }
            }
        }
        return new SplitList(out, secrets);
    }

    /** Puts the secrets of {@link #splitCustomLlms} back (or {@link #STORED} placeholders, for a form). */
    public static com.google.gson.JsonArray joinCustomLlms(com.google.gson.JsonArray customLlms,
                                                           Map<String, String> secrets) {
        com.google.gson.JsonArray out = customLlms == null ? new com.google.gson.JsonArray() : customLlms.deepCopy();
        for (JsonElement e : out) {
            if (!e.isJsonObject()) continue;
            JsonObject entry = e.getAsJsonObject();
            String name = Json.string(entry, "name");
            if (name == null) continue;
            String token = secrets.get(key(name, "auth.token"));
            if (token != null) {
                JsonObject auth = Json.object(entry, "auth");
                if (auth == null) {
                    auth = new JsonObject();
                    auth.addProperty("type", "Bearer");
                    entry.add("auth", auth);
                }
                auth.addProperty("token", token);
            }
            for (String where : new String[]{"requestFormat", "customRequest"}) {
                String prefix = key(name, where + "\n");
                Map<String, String> mine = new LinkedHashMap<>();
                for (var s : secrets.entrySet()) {
                    if (s.getKey().startsWith(prefix)) mine.put(s.getKey().substring(prefix.length()), s.getValue());
                }
                if (mine.isEmpty()) continue;
                JsonElement f = entry.get(where);
                if (where.equals("customRequest")) {
                    JsonObject request = f != null && f.isJsonObject() ? f.getAsJsonObject() : new JsonObject();
                    JsonObject headers = Json.object(request, "headers");
                    if (headers == null) headers = new JsonObject();
                    for (var s : mine.entrySet()) headers.addProperty(s.getKey(), s.getValue());
                    request.add("headers", headers);
                    entry.add(where, request);
                } else if (f != null && f.isJsonObject()) {
                    JsonObject joined = parse(join(Json.GSON.toJson(f), mine));
                    entry.add(where, joined == null ? f : joined);
                } else {
                    entry.addProperty(where, join(f == null || f.isJsonNull() ? "" : f.getAsString(), mine));
                }
            }
        }
        return out;
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
