#!/usr/bin/env bash
# Compiles Distill4J's CUDA kernels at build time (Maven runs this in generate-resources):
#   distill_losses.fatbin  SASS for sm_80, sm_86, sm_89, sm_90 and compute_90 PTX (newer GPUs JIT it)
#   kernels.properties     the nvcc version and targets, for the runtime's log and provenance
# and copies the .cu/.cuh sources beside them, so a runtime without a fitting fatbin can compile them with
# the device's own NVRTC. Without nvcc the build goes on (the fatbin is then missing; only NVRTC remains).
# The build never needs a GPU. nvcc: $NVCC, else PATH, else /usr/local/cuda/bin/nvcc.
#   build-kernels.sh OUT_DIR
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build-kernels.sh OUT_DIR}"
mkdir -p "$out"
cp "$src"/*.cu "$src"/*.cuh "$out"/
nvcc="${NVCC:-}"
if [ -z "$nvcc" ]; then
  nvcc="$(command -v nvcc || true)"
fi
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ]; then
  echo "distill-cuda: nvcc not found; building without a fatbin (the runtime will need NVRTC)" >&2
  rm -f "$out/distill_losses.fatbin"
  printf 'nvcc=none\n' > "$out/kernels.properties"
  exit 0
fi
fatbin="$out/distill_losses.fatbin"
if [ -f "$fatbin" ] && [ -z "$(find "$src" -newer "$fatbin" -name '*.cu*' -print -quit)" ]; then
  exit 0  # up to date
fi
targets="sm_80 sm_86 sm_89 sm_90 compute_90"
gencode=()
for a in 80 86 89 90; do
  gencode+=(-gencode "arch=compute_$a,code=sm_$a")
done
gencode+=(-gencode "arch=compute_90,code=compute_90")
"$nvcc" -std=c++17 -O3 --fatbin "${gencode[@]}" -o "$fatbin.tmp" "$src/distill_losses.cu"
mv "$fatbin.tmp" "$fatbin"
version="$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\), V\([0-9.]*\).*/\2/p')"
printf 'nvcc=%s\ntargets=%s\n' "$version" "$targets" > "$out/kernels.properties"
echo "distill-cuda: compiled distill_losses.fatbin with nvcc $version for $targets" >&2
