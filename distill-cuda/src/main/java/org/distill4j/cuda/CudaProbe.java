package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cudart;
import org.distill4j.backend.Availability;

/**
 * Asks the CUDA runtime what is there. Kept apart from {@link CudaBackendProvider} so that loading
 * the provider (which ServiceLoader does everywhere) never touches native code; only
 * {@link #probeDevice()} does, and it turns every failure into a reason.
 */
final class CudaProbe {
    /** CUDA 13.0 as the runtime encodes versions (1000 * major + 10 * minor). */
    static final int MIN_DRIVER = 13000;
    /**
     * Why the runtime could not be loaded, as the first failed load said it: the JVM names the missing library only then
     * (UnsatisfiedLinkError); every later touch of the presets' classes raises a NoClassDefFoundError that does not.
     */
    private static volatile String unloadableReason;

    private CudaProbe() {
    }

    static Availability probeDevice() {
        try {
            int[] driver = new int[1];
            int rc = cudart.cudaDriverGetVersion(driver);
            if (rc != cudart.cudaSuccess) {
                return Availability.unavailable("cudaDriverGetVersion failed: " + error(rc));
            }
            if (driver[0] == 0) {
                return Availability.unavailable("no NVIDIA driver is installed (cudaDriverGetVersion returned 0)");
            }
            if (driver[0] < MIN_DRIVER) {
                return Availability.unavailable("the NVIDIA driver supports CUDA " + version(driver[0])
                        + ", CUDA " + version(MIN_DRIVER) + " or newer (driver >= 580) is needed");
            }
            int[] count = new int[1];
            rc = cudart.cudaGetDeviceCount(count);
            if (rc != cudart.cudaSuccess) {
                return Availability.unavailable("cudaGetDeviceCount failed: " + error(rc));
            }
            if (count[0] == 0) {
                return Availability.unavailable("no CUDA device is visible");
            }
            try (cudaDeviceProp p = new cudaDeviceProp()) {
                rc = cudart.cudaGetDeviceProperties(p, 0);
                if (rc != cudart.cudaSuccess) {
                    return Availability.unavailable("cudaGetDeviceProperties failed: " + error(rc));
                }
                return Availability.available(p.name().getString() + " (sm_" + p.major() + p.minor() + ", "
                        + (p.totalGlobalMem() >> 20) + " MiB), driver CUDA " + version(driver[0]));
            }
        } catch (LinkageError e) {
            String reason = unloadableReason;
            if (reason == null) {
                reason = unloadable(e);
                unloadableReason = reason; // a race may store an equal second reason: harmless
            }
            return Availability.unavailable(reason);
        } catch (RuntimeException e) {
            return Availability.unavailable("the CUDA probe failed: " + e);
        }
    }

    /**
     * Why the CUDA runtime is not there, from the error its first use raised: an UnsatisfiedLinkError (naming the
     * library that is missing) on first touch, a NoClassDefFoundError on later ones.
     */
    static String unloadable(LinkageError e) {
        // the JVM's message goes on with every folder of java.library.path: a long line in every CPU run's log, and no help
        String why = firstLine(e.getMessage()).replaceFirst(" in java\\.library\\.path: .*", " on the library path");
        // said for users: no Java error class names ("UnsatisfiedLinkError") in a line every CPU-only run logs
        String said = e instanceof NoClassDefFoundError ? "an earlier load failed: " + why : why;
        return "no CUDA runtime (the CUDA libraries could not be loaded: " + said
                + "); a GPU machine needs the NVIDIA driver >= 580 and libcudart.so.13";
    }

    private static String error(int rc) {
        return "error " + rc + " (" + cudart.cudaGetErrorString(rc).getString() + ")";
    }

    static String version(int v) {
        return (v / 1000) + "." + (v % 1000) / 10;
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "no message";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
