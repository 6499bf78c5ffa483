package org.distill4j.cuda;

import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Compiles the shipped kernel sources for the device at hand with NVRTC (the fallback when the fatbin has
 * no code the driver can run). NVRTC must be the device's own toolkit version or older than its driver:
 * PTX from a newer NVRTC is refused by an older driver.
 */
final class Nvrtc {
    private Nvrtc() {
    }

    /** Compiles {@code source} with its {@code headers} (include name to text) to a cubin for sm_{major}{minor}. */
    static byte[] compile(String source, String sourceName, java.util.Map<String, String> headers, int major, int minor) {
        try {
            return compileLoaded(source, sourceName, headers, major, minor);
        } catch (LinkageError e) {
            throw new IllegalStateException("the kernels need compiling for sm_" + major + minor + " (the fatbin has no code for it), but "
                    + "NVRTC could not be loaded (" + e.getClass().getSimpleName() + ": " + e.getMessage() + "); install the CUDA 13 "
                    + "toolkit's libnvrtc.so.13, or use a build whose fatbin covers this device", e);
        }
    }

    private static byte[] compileLoaded(String source, String sourceName, java.util.Map<String, String> headers, int major, int minor) {
        _nvrtcProgram prog = new _nvrtcProgram();
        try (BytePointer src = new BytePointer(source); BytePointer name = new BytePointer(sourceName);
             PointerPointer<BytePointer> texts = new PointerPointer<>(headers.values().toArray(String[]::new));
             PointerPointer<BytePointer> includes = new PointerPointer<>(headers.keySet().toArray(String[]::new))) {
            check(nvrtc.nvrtcCreateProgram(prog, src, name, headers.size(), texts, includes), "nvrtcCreateProgram");
        }
        try {
            List<String> opts = new ArrayList<>(List.of("--gpu-architecture=sm_" + major + minor, "-std=c++17", "-default-device"));
            for (String dir : new String[] {System.getenv("CUDA_HOME"), "/usr/local/cuda"}) {
                if (dir != null && Files.isDirectory(Path.of(dir, "include"))) {
                    opts.add("--include-path=" + Path.of(dir, "include"));
                    break;
                }
            }
            int rc;
            try (PointerPointer<BytePointer> o = new PointerPointer<>(opts.toArray(String[]::new))) {
                rc = nvrtc.nvrtcCompileProgram(prog, opts.size(), o);
            }
            if (rc != nvrtc.NVRTC_SUCCESS) {
                throw new IllegalStateException("NVRTC could not compile the kernels for sm_" + major + minor + " ("
                        + nvrtc.nvrtcGetErrorString(rc).getString() + "):\n" + programLog(prog));
            }
            try (SizeTPointer size = new SizeTPointer(1)) {
                check(nvrtc.nvrtcGetCUBINSize(prog, size), "nvrtcGetCUBINSize");
                byte[] cubin = new byte[(int) size.get()];
                check(nvrtc.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN");
                return cubin;
            }
        } finally {
            nvrtc.nvrtcDestroyProgram(prog);
        }
    }

    private static String programLog(_nvrtcProgram prog) {
        try (SizeTPointer size = new SizeTPointer(1)) {
            if (nvrtc.nvrtcGetProgramLogSize(prog, size) != nvrtc.NVRTC_SUCCESS) {
                return "(no log)";
            }
            byte[] b = new byte[(int) size.get()];
            nvrtc.nvrtcGetProgramLog(prog, b);
            return new String(b, java.nio.charset.StandardCharsets.UTF_8).trim();
        }
    }

    private static void check(int rc, String call) {
        if (rc != nvrtc.NVRTC_SUCCESS) {
            throw new IllegalStateException(call + " failed: " + nvrtc.nvrtcGetErrorString(rc).getString() + " (" + rc + ")");
        }
    }
}
