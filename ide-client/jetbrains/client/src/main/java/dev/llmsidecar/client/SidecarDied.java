package dev.llmsidecar.client;

import java.util.List;

/**
 * The sidecar process exited (crashed, was killed, or failed to start properly) while a request was in flight or
 * before it could be answered. The next call starts a new process.
 */
public final class SidecarDied extends SidecarException {
    private final Integer exitCode;
    private final List<String> stderrTail;

    public SidecarDied(String message, Integer exitCode, List<String> stderrTail, Throwable cause) {
        super(0, message, null, cause);
        this.exitCode = exitCode;
        this.stderrTail = List.copyOf(stderrTail);
    }

    /** The exit code, or null when the process had not exited yet (its pipe broke). */
    public Integer exitCode() { return exitCode; }

    /** The last lines the process wrote to stderr. */
    public List<String> stderrTail() { return stderrTail; }
}
