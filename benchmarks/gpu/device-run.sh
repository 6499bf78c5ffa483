#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, with .device/ carried (make-device-bundle.sh):
#   device-run.sh tests   distill-cuda's JUnit tests (GPU ones included) -> $OUT/junit/, summary printed
#   device-run.sh suite [KdKernelSuite options]   the GPU suite + PyTorch eager -> $OUT/kd-suite.csv, and its
#                         summary (kd_summary.py: issue #5's goal for the default fused, fastest variant per shape) -> $OUT/kd-summary.md
#   device-run.sh host [HostPathSuite options]   kd over host float[] batches through CudaBackend (pinned staging)
#                         and CpuBackend on every core -> $OUT/host-path.csv
#   device-run.sh mlp [--batch 128,1024,8192] [--iters 50] [--warmup 10]
#                         the whole-step benchmark: MlpStepSuite + torch_mlp_step.py -> $OUT/mlp-step.csv
#   device-run.sh all     tests, then suite --iters 40 (SUITE_ARGS; default: the methods fused, fused-rowwise,
#                         two-pass and unfused, and PyTorch eager), then a sweep (SWEEP_ARGS; default: bf16 at V 128256 and
#                         152064 over cluster sizes 3-8, one and two blocks per SM, load balancing), each under
#                         the time left before DEADLINE_S (default 570 s; TESTS_S and SUITE_S cap the first two,
#                         the sweep leaves HOST_S, default 60, for host, which runs last) -> $OUT/tests/, $OUT/suite/,
#                         $OUT/sweep/, $OUT/host/ with each stage's output in <stage>.txt; exits 1 when a stage
#                         exited non-zero (failed, recorded failed rows or timed out), after the others ran
#   device-run.sh profile [KdKernelSuite options]
#                         Nsight Compute (ncu, where the machine has it) on each kd_tile launch of a short suite
#                         run (default: rows 4096, V 32000 and 128256, f32 and bf16, fused and fused-rowwise,
#                         one launch each): throughput, memory, warp stall reasons, occupancy
#                         -> $OUT/kd-tile-ncu.txt (and the .ncu-rep report); ncu's clocks and cache flushes
#                         make its times unlike the suite's
# Finds the CUDA 13 libraries (toolkit or Python nvidia-* packages) for JavaCPP, and prints what it used.
# suite, host and mlp also write <result>-provenance.txt beside their CSV: the bundle's commit (recorded by
# make-device-bundle.sh), the command, the date, the GPU and driver, java and torch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/device-out}"
mkdir -p "$out"
bundle="$root/.device"
# the JRE unpacks outside .device, so the carried folder stays within the device tool's 64 MiB
jre_home="${TMPDIR:-/tmp}/distill-device-jre"
if [ ! -x "$jre_home/jre/bin/java" ] || [ "$bundle/jre.tgz" -nt "$jre_home/jre/bin/java" ]; then
  rm -rf "$jre_home"
  mkdir -p "$jre_home"
  tar xzf "$bundle/jre.tgz" -C "$jre_home"
  touch "$jre_home/jre/bin/java"
fi
java="$jre_home/jre/bin/java"
libdirs=""
nvidia_py="$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)"
for lib in libcudart.so.13 libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13; do
  p="$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}' || true)"
  if [ -z "$p" ]; then
    for cand in /usr/local/cuda*/lib64/"$lib" /usr/local/cuda*/lib/"$lib" /usr/local/cuda*/targets/*/lib/"$lib" \
                ${nvidia_py:+"$nvidia_py"/*/lib/"$lib"}; do
      if [ -e "$cand" ]; then
        p="$cand"
        break
      fi
    done
  fi
  if [ -n "$p" ]; then
    d="$(dirname "$p")"
    case ":$libdirs:${LD_LIBRARY_PATH:-}:" in
      *":$d:"*) ;;  # there already (or set by the call of `all` that runs this one)
      *) libdirs="$libdirs:$d" ;;
    esac
  else
    echo "device-run: $lib not found (ldconfig, /usr/local/cuda*, python nvidia-* packages)" >&2
  fi
done
libdirs="${libdirs#:}"
export LD_LIBRARY_PATH="${libdirs}${libdirs:+${LD_LIBRARY_PATH:+:}}${LD_LIBRARY_PATH:-}"
echo "java: $("$java" -version 2>&1 | head -n 1); LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
flags=(--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -Xss4m)
cat "$bundle/provenance.txt" 2>/dev/null || echo "bundle commit: unknown (no $bundle/provenance.txt: rebuild with make-device-bundle.sh)"
command_line="benchmarks/gpu/device-run.sh $*"
provenance() {  # file: what a result was made from and on, written beside it
  {
    cat "$bundle/provenance.txt" 2>/dev/null || echo "bundle commit: unknown (no $bundle/provenance.txt)"
    echo "command: $command_line"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: not found')"
    echo "java: $("$java" -version 2>&1 | head -n 1)"
    echo "torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo 'not importable')"
  } > "$1"
}
case "${1:-}" in
  tests)
    cd distill-cuda
    "$java" "${flags[@]}" -jar "$bundle"/lib/junit-platform-console-standalone-*.jar execute \
      --class-path "$bundle/cuda-test-classes:$(ls "$bundle"/lib/*.jar | grep -v console-standalone | tr '\n' ':')" \
      --select-package org.distill4j.cuda --reports-dir "$out/junit" --details summary --disable-banner 2>&1 | tail -n 40
    ;;
  suite)
    shift
    csv="$out/kd-suite.csv"
    rm -f "$csv"
    provenance "$out/kd-suite-provenance.txt"
    # a suite that recorded failed rows (or stopped) exits non-zero: PyTorch and the summary still run on what it
    # wrote, and this stage then exits 1
    rc=0
    "$java" "${flags[@]}" -cp "$bundle/lib/*" org.distill4j.benchmarks.gpu.KdKernelSuite --out "$csv" "$@" \
      | tee "$out/kd-suite.txt" || { rc=1; echo "device-run: KdKernelSuite failed or recorded failed rows (see above)"; }
    copy="$(awk -F, '$1 == "copy" {print $8}' "$csv" 2> /dev/null || true)"
    if [ -n "$copy" ]; then
      python3 benchmarks/gpu/torch_kd.py --out "$csv" --copy-gbps "$copy" "$@" \
        || { rc=1; echo "device-run: torch_kd.py failed or recorded failed rows (see above)"; }
    else
      rc=1
      echo "device-run: no copy bandwidth in $csv (the suite stopped before measuring it): PyTorch eager not run" >&2
    fi
    if [ -f "$csv" ]; then
      if command -v column > /dev/null; then column -s, -t < "$csv"; else cat "$csv"; fi
      python3 benchmarks/gpu/kd_summary.py "$csv" | tee "$out/kd-summary.md" || { rc=1; echo "kd_summary.py failed (see above)"; }
    fi
    exit "$rc"
    ;;
  host)
    shift
    provenance "$out/host-path-provenance.txt"
    "$java" "${flags[@]}" -cp "$bundle/lib/*" org.distill4j.benchmarks.gpu.HostPathSuite --out "$out/host-path.csv" "$@"
    ;;
  mlp)
    shift
    csv="$out/mlp-step.csv"
    rm -f "$csv"
    provenance "$out/mlp-step-provenance.txt"
    rc=0  # as in suite: PyTorch still runs after a failed suite, and the stage exits 1
    "$java" "${flags[@]}" -cp "$bundle/lib/*" org.distill4j.benchmarks.gpu.MlpStepSuite --out "$csv" "$@" \
      || { rc=1; echo "device-run: MlpStepSuite failed or recorded failed configurations (see above)"; }
    python3 benchmarks/gpu/torch_mlp_step.py --out "$csv" "$@" || { rc=1; echo "torch_mlp_step.py failed (see above)"; }
    exit "$rc"
    ;;
  profile)
    shift
    ncu="$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -n 1 || true)"
    if [ -z "$ncu" ]; then
      echo "device-run: ncu (Nsight Compute) not found on PATH, in /usr/local/cuda*/bin or /opt/nvidia/nsight-compute" >&2
      exit 3
    fi
    "$ncu" --version | tail -n 1
    if [ "$#" -eq 0 ]; then
      set -- --rows 4096 --vocab 32000,128256 --dtype f32,bf16 --methods fused,fused-rowwise
    fi
    report="$out/kd-tile"
    rm -f "$report.ncu-rep"
    "$ncu" --target-processes all --kernel-name regex:kd_tile --launch-count 16 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
      --section LaunchStats --section SchedulerStats -o "$report" \
      "$java" "${flags[@]}" -cp "$bundle/lib/*" org.distill4j.benchmarks.gpu.KdKernelSuite --out "$out/kd-profile-suite.csv" \
      --iters 1 --warmup 0 "$@"
    "$ncu" -i "$report.ncu-rep" --page details > "$out/kd-tile-ncu.txt"
    grep -E "kd_tile|Memory Throughput|DRAM Throughput|Duration|Achieved Occupancy|Registers Per|Stall|One or More" \
      "$out/kd-tile-ncu.txt" | head -n 120
    ;;
  all)
    # one call for a whole GPU session: the tests, the default suite and a sweep, each stage under the time
    # left before the deadline (a stage with less than 30 s left is skipped, and says so), each in its own
    # folder under $OUT with its full output in <stage>.txt
    # the call exits 1 when a stage exited non-zero (failed, recorded failed rows, or timed out), after all of them ran
    deadline=$(( $(date +%s) + ${DEADLINE_S:-570} ))
    failed_stages=""
    sweep_args=(${SWEEP_ARGS:---vocab 128256,152064 --dtype bf16 --methods fused,tile-c4-2bps,tile-c5-2bps,tile-c6-2bps,tile-c8-2bps,tile-c3-1bps-staged,tile-c4-1bps-staged,tile-c5-1bps-staged,tile-c6-1bps-staged,tile-c4-2bps-lb,tile-c8-2bps-lb})
    run_stage() {  # name, most seconds, seconds to leave for the stages after it, device-run.sh arguments...
      local name="$1" most="$2" reserve="$3"
      shift 3
      local left=$(( deadline - $(date +%s) - reserve ))
      if [ "$left" -lt 30 ]; then
        echo "== $name: skipped, $left s left before the deadline (less what later stages keep)"
        return 0
      fi
      local limit=$(( most < left ? most : left ))
      echo "== $name: device-run.sh $* (at most $limit s)"
      mkdir -p "$out/$name"
      local rc=0
      OUT="$out/$name" timeout "$limit" bash "$0" "$@" > "$out/$name/$name.txt" 2>&1 || rc=$?
      echo "== $name: exit $rc$([ "$rc" -eq 124 ] && echo ' (timed out)')"
      tail -n "${TAIL_LINES:-30}" "$out/$name/$name.txt"
      if [ "$rc" -ne 0 ]; then
        failed_stages="$failed_stages $name"
      fi
    }
    # in order of what the issue needs: the tests and the suite, then the sweep (leaving HOST_S for host), then host
    run_stage tests "${TESTS_S:-240}" 0 tests
    run_stage suite "${SUITE_S:-220}" 0 suite --iters 40 ${SUITE_ARGS:---methods fused,fused-rowwise,two-pass,unfused}
    run_stage sweep 100000 "${HOST_S:-60}" suite "${sweep_args[@]}"
    run_stage host "${HOST_S:-60}" 0 host
    if [ -n "$failed_stages" ]; then
      echo "device-run all: stages that failed:$failed_stages (see each stage's <stage>.txt)"
      exit 1
    fi
    ;;
  *)
    echo "usage: device-run.sh tests | suite [options] | host [options] | mlp [options] | profile [options] | all" >&2
    exit 2
    ;;
esac
