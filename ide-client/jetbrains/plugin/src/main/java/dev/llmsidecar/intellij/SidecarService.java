package dev.llmsidecar.intellij;

import com.intellij.ide.plugins.IdeaPluginDescriptor;
import com.intellij.ide.plugins.PluginManagerCore;
import com.intellij.openapi.Disposable;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.diagnostic.Logger;
import com.intellij.openapi.extensions.PluginId;
import com.intellij.openapi.util.SystemInfo;
import dev.llmsidecar.client.SidecarClient;
import dev.llmsidecar.client.SidecarOptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Owns the one {@link SidecarClient} of the IDE. The sidecar is spawned on first use, restarted by the client if
 * it dies, replaced when the binary path setting changes, and shut down when the IDE (or the plugin) unloads.
 */
@Service(Service.Level.APP)
public final class SidecarService implements Disposable {
    private static final Logger LOG = Logger.getInstance(SidecarService.class);
    private static final Logger SIDECAR_LOG = Logger.getInstance("llm-sidecar");
    static final String PLUGIN_ID = "dev.llmsidecar.jetbrains";

    private SidecarClient client;
    private Path clientBinary;

    public static SidecarService getInstance() {
        return ApplicationManager.getApplication().getService(SidecarService.class);
    }

    /** The client for the configured binary (a new one if the setting changed since the last call). */
    public synchronized SidecarClient client() {
        Path binary = binary();
        if (client == null || !binary.equals(clientBinary)) {
            if (client != null) {
                SidecarClient old = client;
                ApplicationManager.getApplication().executeOnPooledThread(old::close);
            }
            // stderr is the sidecar's log: into idea.log, never into the UI. It never carries secrets.
            SidecarOptions options = SidecarOptions.builder(binary)
                    .stderrSink(line -> {
                        if (line.contains(" ERROR ") || line.contains(" WARN ")) SIDECAR_LOG.warn(line);
                        else SIDECAR_LOG.info(line);
                    })
                    .closeTimeout(Duration.ofSeconds(3))
                    .build();
            client = new SidecarClient(options);
            clientBinary = binary;
            LOG.info("llm-sidecar: using " + binary);
        }
        return client;
    }

    /** The configured path, else the binary bundled in the plugin's bin/, else llm-sidecar on PATH. */
    static Path binary() {
        String configured = LlmSidecarSettings.getInstance().options().sidecarPath;
        if (configured != null && !configured.isBlank()) return Path.of(configured.trim());
        String name = SystemInfo.isWindows ? "llm-sidecar.exe" : "llm-sidecar";
        IdeaPluginDescriptor plugin = PluginManagerCore.getPlugin(PluginId.getId(PLUGIN_ID));
        if (plugin != null) {
            Path bundled = plugin.getPluginPath().resolve("bin").resolve(name);
            if (Files.isExecutable(bundled)) return bundled;
        }
        return Path.of(name); // resolved on PATH by ProcessBuilder
    }

    @Override
    public synchronized void dispose() {
        if (client != null) {
            client.close(); // shutdown + exit, bounded by the close timeout
            client = null;
        }
    }
}
