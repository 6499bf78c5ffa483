// Distill4J CUDA emulator: libcublas.so.13 and libnvrtc.so.13 as the JavaCPP bindings need them to load.
// distill-cuda calls nothing in cuBLAS (only cuBLASLt, cublaslt.cpp); NVRTC is only used when the jar has
// no fatbin, and the emulator's kernels do not come from either, so these answer "not supported".
extern "C" {
#ifdef EMU_NVRTC
typedef int nvrtcResult;
const char* nvrtcGetErrorString(nvrtcResult) {
    return "NVRTC is not emulated (the emulator runs the kernels compiled for the CPU)";
}
nvrtcResult nvrtcVersion(int* major, int* minor) {
    *major = 13;
    *minor = 0;
    return 0;
}
#else
int emu_cublas_stub = 0;
#endif
}
