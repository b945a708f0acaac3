package dev.llmsidecar.client;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** A mock LLM server and one client of the real sidecar, shared by the tests of a class. */
abstract class WithSidecar {
    static MockLlmServer mock;
    static TestSidecar.Stderr stderr;
    static SidecarClient client;

    @BeforeAll
    static void startSidecar() throws Exception {
        mock = new MockLlmServer();
        stderr = new TestSidecar.Stderr();
        client = new SidecarClient(TestSidecar.options(stderr).build());
    }

    @AfterAll
    static void stopSidecar() {
        if (client != null) client.close();
        if (mock != null) mock.close();
    }
}
