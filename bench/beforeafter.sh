#!/usr/bin/env bash
# bench/beforeafter.sh: reference models trained with the oneDNN backward
# kernels (the default where they are installed) and without them
# (BNAUDIT_DNNL=off) give the same attack numbers within seed noise
# (issue 14). Trains one small ResNet to near-memorization on 1,000
# Fashion-MNIST images on the standard graphs, then audits it twice with
# --ref-models 4, once each way, and prints every attack's AUC and the
# wall time of each audit. Results under ${OUT:-/tmp/bnaudit-beforeafter}.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH=$lib
out=${OUT:-/tmp/bnaudit-beforeafter}
rm -rf "$out" && mkdir -p "$out"
go build -o "$out/bnaudit" ./cmd/bnaudit
BNAUDIT_DNNL=off "$out/bnaudit" --threads 2 train testdata/models/small_resnet.training.onnx --data testdata/fashion-mnist --max-samples 1000 \
	--norm 0.2860/0.3530 --epochs 8 --batch 64 --optimizer adamw --lr 0.002 --weight-decay 0 --seed 1 -o "$out/target.onnx" -q >/dev/null
for mode in off default; do
	dnnl=""
	[[ $mode == off ]] && dnnl=off
	start=$(date +%s.%N)
	BNAUDIT_DNNL=$dnnl "$out/bnaudit" --threads 2 audit "$out/target.onnx" --members testdata/fashion-mnist --nonmembers testdata/fashion-mnist \
		--nonmembers-split test --max-samples 1000 --norm 0.2860/0.3530 --ref-models 4 --seed 1 -o "$out/audit-$mode" \
		>"$out/audit-$mode.out" 2>"$out/audit-$mode.err"
	echo "$mode: audit took $(echo "$(date +%s.%N) - $start" | bc) s"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
for mode in ("off", "default"):
    r = json.load(open("%s/audit-%s/report.json" % (sys.argv[1], mode)))
    v = r["variants"][0]
    print(mode, " ".join("%s=%.4f" % (a["attack"], a["auc"]["estimate"]) for a in v["attacks"]))
    for n in r.get("notes") or []:
        if "oneDNN" in n:
            print("  note:", n)
PY
