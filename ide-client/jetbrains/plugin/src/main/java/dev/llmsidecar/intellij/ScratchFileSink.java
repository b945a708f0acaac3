package dev.llmsidecar.intellij;

import com.intellij.ide.scratch.ScratchFileService;
import com.intellij.ide.scratch.ScratchRootType;
import com.intellij.lang.Language;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.application.ModalityState;
import com.intellij.openapi.command.WriteCommandAction;
import com.intellij.openapi.editor.Document;
import com.intellij.openapi.fileEditor.FileDocumentManager;
import com.intellij.openapi.fileEditor.FileEditorManager;
import com.intellij.openapi.fileTypes.PlainTextLanguage;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.vfs.VirtualFile;

/**
 * Streams one answer into a new Markdown scratch file (plain text when the Markdown plugin is absent). Unlike the
 * tool window, this writes a document: write actions must not run inside a modal dialog they do not belong to, so
 * the updates are queued {@link ModalityState#nonModal()} and, while a dialog is open, wait (in order, nothing is
 * lost) until it closes. The tool window streams under any dialog.
 */
final class ScratchFileSink implements AnswerSink {
    private final Project project;
    private Document document; // EDT only

    ScratchFileSink(Project project) {
        this.project = project;
    }

    @Override
    public void begin(String header) {
        ApplicationManager.getApplication().invokeLater(() -> {
            Language markdown = Language.findLanguageByID("Markdown");
            VirtualFile file = ScratchRootType.getInstance().createScratchFile(project, "llm-answer.md",
                    markdown != null ? markdown : PlainTextLanguage.INSTANCE, "<!-- " + header + " -->\n\n",
                    ScratchFileService.Option.create_new_always);
            if (file == null) return;
            FileEditorManager.getInstance(project).openFile(file, true);
            document = FileDocumentManager.getInstance().getDocument(file);
        }, ModalityState.nonModal(), project.getDisposed());
    }

    @Override
    public void append(String text, boolean reasoning) {
        ApplicationManager.getApplication().invokeLater(() -> insert(reasoning ? "> " + text.replace("\n", "\n> ") : text),
                ModalityState.nonModal(), project.getDisposed());
    }

    @Override
    public void end(String footer) {
        ApplicationManager.getApplication().invokeLater(() -> insert("\n\n<!-- " + footer + " -->\n"),
                ModalityState.nonModal(), project.getDisposed());
    }

    private void insert(String s) {
        Document d = document;
        if (d == null) return;
        WriteCommandAction.runWriteCommandAction(project, "LLM Answer", null,
                () -> d.insertString(d.getTextLength(), s));
    }
}
