package dev.llmsidecar.client;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** LSP framing on bytes: Content-Length counts UTF-8 bytes, not characters. */
class FramingTest {
    @Test
    void contentLengthCountsUtf8Bytes() throws IOException {
        String json = "{\"text\":\"你好😀\"}";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Framing.write(out, json.getBytes(StandardCharsets.UTF_8));
        String wire = out.toString(StandardCharsets.ISO_8859_1);
        assertTrue(wire.startsWith("Content-Length: 21\r\n\r\n"), wire); // 11 ASCII + 6 (two CJK) + 4 (emoji)
        byte[] back = Framing.read(new ByteArrayInputStream(out.toByteArray()));
        assertEquals(json, new String(back, StandardCharsets.UTF_8));
    }

    @Test
    void headersAreCaseInsensitiveAndOthersIgnored() throws IOException {
        byte[] wire = ("content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}"
                + "Content-Length: 4\r\n\r\nnull").getBytes(StandardCharsets.US_ASCII);
        ByteArrayInputStream in = new ByteArrayInputStream(wire);
        assertEquals("{}", new String(Framing.read(in), StandardCharsets.UTF_8));
        assertEquals("null", new String(Framing.read(in), StandardCharsets.UTF_8));
        assertNull(Framing.read(in), "clean end of stream");
    }

    @Test
    void truncatedOrMalformedFramesAreErrors() {
        assertThrows(EOFException.class, () -> Framing.read(new ByteArrayInputStream(
                "Content-Length: 10\r\n\r\n{}".getBytes(StandardCharsets.US_ASCII))));
        assertThrows(EOFException.class, () -> Framing.read(new ByteArrayInputStream(
                "Content-Len".getBytes(StandardCharsets.US_ASCII))));
        assertThrows(IOException.class, () -> Framing.read(new ByteArrayInputStream(
                "\r\n{}".getBytes(StandardCharsets.US_ASCII))));
        assertThrows(IOException.class, () -> Framing.read(new ByteArrayInputStream(
                "Content-Length: -1\r\n\r\n".getBytes(StandardCharsets.US_ASCII))));
    }
}
