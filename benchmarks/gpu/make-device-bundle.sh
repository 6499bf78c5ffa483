#!/usr/bin/env bash
# Builds .device/: everything a lent GPU machine needs to run distill-cuda's GPU tests and the GPU suite,
# within the device tool's 64 MiB carry (see ../shared/gpu.md): a jlink'd JRE (from a JDK 17+ here), the
# project jars with the nvcc-built fatbin, the distill-cuda test classes, JavaCPP + its CUDA 13 presets,
# SLF4J and the JUnit console. No ND4J: the GPU path does not need it. Then, on the device:
#   benchmarks/gpu/device-run.sh tests     # JUnit: distill-cuda's tests, GPU ones included
#   benchmarks/gpu/device-run.sh suite     # KdKernelSuite + PyTorch eager, one CSV
# with `carry: [".device"]`. .device/ is git-ignored.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
jdk="${BUNDLE_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
out=.device
rm -rf "$out"
mkdir -p "$out/lib"
# the code the jars are built from, before the build: device-run.sh copies it into every result folder (the lent
# machine gets no .git, and a bundle older than the checkout it travels with must show as such)
{
  echo "bundle commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "bundle built: $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$jdk/bin/java" -version 2>&1 | head -n 1)"
} > "$out/provenance.txt.tmp"
./mvnw -q -B -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl benchmarks -am
# distill-examples for AtomicFiles, which the suites write their CSVs with (nothing else of it loads there)
cp distill-core/target/distill-core-*-SNAPSHOT.jar distill-core/target/distill-core-*-tests.jar \
   distill-cuda/target/distill-cuda-*-SNAPSHOT.jar examples/target/distill-examples.jar benchmarks/target/distill-benchmarks.jar \
   "$out/lib/"
rm -f "$out"/lib/*-sources.jar
cp -r distill-cuda/target/test-classes "$out/cuda-test-classes"
javacpp="$(sed -n 's:.*<javacpp.version>\(.*\)</javacpp.version>.*:\1:p' pom.xml)"
cuda="$(sed -n 's:.*<cuda.presets.version>\(.*\)</cuda.presets.version>.*:\1:p' pom.xml)"
slf4j="$(sed -n 's:.*<slf4j.version>\(.*\)</slf4j.version>.*:\1:p' pom.xml)"
junit="$(sed -n 's:.*<junit.version>\(.*\)</junit.version>.*:\1:p' pom.xml)"
console="1.${junit#5.}"   # junit-jupiter 5.x.y ships with junit-platform 1.x.y
for a in "org.bytedeco:javacpp:$javacpp" "org.bytedeco:javacpp:$javacpp:jar:linux-x86_64" "org.bytedeco:cuda:$cuda" \
         "org.bytedeco:cuda:$cuda:jar:linux-x86_64" "org.slf4j:slf4j-api:$slf4j" "org.slf4j:slf4j-simple:$slf4j" \
         "org.junit.platform:junit-platform-console-standalone:$console"; do
  ./mvnw -q -B dependency:copy -Dartifact="$a" -DoutputDirectory="$out/lib" >/dev/null
done
"$jdk/bin/jlink" --add-modules java.base,java.logging,java.management,java.naming,java.xml,jdk.unsupported \
  --strip-debug --no-header-files --no-man-pages --output "$out/jre"
tar czf "$out/jre.tgz" -C "$out" jre
rm -rf "$out/jre"
mv "$out/provenance.txt.tmp" "$out/provenance.txt"
du -sh "$out" "$out"/jre.tgz "$out"/lib
