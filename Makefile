# khmer-digits-ocr — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install fonts system-deps test test-slow train train-numbers samples generate report release-model check-wheel bench tensorboard \
        sweep-lr compare-losses compare-models search-lr clean

help:  ## List every target with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pin torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[test]'
	bash scripts/install_fonts.sh
	touch $(STAMP)

install: $(STAMP)  ## Create .venv/ and install the project (editable) with test extras, and the Khmer fonts

fonts:  ## Khmer fonts (fonts-khmeros, fonts-noto-core): apt-get as root, else unpacked into ~/.local/share/fonts
	bash scripts/install_fonts.sh

system-deps:  ## Optional (root, Debian): Tesseract 5 with Khmer (benchmark baseline) and Chromium (report.html browser test)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-khm chromium

test: $(STAMP)  ## Run the default test suite (fast; excludes tests marked slow)
	$(PY) -m pytest -q $(ARGS)

test-slow: $(STAMP)  ## Run only the slow tests (kill -9 resume, full-length runs)
	$(PY) -m pytest -q -m slow $(ARGS)

train: $(STAMP)  ## Train the default model on the default generated data (python -m runner)
	$(PY) -m runner $(ARGS)

train-numbers: $(STAMP)  ## Train the numbers charset: prices, dates, times, phones, IDs with separators, signs and ASCII digits (experiment=numbers)
	$(PY) -m runner experiment=numbers $(ARGS)

generate: $(STAMP)  ## Write a dataset to data.dir (python -m runner.generate)
	$(PY) -m runner.generate $(ARGS)

report: $(STAMP)  ## Evaluate a model and write report.html, what it gets wrong (ARGS="checkpoint=RUN_DIR [split=val_hard]")
	$(PY) -m runner.evaluate $(ARGS)

release-model: $(STAMP)  ## Train the default config with the system fonts, package runner/shipped/ + model card (RUN=RUN_DIR: package a finished run)
	$(PY) -m runner.release $(if $(RUN),--run $(RUN)) $(ARGS)

check-wheel:  ## Build the wheel, install it into a fresh venv, and train/predict/read from another folder
	bash scripts/check_wheel.sh

samples: $(STAMP)  ## Write a grid of generated samples to outputs/samples.png
	$(PY) -m runner.data.samples $(ARGS)

sweep-lr: $(STAMP)  ## Multirun optimizer.lr=1e-3,3e-4,1e-4 on the default model; summary.md in the sweep dir
	$(PY) -m runner -m optimizer.lr=1e-3,3e-4,1e-4 $(ARGS)

compare-losses: $(STAMP)  ## Sweep preset: crossentropy/focal x label smoothing 0/0.1, attention model small, quick data (4 jobs)
	$(PY) -m runner experiment=compare_losses $(ARGS)

compare-models: $(STAMP)  ## Sweep preset: every model preset with its default loss on the quick data (5 jobs)
	$(PY) -m runner experiment=compare_models $(ARGS)

search-lr: $(STAMP)  ## Optuna TPE search over lr (log), weight decay, label smoothing (8 trials; pip extra `sweep`)
	$(PY) -m runner hparams_search=lr_optuna $(ARGS)

bench: $(STAMP)  ## Benchmarks: overhead vs bare PyTorch, time to 99%, inference and accuracy vs Tesseract, data (BENCH_QUICK=1: short; BENCH_CHECKPOINT=RUN_DIR: score that model)
	$(PY) benchmarks/bench.py

# TensorBoard serves this machine only; `make tensorboard HOST=0.0.0.0` serves every host, as an explicit
# choice. `:=` so that a HOST in the environment (zsh exports the machine's name) never widens it.
tensorboard: HOST := localhost
tensorboard: $(STAMP)  ## Open TensorBoard over every run in outputs/ on localhost (HOST=0.0.0.0: every host)
	$(VENV)/bin/tensorboard --logdir outputs --host $(HOST)

clean:  ## Remove run outputs and caches (keeps .venv and the data cache)
	rm -rf outputs multirun .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
