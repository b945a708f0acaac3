package dev.llmsidecar.intellij;

import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.application.ModalityState;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.wm.ToolWindow;
import com.intellij.openapi.wm.ToolWindowManager;
import com.intellij.ui.components.JBScrollPane;
import com.intellij.ui.components.JBTextArea;

import javax.swing.JComponent;

/**
 * The tool window's text: answers are appended as they stream. One per project. Updates are queued with
 * {@link ModalityState#any()}: they only touch this Swing text area (no document, no PSI), so the answer keeps
 * streaming while a modal dialog (Settings, a commit dialog) is open instead of freezing until it closes.
 */
@Service(Service.Level.PROJECT)
public final class LlmAnswerPanel implements AnswerSink {
    static final String TOOL_WINDOW_ID = "LLM Sidecar";

    private final Project project;
    private final JBTextArea text = new JBTextArea();
    private final JBScrollPane scroll = new JBScrollPane(text);
    private boolean inReasoning;

    public LlmAnswerPanel(Project project) {
        this.project = project;
        text.setEditable(false);
        text.setLineWrap(true);
        text.setWrapStyleWord(true);
    }

    public static LlmAnswerPanel getInstance(Project project) {
        return project.getService(LlmAnswerPanel.class);
    }

    JComponent component() { return scroll; }

    @Override
    public void begin(String header) {
        ApplicationManager.getApplication().invokeLater(() -> {
            ToolWindow tw = ToolWindowManager.getInstance(project).getToolWindow(TOOL_WINDOW_ID);
            if (tw != null) tw.show();
            if (text.getDocument().getLength() > 0) text.append("\n\n");
            text.append("▶ " + header + "\n\n");
            inReasoning = false;
        }, ModalityState.any(), project.getDisposed());
    }

    @Override
    public void append(String chunk, boolean reasoning) {
        ApplicationManager.getApplication().invokeLater(() -> {
            if (reasoning && !inReasoning) text.append("[thinking] ");
            if (!reasoning && inReasoning) text.append("\n[answer] ");
            inReasoning = reasoning;
            text.append(chunk);
            text.setCaretPosition(text.getDocument().getLength());
        }, ModalityState.any(), project.getDisposed());
    }

    @Override
    public void end(String footer) {
        ApplicationManager.getApplication().invokeLater(() -> text.append("\n— " + footer + "\n"),
                ModalityState.any(), project.getDisposed());
    }
}
