package dev.llmsidecar.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.util.Map;
import java.util.Objects;

/**
 * The settings of one LLM server, as a plain class whose fields carry AutoDev's v1 "Custom LLM Server" dialog names
 * ({@code customEngineServer}, {@code customEngineToken}, {@code customEngineResponseType},
 * {@code customEngineResponseFormat}, {@code customEngineRequestFormat}), so what a user pastes from AutoDev is
 * stored and sent as is. Every field is a string, as in AutoDev's own state; an empty field is "not set" and is
 * left out of {@link #toJson()}, so a {@link #preset} supplies it.
 *
 * <p>The sidecar's additions have their own fields; any other settings key (timeouts, retry, limits) is kept
 * verbatim in {@link #additionalSettings}, a JSON object text, so nothing pasted is lost.
 */
public final class LlmSettings {
    /** The full endpoint URL; the request is POSTed to it as written. */
    public String customEngineServer = "";
    /** The API token, sent as {@code Authorization: Bearer <token>} when not empty. */
    public String customEngineToken = "";
    /**
     * Key source: the sidecar reads the token from its own environment variable of this name, so the token never
     * travels over the pipe. At most one of the token, this and {@link #customEngineTokenCommand} may be set.
     */
    public String customEngineTokenEnv = "";
    /**
     * Key source: the program whose output is the token, run by the sidecar without a shell. Either a JSON array
     * ({@code ["pass", "show", "deepseek"]}) or a command line split at spaces, with "double" or 'single' quotes
     * keeping spaces in an argument ({@code pass show deepseek}); sent as the argv array.
     */
    public String customEngineTokenCommand = "";
    /** {@code SSE}, {@code JSON} or {@code NDJSON}; empty means SSE (or the preset's). */
    public String customEngineResponseType = "";
    /** JsonPath of the text in each event, e.g. {@code $.choices[0].delta.content}. */
    public String customEngineResponseFormat = "";
    /** The request format as the dialog stores it: a JSON text with customFields/customHeaders/messageKeys/fields. */
    public String customEngineRequestFormat = "";

    /** A built-in preset name ({@code llm/presets}) that the other fields override. */
    public String preset = "";
    /** Shortcut for {@code customFields.model}. */
    public String model = "";
    /** JsonPath of reasoning text, streamed with kind "reasoning". */
    public String reasoningFormat = "";
    /** The header carrying the token (default Authorization as Bearer). */
    public String tokenHeader = "";
    /** Top-level body field for system messages (Anthropic: system). */
    public String systemField = "";
    /** Proxy URL, or "none". */
    public String proxy = "";
    /** Path of a PEM bundle of extra trusted roots. */
    public String caCertificates = "";
    /** Any other settings keys, as a JSON object text (e.g. {"timeouts": {"idleMs": 120000}}). */
    public String additionalSettings = "";

    public LlmSettings() {}

    /** The AutoDev v1 dialog's five fields. */
    public static LlmSettings autoDev(String server, String token, String responseType, String responseFormat,
                                      String requestFormat) {
        LlmSettings s = new LlmSettings();
        s.customEngineServer = server;
        s.customEngineToken = token;
        s.customEngineResponseType = responseType;
        s.customEngineResponseFormat = responseFormat;
        s.customEngineRequestFormat = requestFormat;
        return s;
    }

    public LlmSettings copy() {
        return fromJsonObject(toJsonIncludingEmpty());
    }

    /** The settings object sent to the sidecar: only the fields that are set, under their AutoDev names. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        JsonObject extra = parseAdditional();
        if (extra != null) {
            for (Map.Entry<String, JsonElement> e : extra.entrySet()) o.add(e.getKey(), e.getValue().deepCopy());
        }
        for (Map.Entry<String, String> e : fields().entrySet()) {
            String v = e.getValue();
            if (v != null && !v.isBlank()) o.addProperty(e.getKey(), v);
        }
        if (customEngineTokenCommand != null && !customEngineTokenCommand.isBlank()) {
            com.google.gson.JsonArray argv = new com.google.gson.JsonArray();
            for (String arg : argv(customEngineTokenCommand)) argv.add(arg);
            o.add("customEngineTokenCommand", argv);
        }
        return o;
    }

    /**
     * A command as its argv: a JSON array of strings as is, else the text split at whitespace, where "double" or
     * 'single' quotes keep spaces inside one argument (no other shell syntax: nothing is expanded).
     */
    public static java.util.List<String> argv(String command) {
        String t = command == null ? "" : command.trim();
        java.util.List<String> out = new java.util.ArrayList<>();
        if (t.startsWith("[")) {
            try {
                JsonElement e = JsonParser.parseString(t);
                if (e.isJsonArray()) {
                    for (JsonElement a : e.getAsJsonArray()) out.add(a.isJsonPrimitive() ? a.getAsString() : a.toString());
                    return out;
                }
            } catch (JsonParseException ignored) {
                // not JSON: split it as a command line
            }
        }
        StringBuilder arg = new StringBuilder();
        boolean inArg = false;
        char quote = 0;
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (quote != 0) {
                if (c == quote) quote = 0;
                else arg.append(c);
            } else if (c == '"' || c == '\'') {
                quote = c;
                inArg = true;
            } else if (Character.isWhitespace(c)) {
                if (inArg) out.add(arg.toString());
                arg.setLength(0);
                inArg = false;
            } else {
                arg.append(c);
                inArg = true;
            }
        }
        if (inArg) out.add(arg.toString());
        return out;
    }

    /** Pretty JSON of the set fields: what a settings page shows and what a user can paste back. */
    public String toJsonText() {
        return new com.google.gson.GsonBuilder().disableHtmlEscaping().setPrettyPrinting().create().toJson(toJson());
    }

    /**
     * Reads settings pasted as JSON: AutoDev's v1 fields (the request format as a JSON string or as an object),
     * the sidecar's additions, and any other key into {@link #additionalSettings}.
     *
     * @throws IllegalArgumentException when the text is not a JSON object
     */
    public static LlmSettings fromJson(String text) {
        JsonElement e;
        try {
            e = JsonParser.parseString(text);
        } catch (JsonParseException ex) {
            throw new IllegalArgumentException("settings are not valid JSON: " + ex.getMessage(), ex);
        }
        if (!e.isJsonObject()) throw new IllegalArgumentException("settings must be a JSON object");
        return fromJsonObject(e.getAsJsonObject());
    }

    public static LlmSettings fromJsonObject(JsonObject o) {
        LlmSettings s = new LlmSettings();
        JsonObject extra = new JsonObject();
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            String key = e.getKey();
            JsonElement v = e.getValue();
            if (!s.fields().containsKey(key) || key.equals("additionalSettings")) {
                extra.add(key, v.deepCopy());
                continue;
            }
            String value;
            if (v == null || v.isJsonNull()) value = "";
            else if (v.isJsonPrimitive()) value = v.getAsString();
            else value = Json.GSON.toJson(v); // e.g. customEngineRequestFormat pasted as an object
            s.set(key, value);
        }
        s.additionalSettings = extra.size() == 0 ? "" : Json.GSON.toJson(extra);
        return s;
    }

    private JsonObject toJsonIncludingEmpty() {
        JsonObject o = new JsonObject();
        JsonObject extra = parseAdditional();
        if (extra != null) {
            for (Map.Entry<String, JsonElement> e : extra.entrySet()) o.add(e.getKey(), e.getValue().deepCopy());
        }
        for (Map.Entry<String, String> e : fields().entrySet()) {
            o.addProperty(e.getKey(), e.getValue() == null ? "" : e.getValue());
        }
        return o;
    }

    private JsonObject parseAdditional() {
        if (additionalSettings == null || additionalSettings.isBlank()) return null;
        try {
            JsonElement e = JsonParser.parseString(additionalSettings);
            if (e.isJsonObject()) return e.getAsJsonObject();
        } catch (JsonParseException ignored) {
            // reported by the sidecar's validation as a missing key; the settings page checks it before saving
        }
        return null;
    }

    /** Whether {@link #additionalSettings} is empty or a JSON object. */
    public boolean additionalSettingsValid() {
        return additionalSettings == null || additionalSettings.isBlank() || parseAdditional() != null;
    }

    private Map<String, String> fields() {
        // insertion order = AutoDev's dialog order, then the additions
        java.util.LinkedHashMap<String, String> m = new java.util.LinkedHashMap<>();
        m.put("customEngineResponseType", customEngineResponseType);
        m.put("customEngineServer", customEngineServer);
        m.put("customEngineToken", customEngineToken);
        m.put("customEngineTokenEnv", customEngineTokenEnv);
        m.put("customEngineTokenCommand", customEngineTokenCommand);
        m.put("customEngineResponseFormat", customEngineResponseFormat);
        m.put("customEngineRequestFormat", customEngineRequestFormat);
        m.put("preset", preset);
        m.put("model", model);
        m.put("reasoningFormat", reasoningFormat);
        m.put("tokenHeader", tokenHeader);
        m.put("systemField", systemField);
        m.put("proxy", proxy);
        m.put("caCertificates", caCertificates);
        return m;
    }

    private void set(String key, String v) {
        switch (key) {
            case "customEngineResponseType" -> customEngineResponseType = v;
            case "customEngineServer" -> customEngineServer = v;
            case "customEngineToken" -> customEngineToken = v;
            case "customEngineTokenEnv" -> customEngineTokenEnv = v;
            case "customEngineTokenCommand" -> customEngineTokenCommand = v;
            case "customEngineResponseFormat" -> customEngineResponseFormat = v;
            case "customEngineRequestFormat" -> customEngineRequestFormat = v;
            case "preset" -> preset = v;
            case "model" -> model = v;
            case "reasoningFormat" -> reasoningFormat = v;
            case "tokenHeader" -> tokenHeader = v;
            case "systemField" -> systemField = v;
            case "proxy" -> proxy = v;
            case "caCertificates" -> caCertificates = v;
            default -> throw new IllegalArgumentException(key);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LlmSettings other && toJsonIncludingEmpty().equals(other.toJsonIncludingEmpty());
    }

    @Override
    public int hashCode() { return Objects.hash(toJsonIncludingEmpty().toString()); }

    /** Never shows the token. */
    @Override
    public String toString() {
        JsonObject o = toJson();
        if (o.has("customEngineToken")) o.addProperty("customEngineToken", "***");
        return "LlmSettings" + Json.GSON.toJson(o);
    }
}
