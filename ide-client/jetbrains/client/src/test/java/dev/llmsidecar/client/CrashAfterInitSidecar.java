package dev.llmsidecar.client;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A broken sidecar for {@link CrashTest}: answers {@code initialize} like the real one, then exits with code 7 on
 * the first other request (a crash the real binary cannot be made to have on purpose).
 */
public final class CrashAfterInitSidecar {
    public static void main(String[] args) throws IOException {
        InputStream in = new BufferedInputStream(System.in);
        OutputStream out = System.out;
        while (true) {
            byte[] body = Framing.read(in);
            if (body == null) System.exit(0);
            String msg = new String(body, StandardCharsets.UTF_8);
            if (msg.contains("\"initialize\"")) {
                String id = msg.replaceAll(".*\"id\":(\\d+).*", "$1");
                Framing.write(out, ("{\"jsonrpc\":\"2.0\",\"id\":" + id
                        + ",\"result\":{\"serverInfo\":{\"name\":\"crash-after-init\"}}}").getBytes(StandardCharsets.UTF_8));
            } else if (msg.contains("\"id\"")) {
                System.err.println("crash-after-init: giving up on " + msg.length() + " bytes");
                System.exit(7);
            }
        }
    }
}
