#!/usr/bin/env bash
# Builds Distill4J's CUDA emulator (see README.md here) into OUT_DIR/lib: libcuda.so.1, libcudart.so.13,
# libcublasLt.so.13, libcublas.so.13 and libnvrtc.so.13, which the JavaCPP CUDA bindings load in place of
# NVIDIA's when LD_LIBRARY_PATH names that folder. The kernels are distill-cuda's own .cu sources compiled for
# the CPU. Needs g++ (C++17), an x86-64 Linux machine and the CUDA toolkit's headers (cuda.h,
# cuda_runtime_api.h; $CUDA_HOME, else /usr/local/cuda); without them it says why and builds nothing (exit 0),
# and the GPU tests then skip with the probe's reason as before.
#   build-emu.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cuda_src="$here/../../main/cuda"
out="${1:?usage: build-emu.sh OUT_DIR}"
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
skip() {
  echo "distill-cuda: CUDA emulator not built: $1" >&2
  rm -rf "$out/lib"
  exit 0
}
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || skip "it runs on x86-64 Linux only"
command -v g++ > /dev/null || skip "no g++ on PATH"
command -v readelf > /dev/null && command -v perl > /dev/null || skip "no readelf or perl on PATH (binutils, perl)"
[ -f "$cuda_home/include/cuda.h" ] && [ -f "$cuda_home/include/cuda_runtime_api.h" ] \
  || skip "no CUDA headers under $cuda_home/include (set CUDA_HOME)"
stamp="$out/lib/.built"
if [ -f "$stamp" ] && [ -z "$(find "$here" "$cuda_src" -newer "$stamp" -type f -print -quit)" ]; then
  exit 0  # up to date
fi
rm -rf "$out"
mkdir -p "$out/src" "$out/lib"
# the kernel sources (and the self-test kernels, as selftest_kernels.cu), with `extern __shared__ T name[];` turned
# into a pointer to the block's dynamic shared memory and `__shared__ T name[...];` into EMU_SHARED(T, name, [...])
# (kernel_shim.h: the block's own instance); a declaration of another form fails to compile (kernel_shim.h)
shared_rewrite() {
  sed -E -e 's/extern __shared__ ([A-Za-z_][A-Za-z_0-9 ]*[A-Za-z_0-9]) ([A-Za-z_][A-Za-z_0-9]*)\[\];/\1* \2 = (\1*) ::emu::dyn_shared();/' \
    -e 's/^([[:space:]]*)__shared__ ([A-Za-z_][A-Za-z_0-9:]*( [A-Za-z_][A-Za-z_0-9:]*)*) ([A-Za-z_][A-Za-z_0-9]*)((\[[^]]*\])*);/\1EMU_SHARED(\2, \4, \5);/' \
    "$1" > "$2"
}
for f in "$cuda_src"/*.cu "$cuda_src"/*.cuh; do
  shared_rewrite "$f" "$out/src/$(basename "$f")"
done
shared_rewrite "$here/selftest.cu" "$out/src/selftest_kernels.cu"
# every __global__ function and its __launch_bounds__, from the preprocessed source
cat "$out/src/distill_losses.cu" "$out/src/selftest_kernels.cu" > "$out/src/all_kernels.cu"
g++ -std=c++17 -x c++ -E -P -D__CUDACC__ -I "$here/include" -I "$out/src" "$out/src/all_kernels.cu" \
  | tr '\n' ' ' \
  | perl -ne 'while (/__global__\s+void\s+(?:__launch_bounds__\s*\(\s*((?:[^,()]|\([^()]*\))+?)\s*(?:,(?:[^()]|\([^()]*\))*)?\)\s+)?([A-Za-z_]\w*)\s*\(/g) {
                print "EMU_KERNEL($2, " . (defined $1 ? $1 : "0") . ")\n"; }' > "$out/src/kernels.inc"
count="$(wc -l < "$out/src/kernels.inc")"
[ "$count" -gt 0 ] || { echo "distill-cuda: found no __global__ functions in distill_losses.cu" >&2; exit 1; }
base=(-std=c++17 -O2 -g -fPIC -fno-strict-aliasing -fopenmp-simd -Wall -Wno-unknown-pragmas -Wno-unused-function -I "$here")
flags=("${base[@]}" -I "$cuda_home/include")
# nvcc fuses a * b + c into one multiply-add by default (--fmad=true), and so do the emulated kernels where the CPU
# has FMA: a kernel that needs a product rounded on its own (__fmul_rn) then fails here as it would on a GPU
if grep -qw fma /proc/cpuinfo 2> /dev/null; then
  contract=(-mfma -ffp-contract=fast)
else
  contract=(-ffp-contract=off)
  echo "distill-cuda: this CPU has no FMA, so the emulated kernels do not fuse multiply-adds as nvcc does" >&2
fi
version_script() {  # NAME: a version node, as NVIDIA's libraries define one (the JavaCPP bindings ask for it)
  printf '%s { global: *; };\n' "$1" > "$out/src/$1.map"
  echo "-Wl,--version-script=$out/src/$1.map"
}
# each function and each __shared__ variable's key in a section of its own, so that static_shared.pl can follow
# the relocations from each kernel to the keys it reaches: its static shared memory, as a CUDA module knows it
g++ "${base[@]}" "${contract[@]}" -ffunction-sections -fdata-sections -I "$here/include" -I "$out/src" -include "$here/kernel_shim.h" \
  -c "$here/kernels.cpp" -o "$out/src/kernels.o"
perl "$here/static_shared.pl" "$out/src/kernels.o" "$out/src/kernels.inc" > "$out/src/static_shared.inc"
g++ "${flags[@]}" -c "$here/fiber.cpp" -o "$out/src/fiber.o"
g++ "${flags[@]}" -I "$out/src" -c "$here/driver.cpp" -o "$out/src/driver.o"
g++ -shared -o "$out/lib/libcuda.so.1" -Wl,-soname,libcuda.so.1 "$out/src/driver.o" "$out/src/fiber.o" "$out/src/kernels.o"
g++ "${flags[@]}" -shared -o "$out/lib/libcudart.so.13" -Wl,-soname,libcudart.so.13 $(version_script libcudart.so.13) "$here/cudart.cpp"
g++ "${flags[@]}" -shared -o "$out/lib/libcublasLt.so.13" -Wl,-soname,libcublasLt.so.13 $(version_script libcublasLt.so.13) \
  "$here/cublaslt.cpp" -L "$out/lib" -l:libcuda.so.1
g++ "${flags[@]}" -shared -o "$out/lib/libcublas.so.13" -Wl,-soname,libcublas.so.13 $(version_script libcublas.so.13) "$here/stubs.cpp"
g++ "${flags[@]}" -DEMU_NVRTC -shared -o "$out/lib/libnvrtc.so.13" -Wl,-soname,libnvrtc.so.13 $(version_script libnvrtc.so.13) "$here/stubs.cpp"
touch "$stamp"
echo "distill-cuda: built the CUDA emulator ($count kernels) into $out/lib" >&2
