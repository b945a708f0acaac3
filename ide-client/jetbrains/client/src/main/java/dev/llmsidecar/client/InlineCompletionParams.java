package dev.llmsidecar.client;

import com.google.gson.JsonObject;

/**
 * The params of {@code llm/inlineCompletion}: the text before and after the cursor, the file's language and path,
 * and which settings to use. With no selection the sidecar picks the {@code customLlms} entry whose
 * {@code modelType} is {@code Completion}, else the configured {@code completion} settings
 * ({@link SidecarClient#configureCompletion}).
 */
public final class InlineCompletionParams {
    private final String prefix;
    private final String suffix;
    private final String language;
    private final String path;
    private final JsonObject settings;
    private final String llm;
    private final String modelType;
    private final String profile;

    private InlineCompletionParams(Builder b) {
        this.prefix = b.prefix == null ? "" : b.prefix;
        this.suffix = b.suffix == null ? "" : b.suffix;
        this.language = b.language;
        this.path = b.path;
        this.settings = b.settings == null ? null : b.settings.deepCopy();
        this.llm = b.llm;
        this.modelType = b.modelType;
        this.profile = b.profile;
    }

    public static Builder builder(String prefix, String suffix) {
        return new Builder().prefix(prefix).suffix(suffix);
    }

    public String prefix() { return prefix; }

    public String suffix() { return suffix; }

    /** The JSON params. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("prefix", prefix);
        o.addProperty("suffix", suffix);
        if (language != null && !language.isBlank()) o.addProperty("language", language);
        if (path != null && !path.isBlank()) o.addProperty("path", path);
        if (settings != null) o.add("settings", settings.deepCopy());
        if (llm != null) o.addProperty("llm", llm);
        if (modelType != null) o.addProperty("modelType", modelType);
        if (profile != null) o.addProperty("profile", profile);
        return o;
    }

    public static final class Builder {
        private String prefix;
        private String suffix;
        private String language;
        private String path;
        private JsonObject settings;
        private String llm;
        private String modelType;
        private String profile;

        public Builder prefix(String text) { this.prefix = text; return this; }

        public Builder suffix(String text) { this.suffix = text; return this; }

        /** The editor's language id, e.g. {@code java}, {@code python}. */
        public Builder language(String id) { this.language = id; return this; }

        /** The file's path (relative to the project is enough): some templates and servers use it. */
        public Builder path(String p) { this.path = p; return this; }

        /** Inline settings in the chat form plus {@code fim}. */
        public Builder settings(LlmSettings s) { this.settings = s == null ? null : s.toJson(); return this; }

        /** Inline settings in any form the sidecar accepts. */
        public Builder settings(JsonObject s) { this.settings = s == null ? null : s.deepCopy(); return this; }

        public Builder llm(String name) { this.llm = name; return this; }

        public Builder modelType(String type) { this.modelType = type; return this; }

        public Builder profile(String name) { this.profile = name; return this; }

        public InlineCompletionParams build() { return new InlineCompletionParams(this); }
    }
}
