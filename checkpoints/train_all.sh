#!/usr/bin/env bash
# Trains the shipped checkpoints with the project's own CLI, on the full training sets.
# Two queues run side by side, one CPU thread each (small models use two cores better this way).
# Usage: VAEVIZ_DATA_DIR=../shared/data bash checkpoints/train_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VAEVIZ=${VAEVIZ:-.venv/bin/vaeviz}
run() { OMP_NUM_THREADS=1 "$VAEVIZ" train --quiet --lr-schedule cosine --out "checkpoints/$1.safetensors" "${@:2}"; }
(
  # a KL warm-up (10 epochs) keeps all 16 latent units active, and a (bias-corrected) moving average
  # of the weights smooths the last steps
  run mnist-vae-conv-16 --model vae --arch conv --latent-dim 16 --epochs 110 --lr 1.5e-3 --kl-warmup 10 --ema 0.999
  run mnist-ae-conv-16  --model ae  --arch conv --latent-dim 16 --epochs 30
  # the judge: an MNIST classifier the interpolation views use to say which digit each frame shows
  OMP_NUM_THREADS=1 "$VAEVIZ" train-judge --out checkpoints/judge/mnist-classifier.safetensors
) > /tmp/train_queue_a.log 2>&1 &
(
  run mnist-vae-mlp-16  --model vae --arch mlp --latent-dim 16 --epochs 150
  run mnist-ae-mlp-16   --model ae  --arch mlp --latent-dim 16 --epochs 50
  run mnist-vae-mlp-2   --model vae --arch mlp --latent-dim 2  --epochs 50
  run mnist-ae-mlp-2    --model ae  --arch mlp --latent-dim 2  --epochs 50
  run fashion-mnist-vae-mlp-16 --model vae --arch mlp --latent-dim 16 --epochs 50 --dataset fashion-mnist
  # the lecture's beta sweep: the same network as mnist-vae-mlp-16, 50 epochs each
  run mnist-vae-mlp-16-beta0   --model vae --arch mlp --latent-dim 16 --beta 0   --epochs 50
  run mnist-vae-mlp-16-beta0p1 --model vae --arch mlp --latent-dim 16 --beta 0.1 --epochs 50
  run mnist-vae-mlp-16-beta4   --model vae --arch mlp --latent-dim 16 --beta 4   --epochs 50
  run mnist-vae-mlp-16-beta10  --model vae --arch mlp --latent-dim 16 --beta 10  --epochs 50
  # the notes' toy: 2-D points near a circle, a VAE with a 1-D code and a Gaussian decoder
  run circle-vae-mlp-1 --model vae --dataset circle --latent-dim 1 --sigma 0.05 --epochs 100
  # PCA, the linear autoencoder, in closed form (one "epoch": the fit)
  run mnist-pca-2  --model pca --latent-dim 2  --epochs 1
  run mnist-pca-16 --model pca --latent-dim 16 --epochs 1
  # probabilistic PCA: Tipping & Bishop's closed-form maximum likelihood
  run mnist-ppca-16 --model ppca --latent-dim 16 --epochs 1
  # the autoencoder variants of the notes' exercises (weights chosen so each meets its bar in checkpoints/README.md)
  run mnist-dae-mlp-16 --model dae --arch mlp --latent-dim 16 --noise 0.3 --epochs 50
  run mnist-cae-mlp-16 --model cae --arch mlp --latent-dim 16 --contraction 0.002 --epochs 30
  run mnist-sae-mlp-64 --model sae --arch mlp --latent-dim 64 --sparsity 0.52 --epochs 60
  # two stochastic layers (top 16, bottom 32), top-down inference, hidden widths 320 and 160 (the widest that
  # stays under 3 MB); the longest run here (about 25 min)
  run mnist-hvae-mlp-16 --model hvae --arch mlp --latent-dim 16 --bottom-dim 32 --hidden 320,160 --epochs 250 --kl-warmup 60 --ema 0.999 --lr 1.5e-3
) > /tmp/train_queue_b.log 2>&1 &
wait
