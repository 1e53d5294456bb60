#!/usr/bin/env bash
# Reads `go test -bench` output on stdin and prints, for every benchmark
# that has a sibling ".../raw" or ".../baseline" sub-benchmark, the median
# ns/op of each and the throughput ratio baseline_ns / ours_ns (1.00 = as
# fast as the baseline; higher is better). Medians over -count runs damp the
# noise of a shared machine; both sides ran interleaved in the same process.
set -euo pipefail
awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i=2; i<=NF; i++) {
    if ($(i+1)=="ns/op") ns=$i
    if ($(i+1)=="allocs/op") al=$i
  }
  n[name]++; v[name, n[name]]=ns; allocs[name]=al
}
function median(name,   k, m, a, i, j, t) {
  m=n[name]; for (i=1;i<=m;i++) a[i]=v[name,i]
  for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (a[j]<a[i]) {t=a[i];a[i]=a[j];a[j]=t}
  return (m%2) ? a[(m+1)/2] : (a[m/2]+a[m/2+1])/2
}
END {
  printf "| benchmark | ours ns/op | baseline ns/op | ratio (baseline/ours) | ours allocs/op | runs |\n"
  printf "|---|---:|---:|---:|---:|---:|\n"
  for (name in n) {
    base=""
    if (name ~ /\/raw$/ || name ~ /\/baseline$/) continue
    split(name, parts, "/"); last=parts[length(parts)]
    prefix=substr(name, 1, length(name)-length(last))
    if ((prefix "raw") in n) base=prefix "raw"
    else if ((prefix "baseline") in n) base=prefix "baseline"
    if (base=="") continue
    o=median(name); b=median(base)
    rows[name]=sprintf("| %s | %.0f | %.0f | %.2f | %s | %d |", name, o, b, b/o, allocs[name], n[name])
  }
  k=0; for (r in rows) keys[++k]=r
  for (i=1;i<=k;i++) for (j=i+1;j<=k;j++) if (keys[j]<keys[i]) {t=keys[i];keys[i]=keys[j];keys[j]=t}
  for (i=1;i<=k;i++) print rows[keys[i]]
}'
