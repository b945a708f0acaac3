package dev.llmsidecar.intellij

import com.intellij.codeInsight.inline.completion.DebouncedInlineCompletionProvider
import com.intellij.codeInsight.inline.completion.InlineCompletionEvent
import com.intellij.codeInsight.inline.completion.InlineCompletionProviderID
import com.intellij.codeInsight.inline.completion.InlineCompletionRequest
import com.intellij.codeInsight.inline.completion.elements.InlineCompletionGrayTextElement
import com.intellij.codeInsight.inline.completion.suggestion.InlineCompletionSingleSuggestion
import com.intellij.codeInsight.inline.completion.suggestion.InlineCompletionSuggestion
import com.intellij.codeInsight.lookup.LookupManager
import com.intellij.openapi.application.ApplicationManager
import com.intellij.openapi.application.readAction
import com.intellij.openapi.diagnostic.Logger
import com.intellij.openapi.project.Project
import com.intellij.openapi.project.guessProjectDir
import com.intellij.openapi.vfs.VfsUtilCore
import dev.llmsidecar.client.InlineCompletionParams
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withTimeoutOrNull
import java.util.concurrent.CancellationException
import kotlin.coroutines.coroutineContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * Ghost-text code completion through the sidecar's `llm/inlineCompletion`.
 *
 * - Asked for when the user pauses typing ([delay], `completionDebounceMs`, default 300 ms) or at once on the
 *   platform's "Call Inline Completion" action (Shift+Alt+\).
 * - One request at a time per editor: a newer one cancels the older. The platform cancels the coroutine of the
 *   previous suggestion; [await] then cancels the client's future, which sends `$/cancelRequest`, and the sidecar
 *   closes the connection to the server.
 * - No request while a lookup (completion popup) is shown, with a selection, or with several carets; none when
 *   turned off in the settings.
 * - The platform shows the text as ghost text, keeps the rest while the user types matching characters, hides it on
 *   any other edit, and Tab inserts it (one undo step).
 * - A failure is shown once (a balloon with the server's own message); later ones go to idea.log only, until the
 *   settings change.
 */
class LlmInlineCompletionProvider : DebouncedInlineCompletionProvider() {
    override val id = InlineCompletionProviderID(ID)

    override val delay: Duration
        get() = LlmSidecarSettings.getInstance().options().completionDebounceMs.coerceIn(50, 5000).milliseconds

    override fun isEnabled(event: InlineCompletionEvent): Boolean {
        if (!LlmSidecarSettings.getInstance().options().completionEnabled) return false
        return event is InlineCompletionEvent.DocumentChange || event is InlineCompletionEvent.DirectCall
    }

    override fun shouldBeForced(request: InlineCompletionRequest): Boolean =
        request.event is InlineCompletionEvent.DirectCall

    override suspend fun getSuggestionDebounced(request: InlineCompletionRequest): InlineCompletionSuggestion {
        val cursor = readAction { Cursor.at(request) } ?: return nothing()
        val service = SidecarService.getInstance()
        val client = service.client()
        // the customLlms list and completion settings are sent on a pooled thread when the client starts
        withTimeoutOrNull(10.seconds) { service.configured().await() }
        val params = InlineCompletionParams.builder(cursor.prefix, cursor.suffix)
            .language(cursor.language)
            .path(cursor.path)
            .build()
        val completion = try {
            client.inlineCompletion(params).await()
        } catch (e: CancellationException) {
            coroutineContext.ensureActive() // cancelled here: the platform moved on
            return nothing() // the sidecar superseded it (a newer request for the same place)
        } catch (e: Throwable) {
            FailureReporter.report(request.editor.project, e)
            return nothing()
        }
        val text = completion.text()
        if (text.isEmpty()) return nothing()
        return InlineCompletionSingleSuggestion.build {
            emit(InlineCompletionGrayTextElement(text))
        }
    }

    private fun nothing(): InlineCompletionSuggestion = InlineCompletionSingleSuggestion.build { }

    /** The text around the caret, or null when no completion should be asked for. */
    private class Cursor(val prefix: String, val suffix: String, val language: String?, val path: String?) {
        companion object {
            /** At most this much text before and after the caret is sent (the sidecar trims it further). */
            private const val PREFIX_CHARS = 16_000
            private const val SUFFIX_CHARS = 4_000

            fun at(request: InlineCompletionRequest): Cursor? {
                val editor = request.editor
                if (LookupManager.getActiveLookup(editor) != null) return null
                if (editor.selectionModel.hasSelection()) return null
                if (editor.caretModel.caretCount > 1) return null
                val text = request.document.immutableCharSequence
                val offset = request.endOffset.coerceIn(0, text.length)
                val prefix = text.subSequence(maxOf(0, offset - PREFIX_CHARS), offset).toString()
                val suffix = text.subSequence(offset, minOf(text.length, offset + SUFFIX_CHARS)).toString()
                val file = request.file
                val dir = editor.project?.guessProjectDir()
                val path = file.virtualFile?.let { vf -> dir?.let { VfsUtilCore.getRelativePath(vf, it) } ?: vf.path }
                    ?: file.name
                return Cursor(prefix, suffix, file.language.id.lowercase(), path)
            }
        }
    }

    /** Failures shown once per settings version; the rest only in idea.log. */
    private object FailureReporter {
        private val LOG = Logger.getInstance(LlmInlineCompletionProvider::class.java)

        @Volatile
        private var shownFor = -1L

        fun report(project: Project?, error: Throwable) {
            val version = LlmSidecarSettings.getInstance().version()
            if (project == null || shownFor == version) {
                LOG.info("llm-sidecar: code completion failed: ${error.message}")
                return
            }
            shownFor = version
            LOG.info("llm-sidecar: code completion failed (shown once until the settings change)", error)
            ApplicationManager.getApplication().invokeLater({ ErrorNotifier.show(project, error) }, project.disposed)
        }
    }

    companion object {
        const val ID = "dev.llmsidecar.inline"
    }
}
