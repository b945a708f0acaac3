package dev.llmsidecar.intellij;

/**
 * Where an answer streams to. Called from any thread; implementations hop to the UI thread themselves, in order.
 */
interface AnswerSink {
    /** A new answer begins; {@code header} describes the question. */
    void begin(String header);

    /** A chunk of answer text ({@code reasoning}: the model's reasoning, shown apart). */
    void append(String text, boolean reasoning);

    /** The answer ended; {@code footer} says how (finish reason, cancelled, failed). */
    void end(String footer);
}
