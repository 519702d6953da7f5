#!/bin/bash
# report.sh RUNS.csv OUTDIR -- turn the benchmarks' rows (bench/bench_util.h)
# into the results: the table on stdout (each figure's medians, its ratio,
# its target and whether it holds), OUTDIR/summary.csv, OUTDIR/systems.csv
# (median peak RSS and bytes on disk of every system of every figure) and,
# when gnuplot is installed, OUTDIR/chart.png (each ratio against its target).
# Exits 0 whether or not targets hold: the table says which.
set -euo pipefail
runs=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

# Medians per figure and system: value, peak RSS, disk.
medians() {
  awk -F, '{ k = $1 "," $2; n[k]++; v[k, n[k]] = $4; r[k, n[k]] = $6; d[k, n[k]] = $7;
             u[k] = $5; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
    function med(a, k, c,   i, j, t, x) {
      for (i = 1; i <= c; i++) x[i] = a[k, i] + 0
      for (i = 2; i <= c; i++) { t = x[i]; for (j = i - 1; j >= 1 && x[j] > t; j--) x[j + 1] = x[j]; x[j + 1] = t }
      return c % 2 ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
    }
    END { for (i = 1; i <= m; i++) { k = order[i]
            printf "%s,%s,%.6g,%.0f,%.0f,%d\n", k, u[k], med(v, k, n[k]), med(r, k, n[k]), med(d, k, n[k]), n[k] } }' "$1"
}
medians "$runs" > "$out/systems.csv.tmp"
{ echo "figure,system,unit,median,peak_rss_kib,disk_bytes,runs"; cat "$out/systems.csv.tmp"; } > "$out/systems.csv"

# One line per target: figure,label,system value,baseline value,ratio,target,kind,met
awk -F, -v OFS=, '
  NR == FNR { med[$1 "," $2] = $4; unit[$1 "," $2] = $3; next }
  /^#/ || NF < 6 { next }
  { f = $1; a = f "," $2; b = f "," $3
    if (!(a in med)) next
    va = med[a]; vb = (b in med) ? med[b] : ""; rate = unit[a] != "s"
    if ($4 == "speedup") { if (vb == "") next; ratio = rate ? va / vb : vb / va; met = ratio >= $5 }
    else if ($4 == "cost") { if (vb == "") next; ratio = va / vb; met = ratio <= $5 }
    else if ($4 == "value") { ratio = va; met = ratio >= $5 }
    else if ($4 == "max") { ratio = va; met = ratio <= $5 }
    else { if (vb == "") next; ratio = rate ? va / vb : vb / va; met = -1 }
    print f, $6, $2, va " " unit[a], $3, (vb == "" ? "" : vb " " unit[b]), sprintf("%.3g", ratio), $4, $5,
          (met < 0 ? "-" : met ? "yes" : "NO")
  }' "$out/systems.csv.tmp" "$here/targets.csv" > "$out/summary.csv.tmp"
{ echo "figure,label,system,value,baseline,baseline_value,ratio,kind,target,met"; cat "$out/summary.csv.tmp"; } > "$out/summary.csv"

awk -F, '
  function tgt(kind, t) {
    if (kind == "speedup") return ">= " t "x"
    if (kind == "cost") return "<= " t "x"
    if (kind == "value") return ">= " t
    if (kind == "max") return "<= " t
    return ""
  }
  BEGIN { printf "%-44s %-22s %-22s %9s %10s %4s\n", "figure", "bitcask", "baseline", "ratio", "target", "met" }
  { base = $5 == "" ? "" : $5 " " $6
    printf "%-44s %-22s %-22s %9s %10s %4s\n", $2, $4, substr(base, 1, 22), $7, tgt($8, $9), $10 }' \
  "$out/summary.csv.tmp"
met=$(awk -F, '$10 == "yes"' "$out/summary.csv.tmp" | wc -l)
all=$(awk -F, '$10 != "-"' "$out/summary.csv.tmp" | wc -l)
echo "targets met: $met of $all"
echo
echo "peak RSS and disk, medians per system:"
awk -F, '$1 !~ /^eng_keydir_(k[0-9]+|worst)$/ { printf "  %-18s %-10s rss %8.1f MiB  disk %9.1f MiB\n", $1, $2, $5 / 1024, $6 / 1048576 }' "$out/systems.csv.tmp"

# The keydir's memory by key length (bench_engine's eng_keydir_k<L> rows):
# bytes per key beyond the key, as keydir_bytes says and as the process's
# RSS grew, without and with the ordered index, after the inserts (write
# path) and after reopening the merged store (hint-file load path); also
# written to OUTDIR/keydir.csv.
if grep -q '^eng_keydir_k[0-9]*,' "$runs"; then
  awk -F, -v OFS=, '$1 ~ /^eng_keydir_k[0-9]+$/ { L = substr($1, 13) + 0; v[L, $2] = $4
      if (!(L in seen)) { seen[L] = 1; order[++m] = L } }
    END { print "klen,put,put_ordered,put_rss,put_rss_ordered,open,open_ordered,open_rss,open_rss_ordered"
          for (i = 1; i <= m; i++) { L = order[i]
            print L, v[L, "put"], v[L, "put_ordered"], v[L, "put_rss"], v[L, "put_rss_ordered"],
                  v[L, "open"], v[L, "open_ordered"], v[L, "open_rss"], v[L, "open_rss_ordered"] } }' \
    "$runs" > "$out/keydir.csv"
  echo
  echo "keydir bytes per key beyond the key, by key length (keydir_bytes; RSS growth; +index: ordered index built):"
  awk -F, 'NR == 1 { next }
    NR == 2 { printf "  %5s | %8s %8s %8s %8s | %8s %8s %8s %8s\n", "klen", "put", "+index", "rss", "+index",
              "open", "+index", "rss", "+index" }
    { printf "  %5s | %8.1f %8.1f %8.1f %8.1f | %8.1f %8.1f %8.1f %8.1f\n", $1 ($1 < 4 ? "*" : ""),
             $2, $3, $4, $5, $6, $7, $8, $9 }
    END { print "  (* fewer keys: a key of k bytes has at most 256^k values)" }' "$out/keydir.csv"
fi

if command -v gnuplot > /dev/null; then
  # Ratio / target: above 1 the target holds (costs and maxima inverted).
  awk -F, -v OFS='\t' '$10 != "-" { s = ($8 == "cost" || $8 == "max") ? $9 / $7 : $7 / $9
      gsub(/ /, "_", $1); print $1, s }' "$out/summary.csv.tmp" > "$out/chart.dat"
  gnuplot <<GP
set terminal pngcairo size 1100,600 font ",10"
set output "$out/chart.png"
set title "bitcask-sqlite: measured / target (above 1: target met)"
set style data histogram
set style fill solid 0.8
set boxwidth 0.7
set logscale y 2
set yrange [0.0625:64]
set xtics rotate by -40 noenhanced
set grid ytics
unset key
plot "$out/chart.dat" using 2:xtic(1) lc rgb "#3b7dd8", 1 with lines lc rgb "#d83b3b" lw 2
GP
  echo "chart: $out/chart.png"
fi
rm -f "$out/systems.csv.tmp" "$out/summary.csv.tmp"
