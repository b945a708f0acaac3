package dev.llmsidecar.client;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The settings class speaks AutoDev's v1 field names, and the sidecar accepts what it produces. */
class SettingsTest {
    static final String AUTODEV_PASTE = """
            {
              "customEngineServer": "https://api.deepseek.com/v1/chat/completions",
              "customEngineToken": "sk-abc",
              "customEngineResponseType": "SSE",
              "customEngineRequestFormat": "{\\"customFields\\": {\\"model\\": \\"deepseek-chat\\", \\"stream\\": true}}",
              "customEngineResponseFormat": "$.choices[0].delta.content"
            }""";

    @Test
    void anAutoDevPasteIsStoredAndSentAsIs() {
        LlmSettings s = LlmSettings.fromJson(AUTODEV_PASTE);
        assertEquals("https://api.deepseek.com/v1/chat/completions", s.customEngineServer);
        assertEquals("sk-abc", s.customEngineToken);
        assertEquals("SSE", s.customEngineResponseType);
        assertEquals("$.choices[0].delta.content", s.customEngineResponseFormat);
        assertEquals("{\"customFields\": {\"model\": \"deepseek-chat\", \"stream\": true}}", s.customEngineRequestFormat);
        assertEquals(JsonParser.parseString(AUTODEV_PASTE), s.toJson(), "same keys, same values");
        assertEquals(s, LlmSettings.fromJson(s.toJsonText()));
        assertFalse(s.toString().contains("sk-abc"), "toString masks the token");
    }

    @Test
    void emptyFieldsAreLeftOutSoAPresetFillsThem() {
        LlmSettings s = new LlmSettings();
        s.preset = "deepseek";
        s.customEngineToken = "sk-abc";
        JsonObject o = s.toJson();
        assertEquals(2, o.size(), o.toString());
        assertEquals("deepseek", o.get("preset").getAsString());
    }

    @Test
    void aRequestFormatPastedAsAnObjectAndOtherKeysSurvive() {
        LlmSettings s = LlmSettings.fromJson("""
                {"customEngineServer": "http://localhost:11434/api/chat", "customEngineResponseType": "NDJSON",
                 "customEngineRequestFormat": {"customFields": {"model": "llama3.2"}},
                 "timeouts": {"idleMs": 120000}, "model": "qwen2.5"}""");
        assertEquals("NDJSON", s.customEngineResponseType);
        assertEquals(JsonParser.parseString("{\"customFields\": {\"model\": \"llama3.2\"}}"),
                JsonParser.parseString(s.customEngineRequestFormat));
        assertEquals("qwen2.5", s.model);
        assertEquals(JsonParser.parseString("{\"timeouts\": {\"idleMs\": 120000}}"),
                JsonParser.parseString(s.additionalSettings));
        assertEquals(120000, s.toJson().getAsJsonObject("timeouts").get("idleMs").getAsInt());
        assertEquals(s, s.copy());
        assertNotSame(s, s.copy());
    }

    @Test
    void notAnObjectIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> LlmSettings.fromJson("[1]"));
        assertThrows(IllegalArgumentException.class, () -> LlmSettings.fromJson("{oops"));
        LlmSettings s = new LlmSettings();
        s.additionalSettings = "{not json";
        assertFalse(s.additionalSettingsValid());
    }

    @Test
    void everyFieldIsASettingsKeyOfTheSchema() throws Exception {
        // protocol/settings.schema.json is the sidecar's contract for settings UIs: no field here may drift from it
        var schemaPath = java.nio.file.Path.of("../../../protocol/settings.schema.json");
        JsonObject props = JsonParser.parseString(java.nio.file.Files.readString(schemaPath,
                java.nio.charset.StandardCharsets.UTF_8)).getAsJsonObject().getAsJsonObject("properties");
        LlmSettings all = new LlmSettings();
        for (var f : LlmSettings.class.getFields()) {
            if (f.getType() == String.class && !f.getName().equals("additionalSettings")) f.set(all, "x");
        }
        JsonObject sent = all.toJson();
        assertEquals(LlmSettings.class.getFields().length - 1, sent.size(), sent.toString());
        for (String key : sent.keySet()) assertTrue(props.has(key), key + " is not in settings.schema.json");
    }

    @Test
    void theSidecarValidatesWhatTheClassProduces() throws Exception {
        try (SidecarClient client = new SidecarClient(TestSidecar.options(new TestSidecar.Stderr()).build())) {
            ValidationResult r = client.validateSettings(LlmSettings.fromJson(AUTODEV_PASTE))
                    .get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            assertTrue(r.ok(), r.problems().toString());
            assertTrue(r.normalized().toString().contains("https://api.deepseek.com/v1/chat/completions"),
                    r.normalized().toString());
            assertFalse(r.normalized().toString().contains("sk-abc"), "the token is masked");

            LlmSettings typo = LlmSettings.fromJson(AUTODEV_PASTE);
            typo.additionalSettings = "{\"customEngineServe\": \"x\"}";
            ValidationResult t = client.validateSettings(typo).get(TestSidecar.TIMEOUT_S, TimeUnit.SECONDS);
            assertFalse(t.ok());
            assertTrue(t.problems().toString().contains("customEngineServer"), t.problems().toString());
        }
    }
}
