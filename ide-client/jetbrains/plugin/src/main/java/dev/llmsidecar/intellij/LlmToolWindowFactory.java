package dev.llmsidecar.intellij;

import com.intellij.openapi.project.DumbAware;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.wm.ToolWindow;
import com.intellij.openapi.wm.ToolWindowFactory;
import com.intellij.ui.content.Content;
import com.intellij.ui.content.ContentFactory;
import org.jetbrains.annotations.NotNull;

/** The "LLM Sidecar" tool window: the streamed answers of the project. */
public final class LlmToolWindowFactory implements ToolWindowFactory, DumbAware {
    @Override
    public void createToolWindowContent(@NotNull Project project, @NotNull ToolWindow toolWindow) {
        Content content = ContentFactory.getInstance()
                .createContent(LlmAnswerPanel.getInstance(project).component(), "", false);
        toolWindow.getContentManager().addContent(content);
    }
}
