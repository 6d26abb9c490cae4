#!/usr/bin/env bash
# twin bench train on a small shape: the matmul peak and all three modes report positive
# tokens/s, a peak RSS, and an MFU; LoRA trains fewer values than full fine-tuning and the
# Q4_0 base takes less memory than the F32 one.
set -euo pipefail
out=$("$TWIN_BIN" bench train --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --ctx 32 \
    --steps 1 --threads 1)
echo "$out"
echo "$out" | grep -Eq 'matmul peak .*: [0-9.]+ GFLOP/s' || { echo "no peak"; exit 1; }
row() { echo "$out" | grep "^$1"; }
for m in "lora r=16 f32" "lora r=16 q4_0" "full f32"; do
    row "$m" | awk '{ if (!($(NF-2) > 0 && $(NF-1) > 0 && $NF ~ /%$/)) exit 1 }' ||
        { echo "bad row for $m"; exit 1; }
done
lora_train=$(row "lora r=16 f32" | awk '{ print $(NF-3) }' | tr -d M)
full_train=$(row "full f32" | awk '{ print $(NF-3) }' | tr -d M)
awk -v a="$lora_train" -v b="$full_train" 'BEGIN { exit !(a < b / 5) }' || { echo "trainable"; exit 1; }
f32_mb=$(row "lora r=16 f32" | awk '{ print $(NF-1) }')
q4_mb=$(row "lora r=16 q4_0" | awk '{ print $(NF-1) }')
awk -v a="$q4_mb" -v b="$f32_mb" 'BEGIN { exit !(a <= b) }' || { echo "q4_0 memory"; exit 1; }
