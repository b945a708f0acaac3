package dev.llmsidecar.client;

/** The sidecar could not be started (binary missing or not executable), or the client is closed. */
public final class SidecarUnavailable extends SidecarException {
    public SidecarUnavailable(String message, Throwable cause) {
        super(0, message, null, cause);
    }
}
