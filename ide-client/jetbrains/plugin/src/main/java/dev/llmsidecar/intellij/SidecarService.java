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
import java.util.concurrent.CompletableFuture;

/**
 * Owns the one {@link SidecarClient} of the IDE. The sidecar is spawned on first use, restarted by the client if
 * it dies, replaced when the binary path setting changes, and shut down when the IDE (or the plugin) unloads,
 * without blocking the UI thread. The user's {@code customLlms} list and {@code completion} settings are sent to
 * it ({@link #pushConfiguration}) with their secrets from PasswordSafe, read on a pooled thread.
 */
@Service(Service.Level.APP)
public final class SidecarService implements Disposable {
    private static final Logger LOG = Logger.getInstance(SidecarService.class);
    private static final Logger SIDECAR_LOG = Logger.getInstance("llm-sidecar");
    static final String PLUGIN_ID = "dev.llmsidecar.jetbrains";

    private SidecarClient client;
    private Path clientBinary;
    /** Completes once the configuration of the current client was sent; completion requests wait for it. */
    private CompletableFuture<Void> configured = new CompletableFuture<>();

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
            configured = new CompletableFuture<>();
            LOG.info("llm-sidecar: using " + binary);
            ApplicationManager.getApplication().executeOnPooledThread(this::pushConfiguration);
        }
        return client;
    }

    /** Completes once the {@code customLlms} list and {@code completion} settings reached the current client. */
    public synchronized CompletableFuture<Void> configured() {
        return configured;
    }

    /**
     * Sends the {@code customLlms} list and the {@code completion} settings (sent again by the client after a
     * restart). Reads PasswordSafe: off the UI thread.
     */
    public void pushConfiguration() {
        ApplicationManager.getApplication().assertIsNonDispatchThread();
        LlmSidecarSettings settings = LlmSidecarSettings.getInstance();
        SidecarClient c;
        CompletableFuture<Void> done;
        synchronized (this) {
            c = client;
            done = configured;
        }
        if (c == null) return; // configured when the client is created
        try {
            c.configureCustomLlms(settings.customLlmsWithSecrets());
            c.configureCompletion(settings.completionSettings());
        } catch (RuntimeException e) {
            LOG.warn("llm-sidecar: could not send the customLlms and completion settings", e);
        } finally {
            done.complete(null);
        }
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

    /**
     * Never blocks the UI thread: {@code close()} (shutdown, exit, a bounded wait, then kill) runs on a thread of its
     * own. Should the IDE exit first, the sidecar sees the end of its input and exits by itself.
     */
    @Override
    public void dispose() {
        SidecarClient old;
        synchronized (this) {
            old = client;
            client = null;
        }
        if (old == null) return;
        Thread t = new Thread(old::close, "llm-sidecar-close");
        t.setDaemon(true);
        t.start();
    }
}
