package dev.llmsidecar.intellij;

import com.intellij.credentialStore.CredentialAttributes;
import com.intellij.credentialStore.CredentialAttributesKt;
import com.intellij.credentialStore.Credentials;
import com.intellij.ide.passwordSafe.PasswordSafe;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.components.PersistentStateComponent;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.components.State;
import com.intellij.openapi.components.Storage;
import dev.llmsidecar.client.LlmSettings;
import org.jetbrains.annotations.NotNull;

/**
 * The plugin's settings, application-wide. The LLM settings are the client core's {@link LlmSettings} (AutoDev's
 * v1 field names), stored in {@code llm-sidecar.xml} without the token; the token is kept in the IDE's
 * PasswordSafe (the OS keychain or KeePass, as the user configured the IDE).
 */
@Service(Service.Level.APP)
@State(name = "LlmSidecarSettings", storages = @Storage("llm-sidecar.xml"))
public final class LlmSidecarSettings implements PersistentStateComponent<LlmSidecarSettings.SettingsState> {

    /** Where an answer is streamed. */
    public enum Output { TOOL_WINDOW, SCRATCH_FILE }

    /** What is written to llm-sidecar.xml. Public fields: IntelliJ's XmlSerializer stores them as they are. */
    public static final class SettingsState {
        /** The LLM settings; {@code customEngineToken} is always empty here. */
        public LlmSettings llm = new LlmSettings();
        /** Path of the llm-sidecar binary; empty: the bundled one, else llm-sidecar on PATH. */
        public String sidecarPath = "";
        /** Sent before the question as a system message, when not empty. */
        public String systemPrompt = "You are a senior software engineer. Answer concisely, with code where it helps.";
        public Output output = Output.TOOL_WINDOW;
    }

    private static final CredentialAttributes TOKEN = new CredentialAttributes(
            CredentialAttributesKt.generateServiceName("LLM Sidecar", "customEngineToken"));

    private SettingsState state = new SettingsState();

    public static LlmSidecarSettings getInstance() {
        return ApplicationManager.getApplication().getService(LlmSidecarSettings.class);
    }

    @Override
    public @NotNull SettingsState getState() {
        state.llm.customEngineToken = ""; // never in the XML file
        return state;
    }

    @Override
    public void loadState(@NotNull SettingsState loaded) {
        if (loaded.llm == null) loaded.llm = new LlmSettings();
        if (!loaded.llm.customEngineToken.isEmpty()) {
            // a token that reached the XML (hand-edited file): move it to PasswordSafe
            setToken(loaded.llm.customEngineToken);
            loaded.llm.customEngineToken = "";
        }
        state = loaded;
    }

    public SettingsState options() { return state; }

    /**
     * The LLM settings with the token filled in from PasswordSafe. PasswordSafe may ask the OS keychain: call it
     * off the UI thread.
     */
    public LlmSettings settingsWithToken() {
        LlmSettings s = state.llm.copy();
        String token = token();
        s.customEngineToken = token == null ? "" : token;
        return s;
    }

    /** Stores settings: the token goes to PasswordSafe, the rest to the XML state. */
    public void update(LlmSettings settings, String sidecarPath, String systemPrompt, Output output) {
        LlmSettings s = settings.copy();
        String token = s.customEngineToken;
        s.customEngineToken = "";
        state.llm = s;
        state.sidecarPath = sidecarPath == null ? "" : sidecarPath.trim();
        state.systemPrompt = systemPrompt == null ? "" : systemPrompt;
        state.output = output == null ? Output.TOOL_WINDOW : output;
        setToken(token);
    }

    /** Replaces only the response JsonPath (the "use this path" button of an error balloon). */
    public void applyResponseFormat(String jsonPath) {
        state.llm.customEngineResponseFormat = jsonPath;
    }

    public String token() {
        return PasswordSafe.getInstance().getPassword(TOKEN);
    }

    public void setToken(String token) {
        PasswordSafe.getInstance().set(TOKEN,
                token == null || token.isEmpty() ? null : new Credentials("customEngineToken", token));
    }
}
