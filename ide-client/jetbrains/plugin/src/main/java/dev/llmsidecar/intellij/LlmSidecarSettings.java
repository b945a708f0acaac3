package dev.llmsidecar.intellij;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.intellij.credentialStore.CredentialAttributes;
import com.intellij.credentialStore.CredentialAttributesKt;
import com.intellij.credentialStore.Credentials;
import com.intellij.ide.passwordSafe.PasswordSafe;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.components.PersistentStateComponent;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.components.State;
import com.intellij.openapi.components.Storage;
import com.intellij.openapi.diagnostic.Logger;
import dev.llmsidecar.client.LlmSettings;
import dev.llmsidecar.client.SecretHeaders;
import org.jetbrains.annotations.NotNull;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The plugin's settings, application-wide (never per project: they decide where requests and keys go, and which
 * program the sidecar runs for a key). The LLM settings are the client core's {@link LlmSettings} (AutoDev's v1
 * field names), stored in {@code llm-sidecar.xml} without any secret: the token, the key-like values of
 * {@code customHeaders} (api-key, x-api-key, Authorization, anything named *key*, *token*, *secret*) and the tokens
 * and header keys of the {@code customLlms} entries are kept in the IDE's PasswordSafe (the OS keychain or KeePass,
 * as the user configured the IDE). A token may also come from a key source the sidecar reads itself
 * ({@code customEngineTokenEnv}, {@code customEngineTokenCommand}); nothing secret is stored then.
 *
 * <p>PasswordSafe may ask the OS keychain and block: every method that touches it says so and must run off the
 * UI thread (it asserts it).
 */
@Service(Service.Level.APP)
@State(name = "LlmSidecarSettings", storages = @Storage("llm-sidecar.xml"))
public final class LlmSidecarSettings implements PersistentStateComponent<LlmSidecarSettings.SettingsState> {
    private static final Logger LOG = Logger.getInstance(LlmSidecarSettings.class);

    /** Where an answer is streamed. */
    public enum Output { TOOL_WINDOW, SCRATCH_FILE }

    /** What is written to llm-sidecar.xml. Public fields: IntelliJ's XmlSerializer stores them as they are. */
    public static final class SettingsState {
        /** The LLM settings; never a token nor a key-like header value here. */
        public LlmSettings llm = new LlmSettings();
        /** Headers of {@code llm.customEngineRequestFormat} whose values are in PasswordSafe. */
        public List<String> storedHeaders = new ArrayList<>();
        /** Path of the llm-sidecar binary; empty: the bundled one, else llm-sidecar on PATH. */
        public String sidecarPath = "";
        /** Sent before the question as a system message, when not empty. */
        public String systemPrompt = "You are a senior software engineer. Answer concisely, with code where it helps.";
        public Output output = Output.TOOL_WINDOW;

        /** AutoDev 2.x {@code customLlms} list (JSON array text), without its secrets. */
        public String customLlms = "";
        /** Secrets of {@link #customLlms} in PasswordSafe, by {@link SecretHeaders#key}. */
        public List<String> storedLlmSecrets = new ArrayList<>();
        /** Ghost-text code completion on. */
        public boolean completionEnabled = true;
        /** Pause in typing before a completion is asked for. */
        public int completionDebounceMs = 300;
        /**
         * The {@code completion} settings: a JSON object in the chat form with {@code fim}, or
         * {@code {"llm": "<customLlms name>"}}; empty: the {@code customLlms} entry of type {@code Completion}.
         */
        public String completionSettings = "";
    }

    private static final String SERVICE = "LLM Sidecar";
    private static final CredentialAttributes TOKEN = attributes("customEngineToken");

    private volatile SettingsState state = new SettingsState();
    /** Bumped on every change: the completion provider shows an error again once the settings changed. */
    private final AtomicLong version = new AtomicLong();

    public static LlmSidecarSettings getInstance() {
        return ApplicationManager.getApplication().getService(LlmSidecarSettings.class);
    }

    private static CredentialAttributes attributes(String key) {
        return new CredentialAttributes(CredentialAttributesKt.generateServiceName(SERVICE, key));
    }

    @Override
    public @NotNull SettingsState getState() {
        state.llm.customEngineToken = ""; // never in the XML file
        return state;
    }

    /**
     * Runs on whatever thread loads the component (often the UI thread at start-up): no PasswordSafe here. A secret
     * that reached the XML (a hand-edited file, an older version) is moved to PasswordSafe on a pooled thread.
     */
    @Override
    public void loadState(@NotNull SettingsState loaded) {
        if (loaded.llm == null) loaded.llm = new LlmSettings();
        if (loaded.storedHeaders == null) loaded.storedHeaders = new ArrayList<>();
        if (loaded.storedLlmSecrets == null) loaded.storedLlmSecrets = new ArrayList<>();
        String token = loaded.llm.customEngineToken;
        loaded.llm.customEngineToken = "";
        SecretHeaders.Split headers = SecretHeaders.split(loaded.llm.customEngineRequestFormat);
        loaded.llm.customEngineRequestFormat = headers.requestFormat();
        SecretHeaders.SplitList llms = SecretHeaders.splitCustomLlms(parseList(loaded.customLlms), Map.of());
        if (!llms.secrets().isEmpty()) loaded.customLlms = llms.customLlms().toString();
        state = loaded;
        version.incrementAndGet();
        if (!token.isEmpty() || !headers.secrets().isEmpty() || !llms.secrets().isEmpty()) {
            ApplicationManager.getApplication().executeOnPooledThread(() -> {
                if (!token.isEmpty()) setSecret(TOKEN, token);
                headers.secrets().forEach((name, value) -> setSecret(headerAttributes(name), value));
                llms.secrets().forEach((key, value) -> setSecret(llmAttributes(key), value));
                synchronized (this) {
                    for (String name : headers.secrets().keySet()) {
                        if (!state.storedHeaders.contains(name)) state.storedHeaders.add(name);
                    }
                    for (String key : llms.secrets().keySet()) {
                        if (!state.storedLlmSecrets.contains(key)) state.storedLlmSecrets.add(key);
                    }
                }
                LOG.info("llm-sidecar: moved secrets found in llm-sidecar.xml to PasswordSafe");
            });
        }
    }

    public SettingsState options() { return state; }

    /** Changes with every saved change of the settings. */
    public long version() { return version.get(); }

    /**
     * The chat settings with the token and the header keys filled in from PasswordSafe. Off the UI thread.
     */
    public LlmSettings settingsWithSecrets() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        SettingsState s = state;
        LlmSettings out = s.llm.copy();
        String token = getSecret(TOKEN);
        out.customEngineToken = token == null ? "" : token;
        Map<String, String> headers = new LinkedHashMap<>();
        for (String name : s.storedHeaders) {
            String value = getSecret(headerAttributes(name));
            if (value != null) headers.put(name, value);
        }
        out.customEngineRequestFormat = SecretHeaders.join(out.customEngineRequestFormat, headers);
        return out;
    }

    /** The stored header values, for a form that keeps them behind placeholders. Off the UI thread. */
    public Map<String, String> storedHeaderValues() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        Map<String, String> out = new LinkedHashMap<>();
        for (String name : state.storedHeaders) {
            String value = getSecret(headerAttributes(name));
            if (value != null) out.put(name, value);
        }
        return out;
    }

    /** The {@code customLlms} list with its secrets filled in from PasswordSafe, for the sidecar. Off the UI thread. */
    public JsonArray customLlmsWithSecrets() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        return SecretHeaders.joinCustomLlms(parseList(state.customLlms), storedLlmValues());
    }

    /** The stored secrets of the {@code customLlms} list, by key. Off the UI thread. */
    public Map<String, String> storedLlmValues() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        Map<String, String> out = new LinkedHashMap<>();
        for (String key : state.storedLlmSecrets) {
            String value = getSecret(llmAttributes(key));
            if (value != null) out.put(key, value);
        }
        return out;
    }

    /** The {@code completion} settings as JSON, or null when none are set. */
    public JsonObject completionSettings() {
        String text = state.completionSettings;
        if (text == null || text.isBlank()) return null;
        try {
            JsonElement e = JsonParser.parseString(text);
            return e.isJsonObject() ? e.getAsJsonObject() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** What the settings page saves. {@code token} null: keep the stored one. */
    public record Update(LlmSettings llm, String token, Map<String, String> storedHeaders, String sidecarPath,
                         String systemPrompt, Output output, String customLlms, Map<String, String> storedLlmSecrets,
                         boolean completionEnabled, int completionDebounceMs, String completionSettings) {}

    /**
     * Stores settings: the XML state at once (on the calling thread, the UI thread for the settings page), and every
     * secret into PasswordSafe on a pooled thread, never on the UI thread. {@code storedHeaders} and
     * {@code storedLlmSecrets} are the values the form's placeholders stand for (null: not read yet, keep them).
     */
    public void update(Update u) {
        LlmSettings s = u.llm().copy();
        s.customEngineToken = "";
        Map<String, String> previousHeaders = u.storedHeaders();
        SecretHeaders.Split headers = SecretHeaders.split(s.customEngineRequestFormat,
                previousHeaders == null ? placeholderValues(state.storedHeaders) : previousHeaders);
        s.customEngineRequestFormat = headers.requestFormat();
        Map<String, String> previousLlms = u.storedLlmSecrets();
        SecretHeaders.SplitList llms = SecretHeaders.splitCustomLlms(parseList(u.customLlms()),
                previousLlms == null ? placeholderValues(state.storedLlmSecrets) : previousLlms);

        List<String> removedHeaders = new ArrayList<>(state.storedHeaders);
        removedHeaders.removeAll(headers.secrets().keySet());
        List<String> removedLlmSecrets = new ArrayList<>(state.storedLlmSecrets);
        removedLlmSecrets.removeAll(llms.secrets().keySet());

        SettingsState next = new SettingsState();
        next.llm = s;
        next.storedHeaders = new ArrayList<>(headers.secrets().keySet());
        next.sidecarPath = u.sidecarPath() == null ? "" : u.sidecarPath().trim();
        next.systemPrompt = u.systemPrompt() == null ? "" : u.systemPrompt();
        next.output = u.output() == null ? Output.TOOL_WINDOW : u.output();
        next.customLlms = u.customLlms() == null || u.customLlms().isBlank() ? "" : llms.customLlms().toString();
        next.storedLlmSecrets = new ArrayList<>(llms.secrets().keySet());
        next.completionEnabled = u.completionEnabled();
        next.completionDebounceMs = Math.max(50, Math.min(5000, u.completionDebounceMs()));
        next.completionSettings = u.completionSettings() == null ? "" : u.completionSettings().trim();
        state = next;
        version.incrementAndGet();

        // A value still equal to the placeholder is the stored one, unread: nothing to write for it.
        Map<String, String> headerWrites = new LinkedHashMap<>(headers.secrets());
        String token = u.token();
        ApplicationManager.getApplication().executeOnPooledThread(() -> {
            if (token != null) setSecret(TOKEN, token);
            headerWrites.forEach((name, value) -> {
                if (!SecretHeaders.STORED.equals(value)) setSecret(headerAttributes(name), value);
            });
            removedHeaders.forEach(name -> setSecret(headerAttributes(name), null));
            llms.secrets().forEach((key, value) -> {
                if (!SecretHeaders.STORED.equals(value)) setSecret(llmAttributes(key), value);
            });
            removedLlmSecrets.forEach(key -> setSecret(llmAttributes(key), null));
            SidecarService.getInstance().pushConfiguration();
        });
    }

    /** The placeholders themselves, when the stored values were not read: {@link SecretHeaders#split} keeps them. */
    private static Map<String, String> placeholderValues(List<String> names) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String n : names) out.put(n, SecretHeaders.STORED);
        return out;
    }

    /** Replaces only the response JsonPath (the "use this path" button of an error balloon). */
    public void applyResponseFormat(String jsonPath) {
        state.llm.customEngineResponseFormat = jsonPath;
        version.incrementAndGet();
    }

    /** The stored token, or null. Off the UI thread. */
    public String token() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        return getSecret(TOKEN);
    }

    static JsonArray parseList(String text) {
        if (text == null || text.isBlank()) return new JsonArray();
        try {
            JsonElement e = JsonParser.parseString(text);
            return e.isJsonArray() ? e.getAsJsonArray() : new JsonArray();
        } catch (RuntimeException e) {
            return new JsonArray();
        }
    }

    private static CredentialAttributes headerAttributes(String header) {
        return attributes("customHeaders." + header.toLowerCase(java.util.Locale.ROOT));
    }

    private static CredentialAttributes llmAttributes(String key) {
        return attributes("customLlms." + key.replace('\n', '.'));
    }

    private static String getSecret(CredentialAttributes a) {
        return PasswordSafe.getInstance().getPassword(a);
    }

    private static void setSecret(CredentialAttributes a, String value) {
        PasswordSafe.getInstance().set(a, value == null || value.isEmpty() ? null : new Credentials("llm-sidecar", value));
    }
}
