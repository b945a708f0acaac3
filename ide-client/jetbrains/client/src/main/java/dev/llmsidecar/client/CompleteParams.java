package dev.llmsidecar.client;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/**
 * The params of {@code llm/complete}, {@code llm/validateSettings} and {@code llm/testConnection}: a settings
 * selection (inline {@code settings}, a {@code customLlms} entry by {@code llm} or {@code modelType}, a configured
 * {@code profile}) and the messages. The client assigns {@code streamId} itself.
 */
public final class CompleteParams {
    private final JsonObject settings;
    private final String llm;
    private final String modelType;
    private final String profile;
    private final List<Message> messages;

    private CompleteParams(Builder b) {
        this.settings = b.settings == null ? null : b.settings.deepCopy();
        this.llm = b.llm;
        this.modelType = b.modelType;
        this.profile = b.profile;
        this.messages = List.copyOf(b.messages);
    }

    public static Builder builder() { return new Builder(); }

    /** Inline settings and one user message: the common case. */
    public static CompleteParams of(LlmSettings settings, String userMessage) {
        return builder().settings(settings).user(userMessage).build();
    }

    public JsonObject settings() { return settings == null ? null : settings.deepCopy(); }

    public List<Message> messages() { return messages; }

    /** The JSON params, without {@code streamId}. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        if (settings != null) o.add("settings", settings.deepCopy());
        if (llm != null) o.addProperty("llm", llm);
        if (modelType != null) o.addProperty("modelType", modelType);
        if (profile != null) o.addProperty("profile", profile);
        if (!messages.isEmpty()) {
            JsonArray a = new JsonArray();
            for (Message m : messages) {
                JsonObject mo = new JsonObject();
                mo.addProperty("role", m.role());
                mo.addProperty("content", m.content());
                a.add(mo);
            }
            o.add("messages", a);
        }
        return o;
    }

    public static final class Builder {
        private JsonObject settings;
        private String llm;
        private String modelType;
        private String profile;
        private final List<Message> messages = new ArrayList<>();

        public Builder settings(LlmSettings s) { this.settings = s == null ? null : s.toJson(); return this; }

        /** Settings in any form the sidecar accepts (a 2.x {@code customLlms} entry, {@code customRequest}, ...). */
        public Builder settings(JsonObject s) { this.settings = s == null ? null : s.deepCopy(); return this; }

        public Builder llm(String name) { this.llm = name; return this; }

        public Builder modelType(String type) { this.modelType = type; return this; }

        public Builder profile(String name) { this.profile = name; return this; }

        public Builder message(Message m) { messages.add(m); return this; }

        public Builder messages(List<Message> ms) { messages.addAll(ms); return this; }

        public Builder system(String content) { return message(Message.system(content)); }

        public Builder user(String content) { return message(Message.user(content)); }

        public Builder assistant(String content) { return message(Message.assistant(content)); }

        public CompleteParams build() { return new CompleteParams(this); }
    }
}
