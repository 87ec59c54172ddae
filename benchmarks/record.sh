#!/usr/bin/env bash
# Regenerate the recorded run, benchmarks/results/, from the reference models:
#   bash benchmarks/record.sh
# MODELS: folder of the three Keras reference models (named after the models, .keras/.h5);
# DATA: the synthetic data set (train/ calibrates full int8, test/ is the labelled folder);
# SET: where the converted model set goes (reused when its manifest already exists).
set -euo pipefail
cd "$(dirname "$0")/.."
# With none given: the reference models this repository ships (reference/), and under $WORK
# the synthetic data (hemiface synth, 3000 faces, seed 0, as the demo draws) and the set.
WORK=${WORK:-/tmp/hemiface-reference}
if [ -z "${MODELS:-}" ] && [ -f reference/cnn_stroke_model.keras ]; then
  MODELS=reference
fi
MODELS=${MODELS:-$WORK/models}
DATA=${DATA:-$WORK/data}
SET=${SET:-$WORK/set}
HEMIFACE=${HEMIFACE:-hemiface}
PYTHON=${PYTHON:-python3}
if [ ! -f "$DATA/labels.csv" ]; then
  "$HEMIFACE" synth "$DATA" --count 3000 --seed 0
fi
if [ ! -f "$MODELS/cnn_stroke_model.keras" ]; then
  "$HEMIFACE" train "$DATA" --out "$MODELS"
fi
mapfile -t sources < <(ls "$MODELS"/mobilenetv2_base_model.* "$MODELS"/mobilenetv2_finetuned_model.* \
  "$MODELS"/cnn_stroke_model.* 2>/dev/null | grep -E '\.(keras|h5)$')
if [ ! -f "$SET/hemiface.json" ]; then
  "$HEMIFACE" convert "${sources[@]}" --out "$SET" --calib "$DATA/train" --verify "$DATA/test"
fi
# BENCH_ARGS: extra options, e.g. "--n 50 --min-time 1 --images 200" for a shorter run.
# shellcheck disable=SC2086
# Every section, and the two studies: Haar against BlazeFace (detectors) and full int8 with
# int8 against uint8 input/output (int8-io: converts the models twice, calibrated on train/).
"$HEMIFACE" bench --keras "$MODELS" --tflite "$SET" --data "$DATA" --out benchmarks/results \
  --only latency,set,agreement,pipeline,detectors,int8-io ${BENCH_ARGS:-}
# The README's marked figures from the new results.json.
"$PYTHON" tools/readme_figures.py
