#!/usr/bin/env bash
# Counts the SASS instructions the tiled KD kernels spend per element pair (one student and one teacher logit)
# in their hot loops (tile_sass.cu's pass-1 and pass-2 loops), and in a row's exchange (tile_exchange, for
# clusters of 1, 2 and 8 blocks: every instruction of the function, each path once), compiled by nvcc for sm_90
# (or $ARCH) and read back with cuobjdump ($CUOBJDUMP, else PATH, else /usr/local/cuda/bin). Needs no GPU; the CUDA toolkit's nvcc
# and cuobjdump (a lent device has both; this project's build machines have nvcc only).
#   benchmarks/gpu/tile-sass.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
arch="${ARCH:-sm_90}"
cuobjdump="${CUOBJDUMP:-$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)}"
if [ ! -x "$cuobjdump" ]; then
  echo "tile-sass: cuobjdump not found (\$CUOBJDUMP, PATH, /usr/local/cuda/bin)" >&2
  exit 3
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nvcc -std=c++17 -O3 -cubin -arch="$arch" -o "$work/tile.cubin" "$here/tile_sass.cu"
"$cuobjdump" -sass "$work/tile.cubin" > "$work/tile.sass"
python3 - "$work/tile.sass" "$arch" <<'PY'
import re, sys
text = open(sys.argv[1]).read()


def functions(pattern):
    """(name match, [(address, instruction)]) of each function whose mangled name matches pattern."""
    for block in text.split("Function : ")[1:]:
        m = re.match(pattern, block.split("\n", 1)[0].strip())
        if m:
            yield m, [(int(a, 16), op.strip()) for a, op in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", block)]


print(f"| loop ({sys.argv[2]}) | instructions an iteration | element pairs an iteration | per element pair | MUFU per pair |")
print("| --- | --- | --- | --- | --- |")
for m, ins in functions(r"_Z10tile_pass([12])I(f|13__nv_bfloat16)"):
    at = {a: i for i, (a, _) in enumerate(ins)}
    loops = []
    for i, (a, op) in enumerate(ins):  # a loop: a branch back to an earlier instruction
        b = re.search(r"BRA\s+.*?0x([0-9a-f]+)", op)
        if b and int(b.group(1), 16) < a and int(b.group(1), 16) in at:
            loops.append(ins[at[int(b.group(1), 16)]:i + 1])
    body = max(loops, key=len)
    ops = [op for _, op in body]
    words = sum(1 for op in ops if "LDG.E.128" in op) // 2  # one 16-byte word of s and one of t
    pairs = words * (4 if m.group(2) == "f" else 8)
    mufu = sum(1 for op in ops if "MUFU" in op)
    dtype = "f32" if m.group(2) == "f" else "bf16"
    print(f"| {dtype} pass {m.group(1)} | {len(ops)} | {pairs} | {len(ops) / pairs:.1f} | {mufu / pairs:.2f} |")
print()
print(f"| a row's exchange ({sys.argv[2]}) | instructions | shuffles | MUFU | BAR.SYNC, UCGABAR_ARV in the code |")
print("| --- | --- | --- | --- | --- |")
for m, ins in functions(r"_Z15tile_exchange_cILi([0-9]+)E"):
    ops = [op for _, op in ins if not re.match(r"(@\S+\s+)?(NOP|EXIT|BRA\s+0x[0-9a-f]+\s*$)", op)]
    count = lambda key: sum(1 for op in ops if re.search(key, op))
    shfl, mufu, bar, cbar = count("SHFL"), count("MUFU"), count(r"^(@\S+\s+)?BAR\.SYNC"), count("UCGABAR_ARV")
    print(f"| C = {m.group(1)} | {len(ops)} | {shfl} | {mufu} | {bar}, {cbar} |")
PY
