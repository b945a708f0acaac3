package dev.llmsidecar.intellij;

import com.intellij.openapi.actionSystem.ActionUpdateThread;
import com.intellij.openapi.actionSystem.AnAction;
import com.intellij.openapi.actionSystem.AnActionEvent;
import com.intellij.openapi.actionSystem.CommonDataKeys;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.diagnostic.Logger;
import com.intellij.openapi.editor.Editor;
import com.intellij.openapi.fileEditor.FileDocumentManager;
import com.intellij.openapi.progress.ProgressIndicator;
import com.intellij.openapi.progress.Task;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.ui.Messages;
import com.intellij.openapi.vfs.VirtualFile;
import dev.llmsidecar.client.Await;
import dev.llmsidecar.client.CompleteParams;
import dev.llmsidecar.client.CompletionResult;
import dev.llmsidecar.client.LlmSettings;
import org.jetbrains.annotations.NotNull;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * Ask LLM: asks a question about the editor selection and streams the answer into the tool window or a scratch
 * file, in a cancellable background task. Cancelling the progress indicator cancels the completion (the sidecar
 * closes the connection to the LLM server); the text streamed so far stays.
 */
public final class AskLlmAction extends AnAction {
    private static final Logger LOG = Logger.getInstance(AskLlmAction.class);

    @Override
    public @NotNull ActionUpdateThread getActionUpdateThread() {
        return ActionUpdateThread.BGT;
    }

    @Override
    public void update(@NotNull AnActionEvent e) {
        Editor editor = e.getData(CommonDataKeys.EDITOR);
        e.getPresentation().setEnabledAndVisible(e.getProject() != null && editor != null
                && editor.getSelectionModel().hasSelection());
    }

    @Override
    public void actionPerformed(@NotNull AnActionEvent e) {
        Project project = e.getProject();
        Editor editor = e.getData(CommonDataKeys.EDITOR);
        if (project == null || editor == null) return;
        String selection = editor.getSelectionModel().getSelectedText();
        if (selection == null || selection.isBlank()) return;
        VirtualFile file = FileDocumentManager.getInstance().getFile(editor.getDocument());
        String fileName = file == null ? "selection" : file.getName();
        String language = file == null ? "" : file.getFileType().getName().toLowerCase();

        String question = Messages.showInputDialog(project, "Ask about the selected code in " + fileName + ":",
                "Ask LLM", null, "Explain this code", null);
        if (question == null || question.isBlank()) return;

        LlmSidecarSettings settings = LlmSidecarSettings.getInstance();
        String systemPrompt = settings.options().systemPrompt;
        AnswerSink sink = settings.options().output == LlmSidecarSettings.Output.SCRATCH_FILE
                ? new ScratchFileSink(project) : LlmAnswerPanel.getInstance(project);
        String user = question + "\n\n```" + language + "\n" + selection + "\n```";

        new Task.Backgroundable(project, "Asking LLM", true) {
            @Override
            public void run(@NotNull ProgressIndicator indicator) {
                indicator.setIndeterminate(true);
                indicator.setText("Waiting for the LLM server");
                LlmSettings llm = settings.settingsWithSecrets(); // PasswordSafe: off the UI thread
                // no chat settings of its own: the customLlms entry of type Default answers (AutoDev 2.x users)
                CompleteParams.Builder params = CompleteParams.builder();
                if (llm.toJson().size() > 0 || settings.options().customLlms.isBlank()) {
                    params.settings(llm);
                } else {
                    waitConfigured();
                }
                if (systemPrompt != null && !systemPrompt.isBlank()) params.system(systemPrompt);
                params.user(user);

                sink.begin(question + " (" + fileName + ")");
                long[] chars = {0};
                CompletableFuture<CompletionResult> future = SidecarService.getInstance().client()
                        .complete(params.build(), chunk -> {
                            chars[0] += chunk.text().length(); // the reader thread only
                            indicator.setText("Receiving the answer: " + chars[0] + " characters");
                            sink.append(chunk.text(), chunk.isReasoning());
                        });
                // The progress indicator's Cancel button is the cancel signal: Await polls it and cancels the
                // future (the sidecar then closes the connection to the LLM server).
                Await.Outcome outcome;
                try {
                    outcome = Await.completion(future, indicator::isCanceled, Duration.ofMillis(100));
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    sink.end("interrupted");
                    return;
                }
                if (outcome instanceof Await.Done d) {
                    sink.end(describe(d.result()));
                } else if (outcome instanceof Await.Cancelled c) {
                    sink.end("cancelled after " + c.cancellation().partialText().length() + " characters");
                } else if (outcome instanceof Await.Failed f) {
                    sink.end("failed: " + f.error().getMessage());
                    LOG.info("Ask LLM failed", f.error());
                    ApplicationManager.getApplication().invokeLater(() -> ErrorNotifier.show(project, f.error()));
                }
            }
        }.queue();
    }

    /** The customLlms list has reached the sidecar (it is sent on a pooled thread when the client starts). */
    private static void waitConfigured() {
        try {
            SidecarService.getInstance().configured().get(10, java.util.concurrent.TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.info("llm-sidecar: the customLlms list was not sent yet; asking anyway", e);
        }
    }

    private static String describe(CompletionResult r) {
        StringBuilder b = new StringBuilder("done");
        if (r.finishReason() != null) b.append(", ").append(r.finishReason());
        if (r.timings().totalMs() != null) b.append(", ").append(r.timings().totalMs()).append(" ms");
        if (r.usage() != null && r.usage().has("total_tokens")) {
            b.append(", ").append(r.usage().get("total_tokens").getAsString()).append(" tokens");
        }
        return b.toString();
    }
}
