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
 * the CPU backend is used instead. The fused kernels ({@code kd}, {@code ce}) are built and their row
 * algebra is tested on the CPU, but until a GPU run has checked them against the CPU reference the probe
 * reports the backend unavailable even with a device, and says so: {@code -Ddistill.cuda.unvalidated=true}
 * (or {@code DISTILL_CUDA_UNVALIDATED=true}) uses them anyway. Requesting the backend by name
 * ({@code -Ddistill.backend=cuda}) when it is unavailable fails with the reason rather than running
 * something else.
 */
public final class CudaBackendProvider implements ComputeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "cuda";
    /** Opt-in to kernels not yet validated on a GPU. */
    public static final String UNVALIDATED_PROPERTY = "distill.cuda.unvalidated";

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
                    a = withKernelStatus(CudaProbe.probeDevice(), unvalidatedAllowed());
                    cached = a;
                }
            }
        }
        return a;
    }

    static boolean unvalidatedAllowed() {
        String p = System.getProperty(UNVALIDATED_PROPERTY);
        if (p == null) {
            p = System.getenv("DISTILL_CUDA_UNVALIDATED");
        }
        return "true".equalsIgnoreCase(p);
    }

    /** The device probe's answer, combined with the kernels' status. */
    static Availability withKernelStatus(Availability device, boolean unvalidated) {
        if (!device.available()) {
            return device;
        }
        if (!unvalidated) {
            return Availability.unavailable("found " + device.detail() + ", but the fused CUDA kernels of this version have not been"
                    + " validated on a GPU yet (no GPU run has compared them with the CPU reference); -D" + UNVALIDATED_PROPERTY
                    + "=true uses them anyway");
        }
        String nvcc = KernelImage.info().getProperty("nvcc", "none");
        return Availability.available(device.detail() + ", kernels " + (nvcc.equals("none") ? "from NVRTC" : "built by nvcc " + nvcc)
                + " (unvalidated)");
    }

    @Override
    public ComputeBackend create() {
        Availability a = probe();
        if (!a.available()) {
            throw new IllegalStateException("the CUDA backend cannot be created: " + a.reasonText());
        }
        return new CudaBackend(DeviceContext.open(0));
    }
}
