// Distill4J CUDA emulator: the four runtime calls of distill-cuda's probe (libcudart.so.13), answered from
// the emulated driver, so the probe finds the emulated device the way it finds a real one.
#include <cuda_runtime_api.h>

#include <cstring>

extern "C" {

cudaError_t cudaDriverGetVersion(int* v) {
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
    if (device != 0) {
        return cudaErrorInvalidDevice;
    }
    std::memset(p, 0, sizeof(*p));
    std::strncpy(p->name, "Distill4J CUDA emulator (CPU)", sizeof(p->name) - 1);
    p->major = 9;
    p->minor = 0;
    p->totalGlobalMem = (size_t) 8192 << 20;
    p->multiProcessorCount = 132;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->sharedMemPerBlock = 48 * 1024;
    return cudaSuccess;
}

const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : "emulated CUDA runtime error";
}

}  // extern "C"
