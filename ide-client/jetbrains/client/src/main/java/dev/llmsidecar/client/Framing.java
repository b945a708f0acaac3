package dev.llmsidecar.client;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * LSP base-protocol framing: {@code Content-Length: N\r\n\r\n} then N bytes of UTF-8 JSON.
 * Works on bytes only; the caller encodes and decodes the body as UTF-8 explicitly, never with the platform charset.
 */
public final class Framing {
    /** The sidecar's own limit; a larger frame from it would be a protocol violation. */
    public static final int MAX_FRAME_BYTES = 64 * 1024 * 1024;
    private static final int MAX_HEADER_BYTES = 8 * 1024;

    private Framing() {}

    /** Writes one frame and flushes. Not synchronised: callers serialise writers. */
    public static void write(OutputStream out, byte[] body) throws IOException {
        byte[] header = ("Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        out.write(header);
        out.write(body);
        out.flush();
    }

    /**
     * Reads one frame's body. Returns null on a clean end of stream before any header byte; throws
     * {@link EOFException} on an end of stream inside a frame and {@link IOException} on a malformed header.
     */
    public static byte[] read(InputStream in) throws IOException {
        long length = -1;
        boolean any = false;
        while (true) {
            String line = readHeaderLine(in, !any);
            if (line == null) return null;
            any = true;
            if (line.isEmpty()) {
                if (length < 0) throw new IOException("frame without Content-Length header");
                break;
            }
            int colon = line.indexOf(':');
            if (colon < 0) throw new IOException("malformed header line: " + line);
            String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            if (name.equals("content-length")) {
                try {
                    length = Long.parseLong(line.substring(colon + 1).trim());
                } catch (NumberFormatException e) {
                    throw new IOException("bad Content-Length: " + line);
                }
                if (length < 0 || length > MAX_FRAME_BYTES) throw new IOException("bad Content-Length: " + length);
            }
            // other headers (Content-Type) are accepted and ignored
        }
        byte[] body = in.readNBytes((int) length);
        if (body.length != length) throw new EOFException("end of stream inside a frame body");
        return body;
    }

    private static String readHeaderLine(InputStream in, boolean eofAllowed) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream(64);
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (eofAllowed && buf.size() == 0) return null;
                throw new EOFException("end of stream inside a frame header");
            }
            if (b == '\n') {
                byte[] bytes = buf.toByteArray();
                int n = bytes.length;
                if (n > 0 && bytes[n - 1] == '\r') n--;
                return new String(bytes, 0, n, StandardCharsets.US_ASCII);
            }
            buf.write(b);
            if (buf.size() > MAX_HEADER_BYTES) throw new IOException("frame header too long");
        }
    }
}
