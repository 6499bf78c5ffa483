#!/usr/bin/env bash
# Runs the CPU JMH suite and writes, under benchmarks/results/: cpu-<UTC date>.json (JMH's raw results,
# every iteration), .csv (long format: median, min and max per benchmark and parameters) and .txt (the
# machine, the JDK, the command and JMH's own report). Extra arguments go to JMH, e.g. a benchmark
# name regex:  benchmarks/run-cpu.sh LogitLoss   (RESULTS_NAME=name sets the results' file name)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# before anything is written: the results of a previous run are tracked files this run replaces
commit="$(git describe --always --dirty 2>/dev/null || echo unknown)"
# the build rewrites the examples jar: not under a running ./distill, which holds a shared lock on this file (see distill;
# opened read-only, and without a lock where it cannot be opened or locked)
mkdir -p examples/target 2>/dev/null || true
(
  lock=examples/target/.distill-jar.lock
  [ -e "$lock" ] || : 2>/dev/null >>"$lock" || true
  if command -v flock >/dev/null 2>&1 && { exec 9<"$lock"; } 2>/dev/null; then
    rc=0
    flock -E 75 -x -n 9 2>/dev/null || rc=$?
    if [ "$rc" -eq 75 ]; then
      echo "run-cpu.sh: another distill is running from the examples jar (or building it), which this build rewrites;" \
        "run this again when it has finished" >&2
      exit 2
    fi
  fi
  ./mvnw -B -q -pl benchmarks -am package -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true
)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
out="benchmarks/results/${RESULTS_NAME:-cpu-$(date -u +%Y-%m-%d)}"
{
  echo "command: ${RESULTS_NAME:+RESULTS_NAME=$RESULTS_NAME }OMP_NUM_THREADS=$OMP_NUM_THREADS benchmarks/run-cpu.sh $*"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(getconf _NPROCESSORS_ONLN) cores (online)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "java: $("$java" -version 2>&1 | head -n 1)"
  echo "git: $commit"
  echo
  "$java" -jar benchmarks/target/distill-benchmarks.jar -rf json -rff "$out.json" "$@"
} 2>&1 | tee "$out.txt"
"$java" -cp benchmarks/target/distill-benchmarks.jar org.distill4j.benchmarks.ResultsSummary "$out.json" "$out.csv"
echo "medians: $out.csv"
cat "$out.csv"
