package dev.llmsidecar.intellij;

import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.application.ModalityState;
import com.intellij.openapi.ide.CopyPasteManager;
import com.intellij.openapi.options.Configurable;
import com.intellij.openapi.options.ConfigurationException;
import com.intellij.openapi.ui.ComboBox;
import com.intellij.openapi.ui.Messages;
import com.intellij.openapi.util.text.StringUtil;
import com.intellij.ui.components.JBCheckBox;
import com.intellij.ui.components.JBLabel;
import com.intellij.ui.components.JBPasswordField;
import com.intellij.ui.components.JBScrollPane;
import com.intellij.ui.components.JBTextArea;
import com.intellij.ui.components.JBTextField;
import com.intellij.util.ui.FormBuilder;
import com.intellij.util.ui.JBUI;
import dev.llmsidecar.client.InvalidSettings;
import dev.llmsidecar.client.LlmRequestFailed;
import dev.llmsidecar.client.LlmSettings;
import dev.llmsidecar.client.Preset;
import dev.llmsidecar.client.Problem;
import dev.llmsidecar.client.SecretHeaders;
import dev.llmsidecar.client.SidecarException;
import dev.llmsidecar.client.Suggestion;
import dev.llmsidecar.client.TestConnectionResult;
import dev.llmsidecar.client.ValidationResult;
import org.jetbrains.annotations.Nls;
import org.jetbrains.annotations.Nullable;

import javax.swing.JButton;
import javax.swing.JComponent;
import javax.swing.JPanel;
import java.awt.FlowLayout;
import java.awt.datatransfer.DataFlavor;
import java.util.LinkedHashMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletionException;

/**
 * Settings | Tools | LLM Sidecar: AutoDev's "Custom LLM Server" fields under their AutoDev labels, in AutoDev's
 * order, a preset picker fed by the sidecar's {@code llm/presets}, and Validate / Test Connection buttons that use
 * what is in the form (not the saved settings, unlike AutoDev's test button); the token's key sources (an
 * environment variable or a command the sidecar reads itself); the AutoDev 2.x {@code customLlms} list and the
 * code completion settings.
 *
 * <p>Secrets are never read or written on the UI thread: PasswordSafe is read on a pooled thread after
 * {@link #reset()} (the fields fill in when it answers) and written by {@link LlmSidecarSettings#update} on a pooled
 * thread. Key-like header values and the secrets of {@code customLlms} entries show as
 * {@link SecretHeaders#STORED}; leaving the placeholder keeps the stored value, typing a value replaces it.
 */
public final class LlmSidecarConfigurable implements Configurable {
    private static final String[] RESPONSE_TYPES = {"", "SSE", "JSON", "NDJSON"};

    private final ComboBox<String> preset = new ComboBox<>(new String[]{""});
    private final JBLabel presetInfo = new JBLabel();
    private final ComboBox<String> responseType = new ComboBox<>(RESPONSE_TYPES);
    private final JBTextField server = new JBTextField();
    private final JBPasswordField token = new JBPasswordField();
    private final JBTextField tokenEnv = new JBTextField();
    private final JBTextField tokenCommand = new JBTextField();
    private final JBTextField responseFormat = new JBTextField();
    private final JBTextArea requestFormat = new JBTextArea(5, 60);
    private final JBTextField model = new JBTextField();
    private final JBTextField reasoningFormat = new JBTextField();
    private final JBTextArea additional = new JBTextArea(3, 60);
    private final JBTextField sidecarPath = new JBTextField();
    private final JBTextArea systemPrompt = new JBTextArea(2, 60);
    private final ComboBox<LlmSidecarSettings.Output> output = new ComboBox<>(LlmSidecarSettings.Output.values());
    private final JBCheckBox completionEnabled = new JBCheckBox("Show code completions as ghost text (Tab accepts)");
    private final JBTextField completionDebounce = new JBTextField(6);
    private final JBTextArea completionSettings = new JBTextArea(3, 60);
    private final JBTextArea customLlms = new JBTextArea(5, 60);
    private final JBLabel status = new JBLabel();
    private final JButton useSuggestion = new JButton();
    private final Map<String, Preset> presets = new LinkedHashMap<>();
    private String savedToken; // null while PasswordSafe is being read
    private Map<String, String> savedHeaders; // the values behind the header placeholders; null while being read
    private Map<String, String> savedLlmSecrets; // the same for the customLlms list
    private JPanel panel;

    @Override
    public @Nls String getDisplayName() {
        return "LLM Sidecar";
    }

    @Override
    public @Nullable JComponent createComponent() {
        responseFormat.getEmptyText().setText("$.choices[0].delta.content");
        requestFormat.setLineWrap(true);
        additional.setLineWrap(true);
        systemPrompt.setLineWrap(true);
        server.getEmptyText().setText("https://api.deepseek.com/v1/chat/completions");
        tokenEnv.getEmptyText().setText("DEEPSEEK_API_KEY (read by the sidecar from its environment)");
        tokenCommand.getEmptyText().setText("pass show deepseek (run by the sidecar, no shell)");
        completionSettings.setLineWrap(true);
        customLlms.setLineWrap(true);
        completionSettings.getEmptyText().setText("{\"llm\": \"<customLlms name>\"} or {\"preset\": \"ollama-fim\", \"model\": \"qwen2.5-coder:1.5b\"}");
        sidecarPath.getEmptyText().setText("bundled llm-sidecar, else llm-sidecar on PATH");
        status.setCopyable(true);
        status.setAllowAutoWrapping(true);
        useSuggestion.setVisible(false);
        preset.addActionListener(e -> showPresetInfo());

        JButton paste = new JButton("Paste AutoDev Settings");
        paste.addActionListener(e -> pasteAutoDevJson());
        JButton validate = new JButton("Validate");
        validate.addActionListener(e -> validate());
        JButton test = new JButton("Test Connection");
        test.addActionListener(e -> testConnection());
        JPanel buttons = new JPanel(new FlowLayout(FlowLayout.LEFT, JBUI.scale(4), 0));
        buttons.add(paste);
        buttons.add(validate);
        buttons.add(test);
        buttons.add(useSuggestion);

        panel = FormBuilder.createFormBuilder()
                .addLabeledComponent("Preset:", preset)
                .addComponentToRightColumn(presetInfo)
                .addSeparator()
                .addLabeledComponent("Custom Response Type:", responseType)
                .addLabeledComponent("Custom Engine Server:", server)
                .addLabeledComponent("Custom Engine Token:", token)
                .addLabeledComponent("Token from environment variable:", tokenEnv)
                .addLabeledComponent("Token from command:", tokenCommand)
                .addComponentToRightColumn(note("Set at most one of the three. The token is kept in PasswordSafe; "
                        + "with a variable or a command the sidecar reads the key itself and it never crosses the "
                        + "pipe to the sidecar (where logs could see it). These are IDE settings, never project files."))
                .addLabeledComponent("Custom Response Format (Json Path):", responseFormat)
                .addLabeledComponent("Custom Request Body Format (Json):", new JBScrollPane(requestFormat), true)
                .addComponent(note("customHeaders values that look like keys (api-key, x-api-key, Authorization, "
                        + "any name with key, token or secret) are stored in PasswordSafe, not in the settings file; "
                        + "they show as " + SecretHeaders.STORED + ". A value may also be {\"env\": \"NAME\"} or "
                        + "{\"command\": [\"program\", \"arg\"]}, read by the sidecar."))
                .addSeparator()
                .addLabeledComponent("Model:", model)
                .addLabeledComponent("Reasoning format (Json Path):", reasoningFormat)
                .addLabeledComponent("Other settings (JSON object):", new JBScrollPane(additional), true)
                .addComponent(buttons)
                .addComponent(status)
                .addSeparator()
                .addLabeledComponent("Sidecar binary:", sidecarPath)
                .addLabeledComponent("System prompt:", new JBScrollPane(systemPrompt), true)
                .addLabeledComponent("Show answers in:", output)
                .addSeparator()
                .addLabeledComponent("AutoDev customLlms (JSON list):", new JBScrollPane(customLlms), true)
                .addComponent(note("The entry with modelType Default answers Ask LLM when the fields above are "
                        + "empty; the Completion entry serves code completion. Tokens and header keys of the entries "
                        + "are stored in PasswordSafe."))
                .addComponent(completionEnabled)
                .addLabeledComponent("Pause before a completion (ms):", completionDebounce)
                .addLabeledComponent("Completion settings (JSON, optional):", new JBScrollPane(completionSettings), true)
                .addComponentFillVertically(new JPanel(), 0)
                .getPanel();
        loadPresets();
        reset();
        return panel;
    }

    /** The form as settings (the token as typed). */
    private LlmSettings form() {
        LlmSettings s = new LlmSettings();
        s.preset = Objects.toString(preset.getSelectedItem(), "");
        s.customEngineResponseType = Objects.toString(responseType.getSelectedItem(), "");
        s.customEngineServer = server.getText().trim();
        s.customEngineToken = new String(token.getPassword());
        s.customEngineTokenEnv = tokenEnv.getText().trim();
        s.customEngineTokenCommand = tokenCommand.getText().trim();
        s.customEngineResponseFormat = responseFormat.getText().trim();
        s.customEngineRequestFormat = requestFormat.getText().trim();
        s.model = model.getText().trim();
        s.reasoningFormat = reasoningFormat.getText().trim();
        s.additionalSettings = additional.getText().trim();
        return s;
    }

    /**
     * The form as sent to Validate / Test Connection: header placeholders replaced by the stored values when they
     * have been read (else the request goes without them and the server says so).
     */
    private LlmSettings formWithSecrets() {
        LlmSettings s = form();
        SecretHeaders.Split split = SecretHeaders.split(s.customEngineRequestFormat,
                savedHeaders == null ? Map.of() : savedHeaders);
        s.customEngineRequestFormat = SecretHeaders.join(split.requestFormat(), split.secrets());
        return s;
    }

    private static JBLabel note(String text) {
        JBLabel l = new JBLabel("<html>" + esc(text) + "</html>");
        l.setAllowAutoWrapping(true);
        l.setCopyable(true);
        return l;
    }

    private void show(LlmSettings s) {
        selectPreset(s.preset);
        responseType.setSelectedItem(s.customEngineResponseType == null ? "" : s.customEngineResponseType.toUpperCase());
        server.setText(s.customEngineServer);
        tokenEnv.setText(s.customEngineTokenEnv);
        tokenCommand.setText(s.customEngineTokenCommand);
        responseFormat.setText(s.customEngineResponseFormat);
        requestFormat.setText(s.customEngineRequestFormat);
        model.setText(s.model);
        reasoningFormat.setText(s.reasoningFormat);
        additional.setText(s.additionalSettings);
    }

    @Override
    public boolean isModified() {
        LlmSidecarSettings settings = LlmSidecarSettings.getInstance();
        LlmSettings f = form();
        String typedToken = f.customEngineToken;
        f.customEngineToken = "";
        LlmSidecarSettings.SettingsState o = settings.options();
        LlmSettings stored = o.llm.copy();
        stored.customEngineToken = "";
        stored.customEngineRequestFormat = SecretHeaders.masked(stored.customEngineRequestFormat, o.storedHeaders);
        return !f.equals(stored)
                || (savedToken != null && !savedToken.equals(typedToken))
                || !sidecarPath.getText().trim().equals(o.sidecarPath)
                || !systemPrompt.getText().equals(o.systemPrompt)
                || output.getSelectedItem() != o.output
                || !customLlms.getText().trim().equals(maskedLlms(o).trim())
                || completionEnabled.isSelected() != o.completionEnabled
                || !completionDebounce.getText().trim().equals(String.valueOf(o.completionDebounceMs))
                || !completionSettings.getText().trim().equals(o.completionSettings);
    }

    @Override
    public void apply() throws ConfigurationException {
        LlmSettings f = form();
        if (!f.additionalSettingsValid()) {
            throw new ConfigurationException("\"Other settings\" must be a JSON object, e.g. "
                    + "{\"timeouts\": {\"idleMs\": 120000}}");
        }
        int sources = (f.customEngineToken.isBlank() || savedToken == null ? 0 : 1)
                + (f.customEngineTokenEnv.isBlank() ? 0 : 1) + (f.customEngineTokenCommand.isBlank() ? 0 : 1);
        if (sources > 1) {
            throw new ConfigurationException("Set only one of the token, the token's environment variable and the "
                    + "token command (clear the others).");
        }
        if (!customLlms.getText().isBlank() && !isJsonArray(customLlms.getText())) {
            throw new ConfigurationException("customLlms must be a JSON list of entries, as AutoDev stores it.");
        }
        if (!completionSettings.getText().isBlank() && !isJsonObject(completionSettings.getText())) {
            throw new ConfigurationException("Completion settings must be a JSON object, e.g. {\"llm\": \"Coder\"}.");
        }
        int debounce;
        try {
            debounce = Integer.parseInt(completionDebounce.getText().trim());
        } catch (NumberFormatException e) {
            throw new ConfigurationException("The pause before a completion is a number of milliseconds, e.g. 300.");
        }
        // no PasswordSafe here (the UI thread): a token not read yet is kept as stored (null), and so are the
        // values behind the placeholders; the secrets are written on a pooled thread
        String typedToken = savedToken == null ? null : f.customEngineToken;
        LlmSidecarSettings.getInstance().update(new LlmSidecarSettings.Update(f, typedToken, savedHeaders,
                sidecarPath.getText(), systemPrompt.getText(), (LlmSidecarSettings.Output) output.getSelectedItem(),
                customLlms.getText(), savedLlmSecrets, completionEnabled.isSelected(), debounce,
                completionSettings.getText()));
        if (typedToken != null) savedToken = typedToken;
    }

    private static String maskedLlms(LlmSidecarSettings.SettingsState o) {
        if (o.customLlms == null || o.customLlms.isBlank()) return "";
        Map<String, String> placeholders = new HashMap<>();
        for (String key : o.storedLlmSecrets) placeholders.put(key, SecretHeaders.STORED);
        return new com.google.gson.GsonBuilder().disableHtmlEscaping().setPrettyPrinting().create()
                .toJson(SecretHeaders.joinCustomLlms(LlmSidecarSettings.parseList(o.customLlms), placeholders));
    }

    private static boolean isJsonArray(String text) {
        try {
            return com.google.gson.JsonParser.parseString(text).isJsonArray();
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static boolean isJsonObject(String text) {
        try {
            return com.google.gson.JsonParser.parseString(text).isJsonObject();
        } catch (RuntimeException e) {
            return false;
        }
    }

    @Override
    public void reset() {
        LlmSidecarSettings settings = LlmSidecarSettings.getInstance();
        LlmSidecarSettings.SettingsState o = settings.options();
        LlmSettings shown = o.llm.copy();
        shown.customEngineRequestFormat = SecretHeaders.masked(shown.customEngineRequestFormat, o.storedHeaders);
        show(shown);
        sidecarPath.setText(o.sidecarPath);
        systemPrompt.setText(o.systemPrompt);
        output.setSelectedItem(o.output);
        customLlms.setText(maskedLlms(o));
        completionEnabled.setSelected(o.completionEnabled);
        completionDebounce.setText(String.valueOf(o.completionDebounceMs));
        completionSettings.setText(o.completionSettings);
        status.setText("");
        useSuggestion.setVisible(false);
        // PasswordSafe may ask the OS keychain: read it off the UI thread
        savedToken = null;
        savedHeaders = null;
        savedLlmSecrets = null;
        token.setText("");
        ApplicationManager.getApplication().executeOnPooledThread(() -> {
            String t = settings.token();
            Map<String, String> headers = settings.storedHeaderValues();
            Map<String, String> llmSecrets = settings.storedLlmValues();
            ApplicationManager.getApplication().invokeLater(() -> {
                savedToken = t == null ? "" : t;
                savedHeaders = headers;
                savedLlmSecrets = llmSecrets;
                token.setText(savedToken);
            }, ModalityState.any());
        });
    }

    @Override
    public void disposeUIResources() {
        panel = null;
    }

    private void loadPresets() {
        SidecarService.getInstance().client().presets().whenComplete((list, error) ->
                ApplicationManager.getApplication().invokeLater(() -> {
                    if (error != null) {
                        presetInfo.setText("Presets unavailable: " + cause(error).getMessage());
                        return;
                    }
                    String selected = Objects.toString(preset.getSelectedItem(), "");
                    presets.clear();
                    preset.removeAllItems();
                    preset.addItem("");
                    for (Preset p : list) {
                        presets.put(p.name(), p);
                        preset.addItem(p.name());
                    }
                    selectPreset(selected.isEmpty() ? LlmSidecarSettings.getInstance().options().llm.preset : selected);
                }, ModalityState.any()));
    }

    private void selectPreset(String name) {
        String n = name == null ? "" : name;
        boolean known = false;
        for (int i = 0; i < preset.getItemCount(); i++) known |= n.equals(preset.getItemAt(i));
        if (!known) preset.addItem(n); // a preset typed in a pasted setting, before the list is loaded
        preset.setSelectedItem(n);
        showPresetInfo();
    }

    private void showPresetInfo() {
        Preset p = presets.get(Objects.toString(preset.getSelectedItem(), ""));
        if (p == null) {
            presetInfo.setText("<html>No preset: the fields below are the whole setting.</html>");
            return;
        }
        StringBuilder b = new StringBuilder("<html>").append(esc(p.description()));
        if (p.urlHint() != null) b.append("<br/>Server: ").append(esc(p.urlHint()));
        if (p.docs() != null) b.append("<br/>Docs: ").append(esc(p.docs()));
        b.append("<br/>Empty fields below come from the preset; a token is usually all it needs.</html>");
        presetInfo.setText(b.toString());
    }

    /** Fills the form from AutoDev settings JSON on the clipboard (the v1 dialog fields, or any settings form). */
    private void pasteAutoDevJson() {
        String text;
        try {
            text = (String) CopyPasteManager.getInstance().getContents(DataFlavor.stringFlavor);
        } catch (RuntimeException e) {
            text = null;
        }
        if (text == null || text.isBlank()) {
            text = Messages.showMultilineInputDialog(null, "AutoDev settings JSON:", "Paste AutoDev Settings", "",
                    null, null);
        }
        if (text == null || text.isBlank()) return;
        try {
            LlmSettings s = LlmSettings.fromJson(text);
            show(s);
            if (!s.customEngineToken.isEmpty()) token.setText(s.customEngineToken);
            status.setText("Pasted. Validate or Test Connection, then Apply.");
        } catch (IllegalArgumentException e) {
            status.setText("<html><font color='red'>" + esc(e.getMessage()) + "</font></html>");
        }
    }

    private void validate() {
        status.setText("Validating…");
        useSuggestion.setVisible(false);
        SidecarService.getInstance().client().validateSettings(formWithSecrets()).whenComplete((r, error) ->
                ApplicationManager.getApplication().invokeLater(() -> {
                    if (error != null) status.setText(errorHtml(cause(error)));
                    else status.setText(validationHtml(r));
                }, ModalityState.any()));
    }

    private void testConnection() {
        status.setText("Testing the connection with the settings in this form…");
        useSuggestion.setVisible(false);
        SidecarService.getInstance().client().testConnection(formWithSecrets()).whenComplete((r, error) ->
                ApplicationManager.getApplication().invokeLater(() -> {
                    if (error != null) {
                        status.setText(errorHtml(cause(error)));
                        return;
                    }
                    status.setText(testHtml(r));
                    offerSuggestion(r.suggestions());
                }, ModalityState.any()));
    }

    private void offerSuggestion(List<Suggestion> suggestions) {
        if (suggestions.isEmpty()) return;
        String path = suggestions.get(0).path();
        useSuggestion.setText("Use " + path);
        for (var l : useSuggestion.getActionListeners()) useSuggestion.removeActionListener(l);
        useSuggestion.addActionListener(e -> {
            responseFormat.setText(path);
            useSuggestion.setVisible(false);
            status.setText("Response format set to " + path + ". Apply to keep it.");
        });
        useSuggestion.setVisible(true);
    }

    private static String validationHtml(ValidationResult r) {
        if (r.ok() && r.warnings().isEmpty()) return "<html><font color='green'>The settings are valid.</font></html>";
        if (r.ok()) {
            StringBuilder b = new StringBuilder("<html><font color='green'>The settings are valid</font>, but:<br/>");
            for (Problem w : r.warnings()) b.append(esc(w.toString())).append("<br/>");
            return b.append("</html>").toString();
        }
        StringBuilder b = new StringBuilder("<html><font color='red'>");
        for (Problem p : r.problems()) b.append(esc(p.toString())).append("<br/>");
        return b.append("</font></html>").toString();
    }

    private static String testHtml(TestConnectionResult r) {
        if (r.ok()) {
            return "<html><font color='green'>Connected</font>: HTTP " + r.status() + ", "
                    + esc(r.detectedResponseType()) + ", first byte after " + r.firstByteMs() + " ms; the answer began “"
                    + esc(StringUtil.shortenTextWithEllipsis(Objects.toString(r.sampleText(), ""), 60, 0))
                    + "”.</html>";
        }
        StringBuilder b = new StringBuilder(errorHtml(r.error()).replace("</html>", ""));
        if (!r.suggestions().isEmpty()) {
            b.append("<br/>Paths that would have produced text: ");
            for (Suggestion s : r.suggestions()) b.append("<code>").append(esc(s.path())).append("</code> ");
        }
        return b.append("</html>").toString();
    }

    private static String errorHtml(Throwable e) {
        StringBuilder b = new StringBuilder("<html><font color='red'>");
        if (e instanceof LlmRequestFailed f && f.providerMessage() != null) {
            b.append("<b>").append(esc(f.providerMessage())).append("</b><br/>");
        }
        b.append(esc(e == null ? "unknown error" : e.getMessage()));
        if (e instanceof InvalidSettings s) {
            for (Problem p : s.problems()) b.append("<br/>").append(esc(p.toString()));
        } else if (e instanceof SidecarException se && se.code() == 0) {
            b.append("<br/>Check the sidecar binary below.");
        }
        return b.append("</font></html>").toString();
    }

    private static Throwable cause(Throwable t) {
        while (t instanceof CompletionException && t.getCause() != null) t = t.getCause();
        return t;
    }

    private static String esc(String s) {
        return s == null ? "" : StringUtil.escapeXmlEntities(s);
    }
}
