#!/usr/bin/env bash
# Regenerate the recorded run, benchmarks/results/, from the reference models:
#   bash benchmarks/record.sh
# MODELS: folder of the three Keras reference models (named after the models, .keras/.h5);
# DATA: the synthetic data set (train/ calibrates full int8, test/ is the labelled folder);
# SET: where the converted model set goes (reused when its manifest already exists).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-/work/artifacts/models}
DATA=${DATA:-/work/artifacts/data}
SET=${SET:-/tmp/hemiface-reference-set}
HEMIFACE=${HEMIFACE:-hemiface}
mapfile -t sources < <(ls "$MODELS"/mobilenetv2_base_model.* "$MODELS"/mobilenetv2_finetuned_model.* \
  "$MODELS"/cnn_stroke_model.* 2>/dev/null | grep -E '\.(keras|h5)$')
if [ ! -f "$SET/hemiface.json" ]; then
  "$HEMIFACE" convert "${sources[@]}" --out "$SET" --calib "$DATA/train" --verify "$DATA/test"
fi
# BENCH_ARGS: extra options, e.g. "--n 50 --min-time 1 --images 200" for a shorter run.
# shellcheck disable=SC2086
"$HEMIFACE" bench --keras "$MODELS" --tflite "$SET" --data "$DATA" --out benchmarks/results \
  ${BENCH_ARGS:-}
