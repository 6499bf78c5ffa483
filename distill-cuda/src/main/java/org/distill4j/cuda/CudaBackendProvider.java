package org.distill4j.cuda;

import org.distill4j.backend.Availability;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.backend.ComputeBackendProvider;

/**
 * The NVIDIA backend's provider (name {@code cuda}, priority 100: chosen over the CPU when it is
 * available).
 *
 * <p>Its probe loads the CUDA runtime through JavaCPP's presets once, never throws, and remembers the
 * answer: no CUDA runtime or driver, a driver older than CUDA 13, or no device each give a reason, and
 * the CPU backend is used instead. The fused CUDA loss kernels are not part of this version yet, so
 * even with a device present the probe reports the backend unavailable and says so; requesting it by
 * name ({@code -Ddistill.backend=cuda}) fails with that reason rather than running something else.
 */
public final class CudaBackendProvider implements ComputeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "cuda";

    private volatile Availability cached;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return 100;
    }

    @Override
    public Availability probe() {
        Availability a = cached;
        if (a == null) {
            synchronized (this) {
                a = cached;
                if (a == null) {
                    a = withKernelStatus(CudaProbe.probeDevice());
                    cached = a;
                }
            }
        }
        return a;
    }

    /** The device probe's answer, turned unavailable while this version has no CUDA kernels. */
    static Availability withKernelStatus(Availability device) {
        if (!device.available()) {
            return device;
        }
        return Availability.unavailable("found " + device.detail()
                + ", but this version of distill-cuda has no CUDA loss kernels yet (they come with the distill-cuda core)");
    }

    @Override
    public ComputeBackend create() {
        Availability a = probe();
        throw new IllegalStateException("the CUDA backend cannot be created: " + a.reasonText());
    }
}
