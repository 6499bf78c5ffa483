package org.distill4j.cuda;

import org.distill4j.backend.Availability;
import org.distill4j.backend.Backends;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.backend.ComputeBackendProvider;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CudaBackendProviderTest {

    @Test
    void isDiscoveredAheadOfTheCpu() {
        List<String> names = Backends.providers().stream().map(ComputeBackendProvider::name).toList();
        assertEquals(List.of("cuda", "cpu"), names);
    }

    @Test
    void probeNeverThrowsGivesReasonsAndIsRemembered() {
        CudaBackendProvider p = new CudaBackendProvider();
        Availability a = p.probe();
        Availability again = p.probe();
        assertSame(a, again, "the probe runs once");
        org.junit.jupiter.api.Assumptions.assumeFalse(a.available(), "a usable GPU is here: " + a.detail());
        assertFalse(a.reasons().isEmpty());
        assertTrue(a.reasonText().length() > 20, a.reasonText());
    }

    /**
     * Every provider in a JVM gives the same reason where the CUDA runtime does not load, the first load's: the JVM names
     * the missing library only then (UnsatisfiedLinkError), later touches raise a NoClassDefFoundError that does not.
     */
    @Test
    void everyProbeGivesTheFirstLoadsReason() {
        Availability first = new CudaBackendProvider().probe();
        Availability second = new CudaBackendProvider().probe();
        assertEquals(first.reasonText(), second.reasonText());
        org.junit.jupiter.api.Assumptions.assumeTrue(first.reasonText().contains("could not be loaded"),
                "the CUDA libraries load here: " + first.reasonText());
        assertTrue(first.reasonText().startsWith("no CUDA runtime (the CUDA libraries could not be loaded: ")
                && !first.reasonText().contains("Error"), "said for users, no Java error class: " + first.reasonText());
    }

    /** The reason names the missing library, not every folder the JVM looked in (a long line in every CPU run's log). */
    @Test
    void theReasonNamesTheMissingLibraryWithoutTheSearchPath() {
        String reason = CudaProbe.unloadable(new UnsatisfiedLinkError("no jnicudart in java.library.path: /usr/java/packages/lib:/lib:/usr/lib"));
        assertEquals("no CUDA runtime (the CUDA libraries could not be loaded: no jnicudart on the library path); a GPU machine"
                + " needs the NVIDIA driver >= 580 and libcudart.so.13", reason);
        assertEquals("no CUDA runtime (the CUDA libraries could not be loaded: an earlier load failed: Could not initialize class"
                + " org.bytedeco.cuda.global.cudart);"
                + " a GPU machine needs the NVIDIA driver >= 580 and libcudart.so.13",
                CudaProbe.unloadable(new NoClassDefFoundError("Could not initialize class org.bytedeco.cuda.global.cudart")));
    }

    /** Automatic selection takes the GPU where the probe finds a usable one, the CPU elsewhere (CI). */
    @Test
    void automaticSelectionTakesAUsableGpuAndFallsBackToTheCpu() {
        boolean gpu = new CudaBackendProvider().probe().available();
        try (ComputeBackend b = Backends.select(null, Backends.providers())) {
            assertEquals(gpu ? "cuda" : "cpu", b.name());
        }
    }

    @Test
    void requestingCudaFailsWithTheProbeReason() {
        Availability a = new CudaBackendProvider().probe();
        org.junit.jupiter.api.Assumptions.assumeFalse(a.available(), "a usable GPU is here: " + a.detail());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.select("cuda", Backends.providers()));
        assertTrue(e.getMessage().startsWith("backend 'cuda' was requested"), e.getMessage());
        assertTrue(e.getMessage().contains(a.reasonText()), e.getMessage());
    }

    /** Opening a device where the CUDA libraries do not load (CI) says why, as the probe does, not with a link error. */
    @Test
    void openingADeviceWithoutCudaFailsWithTheProbeReason() {
        Availability a = new CudaBackendProvider().probe();
        org.junit.jupiter.api.Assumptions.assumeFalse(a.available(), "a usable GPU is here: " + a.detail());
        org.junit.jupiter.api.Assumptions.assumeTrue(a.reasonText().contains("could not be loaded"),
                "the CUDA libraries load here; only the device is missing: " + a.reasonText());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> DeviceContext.open(0));
        assertTrue(e.getMessage().startsWith("DeviceContext.open(0): "), e.getMessage());
        assertTrue(e.getMessage().contains("no CUDA runtime (the CUDA libraries could not be loaded: "), e.getMessage());
    }

    @Test
    void aDeviceOfAValidatedArchitectureIsUsedOthersOnlyWhenOptedIn() {
        String nvcc = KernelImage.info().getProperty("nvcc", "none");
        String kernels = nvcc.equals("none") ? "kernels from NVRTC" : "kernels built by nvcc " + nvcc;
        Availability h100 = CudaBackendProvider.withKernelStatus(
                Availability.available("NVIDIA H100 80GB HBM3 (sm_90, 81559 MiB), driver CUDA 13.0"), false);
        assertTrue(h100.available(), h100.reasonText());
        assertTrue(h100.detail().contains(kernels) && !h100.detail().contains("unvalidated"), h100.detail());

        Availability a100 = CudaBackendProvider.withKernelStatus(Availability.available("NVIDIA A100 (sm_80, 40960 MiB)"), false);
        assertFalse(a100.available());
        assertTrue(a100.reasonText().contains("found NVIDIA A100 (sm_80") && a100.reasonText().contains("validated on a GPU only on sm_90")
                && a100.reasonText().contains("not on sm_80") && a100.reasonText().contains("-Ddistill.cuda.unvalidated=true"),
                a100.reasonText());
        Availability opted = CudaBackendProvider.withKernelStatus(Availability.available("NVIDIA A100 (sm_80, 40960 MiB)"), true);
        assertTrue(opted.available());
        assertTrue(opted.detail().contains(kernels) && opted.detail().contains("(unvalidated on this architecture)"), opted.detail());

        Availability unknown = CudaBackendProvider.withKernelStatus(Availability.available("some device"), false);
        assertFalse(unknown.available());
        assertTrue(unknown.reasonText().contains("not on this device"), unknown.reasonText());
        Availability none = Availability.unavailable("no CUDA device is visible");
        assertSame(none, CudaBackendProvider.withKernelStatus(none, true));
    }

    @Test
    void versionFormatting() {
        assertEquals("13.0", CudaProbe.version(13000));
        assertEquals("12.8", CudaProbe.version(12080));
    }

    /** A LinkageError without a message, or with one of several lines, still gives a one-line reason. */
    @Test
    void theReasonIsOneLineWhateverTheErrorSays() {
        assertEquals("no CUDA runtime (the CUDA libraries could not be loaded: no message); a GPU machine needs the NVIDIA driver >= 580"
                + " and libcudart.so.13", CudaProbe.unloadable(new UnsatisfiedLinkError()));
        assertEquals("no CUDA runtime (the CUDA libraries could not be loaded: libcudart.so.13: cannot open shared object file); a GPU"
                + " machine needs the NVIDIA driver >= 580 and libcudart.so.13",
                CudaProbe.unloadable(new UnsatisfiedLinkError("libcudart.so.13: cannot open shared object file\n\tat the loader\nmore")));
    }

    /**
     * {@code -Ddistill.cuda.unvalidated} opts in to unvalidated architectures when it is {@code true} in any case, and
     * only then; the property, where set, is what counts (the environment variable is read only without it).
     */
    @Test
    void theUnvalidatedOptInIsReadFromItsProperty() {
        String before = System.getProperty(CudaBackendProvider.UNVALIDATED_PROPERTY);
        try {
            System.setProperty(CudaBackendProvider.UNVALIDATED_PROPERTY, "true");
            assertTrue(CudaBackendProvider.unvalidatedAllowed());
            System.setProperty(CudaBackendProvider.UNVALIDATED_PROPERTY, "TRUE");
            assertTrue(CudaBackendProvider.unvalidatedAllowed());
            for (String no : new String[] {"false", "yes", "1", ""}) {
                System.setProperty(CudaBackendProvider.UNVALIDATED_PROPERTY, no);
                assertFalse(CudaBackendProvider.unvalidatedAllowed(), "'" + no + "'");
            }
            System.clearProperty(CudaBackendProvider.UNVALIDATED_PROPERTY);
            assertEquals("true".equalsIgnoreCase(System.getenv("DISTILL_CUDA_UNVALIDATED")), CudaBackendProvider.unvalidatedAllowed(),
                    "without the property: the environment variable");
        } finally {
            if (before == null) {
                System.clearProperty(CudaBackendProvider.UNVALIDATED_PROPERTY);
            } else {
                System.setProperty(CudaBackendProvider.UNVALIDATED_PROPERTY, before);
            }
        }
    }

    /** Creating the backend where the probe found none fails with the probe's reason, before any device call. */
    @Test
    void creatingTheBackendWithoutADeviceSaysWhy() {
        CudaBackendProvider p = new CudaBackendProvider();
        Availability a = p.probe();
        org.junit.jupiter.api.Assumptions.assumeFalse(a.available(), "a usable GPU is here: " + a.detail());
        IllegalStateException e = assertThrows(IllegalStateException.class, p::create);
        assertEquals("the CUDA backend cannot be created: " + a.reasonText(), e.getMessage());
    }
}
