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
 * the CPU backend is used instead. The kernels run by default on the architectures where this version's GPU
 * tests have passed on a device ({@link #VALIDATED_ARCHITECTURES}: sm_90, an H100 with driver 580.159.04, on
 * 2026-11-22). On any other architecture the probe reports the backend unavailable, and says so:
 * {@code -Ddistill.cuda.unvalidated=true} (or {@code DISTILL_CUDA_UNVALIDATED=true}) uses it anyway. Requesting the backend by name
 * ({@code -Ddistill.backend=cuda}) when it is unavailable fails with the reason rather than running
 * something else.
 */
public final class CudaBackendProvider implements ComputeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "cuda";
    /** Opt-in to the kernels on an architecture where they have not been validated on a GPU. */
    public static final String UNVALIDATED_PROPERTY = "distill.cuda.unvalidated";
    /**
     * Compute capabilities (10 major + minor) on which distill-cuda's GPU tests passed on a device: 90, an
     * NVIDIA H100 80GB HBM3 (driver 580.159.04, CUDA 13.0), all 206 tests, 2026-11-22.
     */
    public static final java.util.Set<Integer> VALIDATED_ARCHITECTURES = java.util.Set.of(90);
    private static final java.util.regex.Pattern ARCHITECTURE = java.util.regex.Pattern.compile("\\(sm_(\\d+)");

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
        java.util.regex.Matcher m = ARCHITECTURE.matcher(device.detail());
        int arch = m.find() ? Integer.parseInt(m.group(1)) : -1;
        boolean validated = VALIDATED_ARCHITECTURES.contains(arch);
        if (!validated && !unvalidated) {
            return Availability.unavailable("found " + device.detail() + ", but the CUDA kernels of this version have been validated on a"
                    + " GPU only on " + architectures() + " (its GPU tests passed there), not on " + (arch < 0 ? "this device" : "sm_" + arch)
                    + "; -D" + UNVALIDATED_PROPERTY + "=true uses them anyway");
        }
        String nvcc = KernelImage.info().getProperty("nvcc", "none");
        return Availability.available(device.detail() + ", kernels " + (nvcc.equals("none") ? "from NVRTC" : "built by nvcc " + nvcc)
                + (validated ? "" : " (unvalidated on this architecture)"));
    }

    private static String architectures() {
        return VALIDATED_ARCHITECTURES.stream().sorted().map(a -> "sm_" + a).collect(java.util.stream.Collectors.joining(", "));
    }

    @Override
    public ComputeBackend create() {
        Availability a = probe();
        if (!a.available()) {
            throw new IllegalStateException("the CUDA backend cannot be created: " + a.reasonText());
        }
        DeviceContext ctx = DeviceContext.open(0);
        try {
            return new CudaBackend(ctx);
        } catch (RuntimeException e) {
            ctx.close(); // e.g. a bad distill.cpu.threads, for the losses without a kernel
            throw e;
        }
    }
}
