// Runs the store-row unpacking of store_rows.cuh on the CPU, element by element as the unpack_topk_rows
// and unpack_dense_rows kernels do (flat index i over rows x k or rows x V). StoreRowsUnpackTest (JUnit)
// writes raw rows copied from a store (SoftTargetStore.copyRows) and compares the result, bit for bit,
// with the Java reader.
//
//   store_rows_host_test IN OUT
// IN (little endian): int32 mode (0 top-k, 1 dense), rows, k, idBytes, codec, V; int64 rowBytes; raw rows.
// OUT: top-k: int32 ids[rows*k], float32 lps[rows*k], int32 badRow (INT32_MAX when none);
//      dense: float32 out[rows*V].
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "store_rows.cuh"

namespace {

template <typename T>
void read(FILE* f, T* dst, size_t n) {
    if (fread(dst, sizeof(T), n, f) != n) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: store_rows_host_test IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (in == nullptr) {
        perror(argv[1]);
        return 2;
    }
    int32_t hdr[6];
    read(in, hdr, 6);
    int64_t rowBytes;
    read(in, &rowBytes, 1);
    int mode = hdr[0], rows = hdr[1], k = hdr[2], idBytes = hdr[3], codec = hdr[4], V = hdr[5];
    std::vector<unsigned char> raw((size_t) rows * rowBytes);
    read(in, raw.data(), raw.size());
    fclose(in);
    FILE* out = fopen(argv[2], "wb");
    if (out == nullptr) {
        perror(argv[2]);
        return 2;
    }
    if (mode == 0) {
        long long n = (long long) rows * k;
        std::vector<int32_t> ids(n);
        std::vector<float> lps(n);
        int32_t badRow = INT_MAX;
        for (long long i = 0; i < n; i++) {
            long long r = i / k;
            int id;
            float lp;
            int ok = distill::topk_entry(raw.data() + r * rowBytes, (int) (i - r * k), k, idBytes, codec, V, &id, &lp);
            ids[i] = ok ? id : 0;
            lps[i] = lp;
            if (!ok && r < badRow) {
                badRow = (int32_t) r;
            }
        }
        fwrite(ids.data(), 4, n, out);
        fwrite(lps.data(), 4, n, out);
        fwrite(&badRow, 4, 1, out);
    } else {
        long long n = (long long) rows * V;
        std::vector<float> o(n);
        int vb = distill::codec_bytes(codec);
        for (long long i = 0; i < n; i++) {
            long long r = i / V;
            o[i] = distill::store_value(raw.data() + r * rowBytes + (i - r * V) * vb, codec);
        }
        fwrite(o.data(), 4, n, out);
    }
    return fclose(out) == 0 ? 0 : 2;
}
