// Distill4J CUDA emulator: the cuBLASLt calls distill-cuda makes (libcublasLt.so.13), on the CPU. A matmul
// is validated when it is planned and when it is queued (shapes against layouts, types, leading dimensions,
// epilogue pointers, operands inside device allocations) and runs on its stream like any other work, with
// fp32 accumulation. The epilogues follow cuBLASLt's documentation as distill-cuda reads it (MlpProgram's
// HostMlpRunner mirrors the same reading): what only a real GPU can confirm is whether that reading is right.
#include <cuda.h>
#include <library_types.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "emu.h"
#include "include/cuda_bf16.h"

typedef int cublasStatus_t;
enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
};
enum { COMPUTE_32F = 68 };
enum { DESC_COMPUTE_TYPE = 0, DESC_SCALE_TYPE = 1, DESC_POINTER_MODE = 2, DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7,
       DESC_BIAS_POINTER = 8, DESC_AUX_POINTER = 11, DESC_AUX_LD = 12, DESC_BIAS_DATA_TYPE = 26 };
enum { EPI_DEFAULT = 1, EPI_BIAS = 4, EPI_RELU_BIAS = 6, EPI_RELU_AUX_BIAS = 134, EPI_DRELU_BGRAD = 152, EPI_BGRADA = 256 };
enum { PREF_MAX_WORKSPACE_BYTES = 1, PREF_MIN_ALIGNMENT_A = 5, PREF_MIN_ALIGNMENT_D = 8 };
enum { LAYOUT_TYPE = 0, LAYOUT_ORDER = 1, LAYOUT_ROWS = 2, LAYOUT_COLS = 3, LAYOUT_LD = 4, LAYOUT_BATCH_COUNT = 5 };

struct Desc {
    int computeType, scaleType;
    int transA = 0, transB = 0;
    unsigned epilogue = EPI_DEFAULT;
    uint64_t bias = 0, aux = 0;
    int64_t auxLd = 0;
    int biasType = -1;
};
struct Layout {
    int type;
    uint64_t rows, cols;
    int64_t ld;
};
struct Pref {
    uint64_t maxWorkspace = 0;
};
struct Algo {
    uint64_t data[8];
};
struct HeuristicResult {
    Algo algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
};

namespace {

cublasStatus_t bad(const std::string& why, cublasStatus_t rc = CUBLAS_STATUS_INVALID_VALUE) {
    std::fprintf(stderr, "cuda-emu: cuBLASLt: %s\n", why.c_str());
    return rc;
}

// The live handles, matmul descriptors, matrix layouts and preferences (under the emulator's lock): a call given one
// that was destroyed, and a second destroy of one, are refused (CUBLAS_STATUS_INVALID_VALUE, with the reason on
// stderr) instead of reading or freeing freed memory, so a test can check that something was destroyed.
std::set<const void*> handles, descs, layouts, prefs;

bool live(const std::set<const void*>& in, const void* p) {
    return p != nullptr && in.count(p) != 0;
}

cublasStatus_t destroy(std::set<const void*>& in, const void* p, const char* what) {
    if (in.erase(p) == 0) {
        return bad(std::string(what) + " destroyed, but it does not exist (destroyed already?)");
    }
    return CUBLAS_STATUS_SUCCESS;
}

/** "" when the handle, descriptor and layouts of a heuristic query or a matmul are live, else which is not. */
std::string dead(const void* handle, const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dl) {
    if (!live(handles, handle)) return "a cuBLASLt handle that was destroyed";
    if (!live(descs, d)) return "a matmul descriptor that was destroyed";
    for (const Layout* l : {a, b, c, dl}) {
        if (!live(layouts, l)) return "a matrix layout that was destroyed";
    }
    return "";
}

size_t elem(int type) {
    return type == CUDA_R_32F ? 4 : 2;
}

float load(const void* p, int type, uint64_t i) {
    return type == CUDA_R_32F ? ((const float*) p)[i] : __bfloat162float(((const __nv_bfloat16*) p)[i]);
}

void store(void* p, int type, uint64_t i, float x) {
    if (type == CUDA_R_32F) {
        ((float*) p)[i] = x;
    } else {
        ((__nv_bfloat16*) p)[i] = __float2bfloat16_rn(x);
    }
}

struct Problem {
    uint64_t m, n, k;
};

// cuBLASLt's own consistency rules for one matmul; "" when it can run.
std::string check(const Desc& d, const Layout& a, const Layout& b, const Layout& c, const Layout& dl, Problem& p) {
    std::ostringstream o;
    if (d.computeType != COMPUTE_32F || d.scaleType != CUDA_R_32F) {
        o << "compute type " << d.computeType << " / scale type " << d.scaleType << " (the emulator has CUBLAS_COMPUTE_32F with fp32 scale)";
        return o.str();
    }
    if (a.type != b.type || (a.type != CUDA_R_32F && a.type != CUDA_R_16BF)) {
        o << "A and B types " << a.type << ", " << b.type << " (fp32 or bf16, both the same)";
        return o.str();
    }
    if (c.type != dl.type || (dl.type != CUDA_R_32F && !(dl.type == CUDA_R_16BF && a.type == CUDA_R_16BF))) {
        o << "C/D types " << c.type << ", " << dl.type << " for A/B type " << a.type;
        return o.str();
    }
    p.m = dl.rows;
    p.n = dl.cols;
    uint64_t am = d.transA ? a.cols : a.rows;
    p.k = d.transA ? a.rows : a.cols;
    uint64_t bk = d.transB ? b.cols : b.rows;
    uint64_t bn = d.transB ? b.rows : b.cols;
    if (am != p.m || bk != p.k || bn != p.n || c.rows != p.m || c.cols != p.n) {
        o << "shapes disagree: D " << dl.rows << "x" << dl.cols << ", op(A) " << am << "x" << p.k << ", op(B) " << bk << "x" << bn << ", C "
          << c.rows << "x" << c.cols;
        return o.str();
    }
    for (const Layout* l : {&a, &b, &c, &dl}) {
        if (l->ld < (int64_t) l->rows || l->rows == 0 || l->cols == 0) {
            o << "a layout of " << l->rows << "x" << l->cols << " has leading dimension " << l->ld;
            return o.str();
        }
    }
    switch (d.epilogue) {
        case EPI_DEFAULT: break;
        case EPI_BIAS:
        case EPI_RELU_BIAS:
        case EPI_BGRADA:
            break;
        case EPI_RELU_AUX_BIAS:
        case EPI_DRELU_BGRAD:
            if (d.auxLd % 128 != 0 || d.auxLd < (int64_t) p.m) {
                o << "the ReLU bit-mask's leading dimension " << d.auxLd << " must be a multiple of 128 and at least m = " << p.m;
                return o.str();
            }
            break;
        default:
            o << "epilogue " << d.epilogue << " is not emulated";
            return o.str();
    }
    if (d.biasType != -1 && d.biasType != CUDA_R_32F) {
        o << "bias data type " << d.biasType << " (the emulator has fp32)";
        return o.str();
    }
    return "";
}

std::string check_pointers(const Desc& d, const Problem& p, const Layout& a, const Layout& b, const Layout& dl, uint64_t A, uint64_t B,
                           uint64_t D) {
    auto span = [](const Layout& l) { return ((uint64_t) l.ld * (l.cols - 1) + l.rows) * elem(l.type); };
    auto inside = [](const char* what, uint64_t ptr, uint64_t bytes) {
        return emu::device_range(ptr, bytes) ? std::string()
                                             : std::string(what) + ": " + std::to_string(bytes) + " bytes from " + emu::describe(ptr)
                                                       + " do not fit in it";
    };
    std::string e = inside("A", A, span(a));
    if (e.empty()) e = inside("B", B, span(b));
    if (e.empty()) e = inside("D", D, span(dl));
    if (e.empty() && d.epilogue != EPI_DEFAULT) e = inside("the epilogue's bias (m floats)", d.bias, p.m * 4);
    if (e.empty() && (d.epilogue == EPI_RELU_AUX_BIAS || d.epilogue == EPI_DRELU_BGRAD)) {
        e = inside("the epilogue's ReLU bit-mask (auxLd * n bits)", d.aux, (uint64_t) d.auxLd * p.n / 8);
    }
    return e;
}

void gemm(const Desc& d, Problem p, float alpha, float beta, const void* A, Layout a, const void* B, Layout b, const void* C, Layout c,
          void* D, Layout dl) {
    const uint64_t m = p.m, n = p.n, k = p.k;
    std::vector<float> ar(m * k), bc(n * k);  // op(A) row-major, op(B) column-major: each output a contiguous dot
    for (uint64_t i = 0; i < m; i++) {
        for (uint64_t q = 0; q < k; q++) {
            ar[i * k + q] = load(A, a.type, d.transA ? q + i * (uint64_t) a.ld : i + q * (uint64_t) a.ld);
        }
    }
    for (uint64_t j = 0; j < n; j++) {
        for (uint64_t q = 0; q < k; q++) {
            bc[j * k + q] = load(B, b.type, d.transB ? j + q * (uint64_t) b.ld : q + j * (uint64_t) b.ld);
        }
    }
    float* bias = (float*) d.bias;
    uint8_t* aux = (uint8_t*) d.aux;
    std::vector<float> bgrad(d.epilogue == EPI_DRELU_BGRAD ? m : 0, 0.f);
    for (uint64_t j = 0; j < n; j++) {
        const float* bj = &bc[j * k];
        for (uint64_t i = 0; i < m; i++) {
            const float* ai = &ar[i * k];
            float s = 0.f;
#pragma omp simd reduction(+ : s)
            for (uint64_t q = 0; q < k; q++) {
                s += ai[q] * bj[q];
            }
            float x = alpha * s;
            if (beta != 0.f) {
                x += beta * load(C, c.type, i + j * (uint64_t) c.ld);
            }
            uint64_t bit = i + j * (uint64_t) d.auxLd;
            switch (d.epilogue) {
                case EPI_BIAS: x += bias[i]; break;
                case EPI_RELU_BIAS: x = std::fmax(x + bias[i], 0.f); break;
                case EPI_RELU_AUX_BIAS: {
                    x += bias[i];
                    bool on = x > 0.f;
                    aux[bit >> 3] = (uint8_t) ((aux[bit >> 3] & ~(1u << (bit & 7))) | ((on ? 1u : 0u) << (bit & 7)));
                    x = on ? x : 0.f;
                    break;
                }
                case EPI_DRELU_BGRAD: {
                    bool on = (aux[bit >> 3] >> (bit & 7)) & 1u;
                    x = on ? x : 0.f;
                    bgrad[i] += x;
                    break;
                }
                default: break;
            }
            store(D, dl.type, i + j * (uint64_t) dl.ld, x);
        }
    }
    if (d.epilogue == EPI_DRELU_BGRAD) {
        for (uint64_t i = 0; i < m; i++) {
            bias[i] = bgrad[i];
        }
    } else if (d.epilogue == EPI_BGRADA) {  // the bias gradient of A: op(A) summed over k
        for (uint64_t i = 0; i < m; i++) {
            float s = 0.f;
            for (uint64_t q = 0; q < k; q++) {
                s += ar[i * k + q];
            }
            bias[i] = s;
        }
    }
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(void** handle) {
    emu::Guard g;
    *handle = new int(1);
    handles.insert(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(void* handle) {
    emu::Guard g;
    cublasStatus_t rc = destroy(handles, handle, "a cuBLASLt handle");
    if (rc == CUBLAS_STATUS_SUCCESS) {
        delete (int*) handle;
    }
    return rc;
}

const char* cublasLtGetStatusName(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

const char* cublasLtGetStatusString(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument (emulator: see its stderr line)";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute (emulator: see its stderr line)";
        default: return "unknown error";
    }
}

cublasStatus_t cublasLtMatmulDescCreate(Desc** out, int computeType, int scaleType) {
    emu::Guard g;
    Desc* d = new Desc();
    descs.insert(d);
    d->computeType = computeType;
    d->scaleType = scaleType;
    *out = d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(Desc* d) {
    emu::Guard g;
    cublasStatus_t rc = destroy(descs, d, "a matmul descriptor");
    if (rc == CUBLAS_STATUS_SUCCESS) {
        delete d;
    }
    return rc;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(Desc* d, int attr, const void* buf, size_t size) {
    emu::Guard g;
    if (!live(descs, d)) {
        return bad("an attribute set on a matmul descriptor that was destroyed");
    }
    auto need = [&](size_t n) { return size == n; };
    switch (attr) {
        case DESC_TRANSA:
        case DESC_TRANSB: {
            if (!need(4)) break;
            int32_t v;
            std::memcpy(&v, buf, 4);
            if (v != 0 && v != 1) return bad("transpose " + std::to_string(v) + " (N or T)");
            (attr == DESC_TRANSA ? d->transA : d->transB) = v;
            return CUBLAS_STATUS_SUCCESS;
        }
        case DESC_EPILOGUE:
            if (!need(4)) break;
            std::memcpy(&d->epilogue, buf, 4);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_BIAS_POINTER:
            if (!need(8)) break;
            std::memcpy(&d->bias, buf, 8);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_AUX_POINTER:
            if (!need(8)) break;
            std::memcpy(&d->aux, buf, 8);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_AUX_LD:
            if (!need(8)) break;
            std::memcpy(&d->auxLd, buf, 8);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_BIAS_DATA_TYPE:
            if (!need(4)) break;
            std::memcpy(&d->biasType, buf, 4);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_COMPUTE_TYPE:
            if (!need(4)) break;
            std::memcpy(&d->computeType, buf, 4);
            return CUBLAS_STATUS_SUCCESS;
        case DESC_SCALE_TYPE:
            if (!need(4)) break;
            std::memcpy(&d->scaleType, buf, 4);
            return CUBLAS_STATUS_SUCCESS;
        default:
            return bad("matmul descriptor attribute " + std::to_string(attr) + " is not emulated", CUBLAS_STATUS_NOT_SUPPORTED);
    }
    return bad("matmul descriptor attribute " + std::to_string(attr) + " given " + std::to_string(size) + " bytes");
}

cublasStatus_t cublasLtMatrixLayoutCreate(Layout** out, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (type != CUDA_R_32F && type != CUDA_R_16BF) {
        return bad("matrix type " + std::to_string(type) + " is not emulated", CUBLAS_STATUS_NOT_SUPPORTED);
    }
    emu::Guard g;
    *out = new Layout{type, rows, cols, ld};
    layouts.insert(*out);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(Layout* l) {
    emu::Guard g;
    cublasStatus_t rc = destroy(layouts, l, "a matrix layout");
    if (rc == CUBLAS_STATUS_SUCCESS) {
        delete l;
    }
    return rc;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(Pref** out) {
    emu::Guard g;
    *out = new Pref();
    prefs.insert(*out);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(Pref* p) {
    emu::Guard g;
    cublasStatus_t rc = destroy(prefs, p, "a matmul preference");
    if (rc == CUBLAS_STATUS_SUCCESS) {
        delete p;
    }
    return rc;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(Pref* p, int attr, const void* buf, size_t size) {
    emu::Guard g;
    if (!live(prefs, p)) {
        return bad("an attribute set on a matmul preference that was destroyed");
    }
    if (attr == PREF_MAX_WORKSPACE_BYTES && size == 8) {
        std::memcpy(&p->maxWorkspace, buf, 8);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (attr >= PREF_MIN_ALIGNMENT_A && attr <= PREF_MIN_ALIGNMENT_D && size == 4) {
        return CUBLAS_STATUS_SUCCESS;
    }
    return bad("preference attribute " + std::to_string(attr) + " with " + std::to_string(size) + " bytes");
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(void* handle, Desc* d, Layout* a, Layout* b, Layout* c, Layout* dl, Pref* pref, int requested,
                                              HeuristicResult* results, int* returned) {
    emu::Guard g;
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    std::string gone = dead(handle, d, a, b, c, dl);
    if (!gone.empty() || !live(prefs, pref)) {
        return bad("cublasLtMatmulAlgoGetHeuristic given " + (gone.empty() ? std::string("a matmul preference that was destroyed") : gone));
    }
    if (requested < 1) {
        return bad("asked for " + std::to_string(requested) + " algorithms");
    }
    Problem p{};
    std::string why = check(*d, *a, *b, *c, *dl, p);
    if (!why.empty()) {
        return bad("no algorithm: " + why);
    }
    std::memset(&results[0], 0, sizeof(HeuristicResult));
    results[0].algo.data[0] = 0xE5u;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(void* handle, Desc* d, const void* alpha, const void* A, Layout* a, const void* B, Layout* b,
                              const void* beta, const void* C, Layout* c, void* D, Layout* dl, const Algo* algo, void*, size_t,
                              CUstream stream) {
    emu::Guard g;
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    std::string gone = dead(handle, d, a, b, c, dl);
    if (!gone.empty()) {
        return bad("cublasLtMatmul given " + gone);
    }
    if (algo == nullptr || algo->data[0] != 0xE5u) {
        return bad("cublasLtMatmul without an algorithm from cublasLtMatmulAlgoGetHeuristic");
    }
    Problem p{};
    std::string why = check(*d, *a, *b, *c, *dl, p);
    if (why.empty()) {
        why = check_pointers(*d, p, *a, *b, *dl, (uint64_t) A, (uint64_t) B, (uint64_t) D);
    }
    if (!why.empty()) {
        return bad(why);
    }
    float al, be;
    std::memcpy(&al, alpha, 4);
    std::memcpy(&be, beta, 4);
    Desc dc = *d;  // the descriptor's state as of this call
    Layout la = *a, lb = *b, lc = *c, ld = *dl;
    int rc = emu::enqueue(stream, "cublasLtMatmul", [=]() {
        gemm(dc, p, al, be, A, la, B, lb, C, lc, D, ld);
        return std::string();
    });
    return rc == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // extern "C"
