package org.distill4j.cuda;

import org.distill4j.backend.Availability;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;

/**
 * Base of the tests that need a GPU: opens device 0 once per test class (with a {@link CudaBackend} on
 * it) and skips each test, with the probe's reason, where there is no usable device.
 */
public abstract class GpuTest {
    protected static DeviceContext ctx;
    protected static CudaBackend backend;
    private static Availability device;

    @BeforeAll
    public static void openDevice() {
        device = CudaProbe.probeDevice();
        if (device.available()) {
            ctx = DeviceContext.open(0);
            backend = new CudaBackend(ctx);
        }
    }

    @BeforeEach
    public void needsADevice() {
        Assumptions.assumeTrue(ctx != null, () -> "no usable CUDA device: " + device.reasonText());
    }

    @AfterAll
    public static void closeDevice() {
        if (backend != null) {
            backend.close();
            backend.close(); // twice is harmless
            backend = null;
            ctx = null;
        }
    }
}
