#!/usr/bin/env bash
# bench/peers/setup_tf.sh - a separate virtualenv with TensorFlow (CPU) and TensorFlow
# Recommenders for bench/peers/compare_tfrs.py, outside the repository at
#   ${RECO_TF_VENV:-$HOME/.cache/reco/tf-venv}
# TFRS needs Keras 2: tf_keras comes with it, and the comparison sets TF_USE_LEGACY_KERAS=1.
# Kept apart from the peers venv because TensorFlow pins its own numpy.
set -euo pipefail
venv="${RECO_TF_VENV:-$HOME/.cache/reco/tf-venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q tensorflow-cpu tensorflow-recommenders tf_keras numpy pandas
TF_USE_LEGACY_KERAS=1 "$venv/bin/python" -c "import tensorflow as tf, tensorflow_recommenders as tfrs; print('tensorflow', tf.__version__, 'tfrs', tfrs.__version__)"
