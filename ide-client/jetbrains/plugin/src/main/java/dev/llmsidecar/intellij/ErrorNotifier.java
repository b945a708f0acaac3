package dev.llmsidecar.intellij;

import com.intellij.notification.Notification;
import com.intellij.notification.NotificationAction;
import com.intellij.notification.NotificationGroupManager;
import com.intellij.notification.NotificationType;
import com.intellij.openapi.options.ShowSettingsUtil;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.util.text.StringUtil;
import dev.llmsidecar.client.InvalidSettings;
import dev.llmsidecar.client.LlmRequestFailed;
import dev.llmsidecar.client.Problem;
import dev.llmsidecar.client.SidecarDied;
import dev.llmsidecar.client.SidecarException;
import dev.llmsidecar.client.SidecarUnavailable;
import dev.llmsidecar.client.Suggestion;

import java.util.List;

/**
 * Error balloons built from the client's typed errors: the LLM server's own message, what to change, and for a
 * JsonPath that matched nothing a button per suggested path that applies it to the settings.
 */
final class ErrorNotifier {
    static final String GROUP = "LLM Sidecar";

    private ErrorNotifier() {}

    static void show(Project project, Throwable error) {
        Notification n;
        if (error instanceof LlmRequestFailed f) {
            n = requestFailed(f);
        } else if (error instanceof InvalidSettings s) {
            n = create("LLM settings are not valid", problems(s.problems()));
        } else if (error instanceof SidecarDied d) {
            n = create("llm-sidecar stopped", escape(d.getMessage())
                    + "<br/>It will be started again on the next request. Its log is in idea.log.");
        } else if (error instanceof SidecarUnavailable u) {
            n = create("llm-sidecar could not be started", escape(u.getMessage())
                    + "<br/>Set the binary in Settings | Tools | LLM Sidecar.");
        } else if (error instanceof SidecarException e) {
            n = create("llm-sidecar error " + e.code(), escape(e.getMessage()));
        } else {
            n = create("LLM request failed", escape(String.valueOf(error)));
        }
        n.addAction(NotificationAction.createSimple("Open settings", () ->
                ShowSettingsUtil.getInstance().showSettingsDialog(project, LlmSidecarConfigurable.class)));
        n.notify(project);
    }

    private static Notification requestFailed(LlmRequestFailed f) {
        StringBuilder body = new StringBuilder();
        String kind = f.kind() == null ? "error" : f.kind();
        String title = switch (kind) {
            case "http_status" -> "LLM server answered HTTP " + f.status();
            case "connect" -> "Cannot reach the LLM server";
            case "timeout" -> "The LLM server timed out" + (f.phase() == null ? "" : " (" + f.phase() + ")");
            case "no_match" -> "The response format matched nothing";
            case "stream_error" -> "The LLM server reported an error";
            default -> "LLM request failed (" + kind + ")";
        };
        if (f.providerMessage() != null) {
            body.append("<b>").append(escape(f.providerMessage())).append("</b><br/>");
        }
        body.append(escape(f.getMessage()));
        if (f.hint() != null) body.append("<br/><i>").append(escape(f.hint())).append("</i>");
        if (!f.partialText().isEmpty()) {
            body.append("<br/>The answer so far (").append(f.partialText().length()).append(" characters) was kept.");
        }
        List<Suggestion> suggestions = f.suggestions();
        if (!suggestions.isEmpty()) {
            body.append("<br/>Paths that would have produced text:");
            for (Suggestion s : suggestions.subList(0, Math.min(3, suggestions.size()))) {
                body.append("<br/><code>").append(escape(s.path())).append("</code> → “")
                        .append(escape(StringUtil.shortenTextWithEllipsis(
                                s.sampleText() == null ? "" : s.sampleText(), 40, 0)))
                        .append("”");
            }
        }
        Notification n = create(title, body.toString());
        for (Suggestion s : suggestions.subList(0, Math.min(3, suggestions.size()))) {
            n.addAction(NotificationAction.createSimpleExpiring("Use " + s.path(), () -> {
                LlmSidecarSettings.getInstance().applyResponseFormat(s.path());
                NotificationGroupManager.getInstance().getNotificationGroup(GROUP)
                        .createNotification("Response format set to " + s.path(), NotificationType.INFORMATION)
                        .notify(null);
            }));
        }
        return n;
    }

    private static String problems(List<Problem> problems) {
        StringBuilder b = new StringBuilder();
        for (Problem p : problems) {
            if (b.length() > 0) b.append("<br/>");
            if (p.field() != null) b.append("<code>").append(escape(p.field())).append("</code>: ");
            b.append(escape(p.message()));
        }
        return b.toString();
    }

    private static Notification create(String title, String html) {
        return NotificationGroupManager.getInstance().getNotificationGroup(GROUP)
                .createNotification(title, html, NotificationType.ERROR);
    }

    private static String escape(String s) {
        return s == null ? "" : StringUtil.escapeXmlEntities(s);
    }
}
