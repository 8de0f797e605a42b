#!/usr/bin/env bash
# Same seed -> same estimator outputs: trains every method with two lode binaries on the same
# (small) galton datasets, mined by the first, and compares what `lode evaluate` writes.
#   scripts/compare-estimators.sh OLD_LODE NEW_LODE [WORK_DIR]
# One line per estimator (max |old - new| of its outputs), then the cross-loading checks
# (estimators saved by OLD evaluated by NEW) and the estimator.json comparison.
set -euo pipefail
OLD=$(realpath "$1")
NEW=$(realpath "$2")
D=${3:-$(mktemp -d)}
mkdir -p "$D"
cd $D
rm -rf ratio doubly local old new out
$OLD mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n 2000 --seed 4 --out ratio 2>/dev/null
$OLD mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 prior -n 2000 --seed 5 --out doubly 2>/dev/null
$OLD mine galton --for local --theta -0.6 -n 2000 --seed 2 --out local 2>/dev/null
python3 - <<'PY'
import struct
# x = 0..31 as a (32, 1) float64 npy
hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (32, 1), }"
hdr = hdr + ' ' * (64 - 10 - len(hdr) - 1) + '\n'
with open('x.npy', 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + struct.pack('<32d', *range(32)))
PY
mkdir -p old new out
run() {  # name method data extra-train-args -- evaluate-args
  local name=$1 method=$2 data=$3; shift 3
  local targs=() eargs=()
  while [ "$1" != "--" ]; do targs+=("$1"); shift; done; shift
  eargs=("$@")
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    $bin train $method --data $data --out $v/$name --epochs 3 --seed 7 -q "${targs[@]}" 2>/dev/null
    $bin evaluate --model $v/$name --x x.npy --out out/$v-$name.npy "${eargs[@]}" 2>/dev/null
  done
  python3 - "$name" <<'PY'
import struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<H', b[8:10])[0]; d = b[10 + n:]
    return struct.unpack('<%dd' % (len(d) // 8), d)
n = sys.argv[1]
a, b = load('out/old-%s.npy' % n), load('out/new-%s.npy' % n)
print('%-16s %3d values, max |old - new| = %g' % (n, len(a), max(abs(x - y) for x, y in zip(a, b))))
PY
}
for m in carl rolr rascal cascal alice alices; do
  run $m $m ratio -- --theta0 -0.8
  run $m-score $m ratio -- --theta0 -0.8 --score
done
run rascal-doubly rascal doubly -- --theta0 -0.8 --theta1 -0.5
run alices-doubly alices doubly -- --theta0 -0.8 --theta1 -0.5
run carl-ensemble carl ratio --ensemble 3 -- --theta0 -0.8
run sally sally local --
run sallino sallino local --sallino-events 2000 -- --theta0 -0.8
# old estimators load in the new lode: the old directories evaluated by the new binary
for n in rascal alices-doubly sally sallino; do
  eargs=(--theta0 -0.8); [ $n = sally ] && eargs=(); [ $n = alices-doubly ] && eargs+=(--theta1 -0.5)
  $NEW evaluate --model old/$n --x x.npy --out out/cross-$n.npy "${eargs[@]}" 2>/dev/null
  cmp out/cross-$n.npy out/old-$n.npy && echo "old $n evaluated by the new lode: identical file"
done
# estimator.json: identical but for the timings
python3 - <<'PY'
import json, os
same = diff = 0
for n in sorted(os.listdir('old')):
    a, b = (json.load(open('%s/%s/estimator.json' % (v, n))) for v in ('old', 'new'))
    for j in (a, b):
        for m in j['members']:
            m['report'].pop('seconds'); m['report'].pop('samples_per_second')
    if a == b: same += 1
    else: diff += 1; print('estimator.json differs:', n)
print('estimator.json identical but for seconds and samples_per_second: %d of %d' % (same, same + diff))
PY
