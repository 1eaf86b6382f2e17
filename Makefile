# V-Rex DRE: RTL generator, golden model and reports. `make help` lists the targets.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
RT_STAMP := $(VENV)/.installed-realtrace
CONFIG  ?= edge
LIBERTY ?=
SWEEP   ?=
# FPGA families of the resource counts and board of the fmax run: iCE40 (iCEBreaker) only for
# `tiny`, the one preset that fits an iCE40; the edge blocks exceed the largest iCE40 many times.
FAMILIES    ?= $(if $(filter tiny,$(CONFIG)),ecp5 ice40,ecp5)
PNR_FAMILY  ?= $(if $(filter tiny,$(CONFIG)),ice40,ecp5)
PNR_TIMEOUT ?= 300
# Clock constraint of the place and route (MHz), which nextpnr's timing-driven placement aims at.
PNR_TARGET_MHZ ?= 100
# nextpnr's router: router1, or router2 for the large congested blocks router1 does not finish.
PNR_ROUTER  ?= router1
# Set (PNR_TIMING_RIPUP=1): the router rips up the arcs that miss the target and routes them
# again (nextpnr's experimental --tmg-ripup; see README, "Timing rip-up").
PNR_TIMING_RIPUP ?=
SYNTH_FLAGS ?=
# IHP SG13G2 PDK checkout (the open ASIC flows' convention) for SRAM macros, standard cells and
# OpenSTA timing in `make synth`; CI uses ../shared/pdk. Unset: generic gates only.
PDK_ROOT ?=
JOBS    ?= 2
BUILD   ?= build

.DEFAULT_GOAL := all
.PHONY: all help venv check-icarus check-sta verilog lint run test sim synth report bench clean distclean
.PHONY: formal formal-mutants

all: $(STAMP) ## set up .venv if needed, write the Verilog of CONFIG, run ReSV and the baselines on the default workload
	@echo "== Verilog of the $(CONFIG) configuration -> $(BUILD)/verilog/"
	@$(PY) -m hw.verilog --config $(CONFIG) --out $(BUILD)/verilog --lint
	@echo "== ReSV and the baselines on the default streaming workload -> $(BUILD)/resv/"
	@$(PY) -m model.main --out $(BUILD)/resv --config $(CONFIG)
	@$(PY) -m model.summary --build $(BUILD)

help: ## list the targets
	@echo "usage: make [target] [CONFIG=tiny|edge|server|file.json] [LIBERTY=cells.lib] [PDK_ROOT=dir] [SWEEP=1] [JOBS=2]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-13s %s\n", $$1, $$2}'

# The environment is rebuilt whenever the pins or the project metadata change.
$(STAMP): requirements.lock pyproject.toml
	@echo "setting up $(VENV) (pinned dependencies from requirements.lock)"
	@test -x $(PY) && $(PY) -c 'import sys' 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP) ## create or refresh .venv only (pinned dependencies, the project installed editable: vrex-dre)

check-icarus:
	@command -v iverilog >/dev/null 2>&1 && command -v vvp >/dev/null 2>&1 || { \
	  echo "error: Icarus Verilog (iverilog, vvp) is needed for the cocotb simulations."; \
	  echo "       install it with: sudo apt-get install iverilog   (macOS: brew install icarus-verilog)"; \
	  exit 1; }

check-sta: ## check that OpenSTA (binary sta) is installed, for the static timing of make synth PDK_ROOT= and make test
	@command -v sta >/dev/null 2>&1 || { \
	  echo "error: OpenSTA (binary sta) is needed for static timing (make synth PDK_ROOT=..., make test)."; \
	  echo "       install it with: sudo apt-get install opensta"; \
	  exit 1; }

verilog: $(STAMP) ## write the Verilog of every block for every preset into build/verilog/, Verilator-linted
	@$(PY) -m hw.verilog --out $(BUILD)/verilog --lint

lint: $(STAMP) ## Verilator lint (-Wall, waivers in hw/verilog.py) of the generated Verilog
	@$(PY) -m hw.verilog --out $(BUILD)/verilog --lint --require-verilator

run: $(STAMP) ## the main job: ReSV and the baselines on the default streaming workload -> build/resv/
	@$(PY) -m model.main --out $(BUILD)/resv

test: $(STAMP) $(RT_STAMP) check-icarus check-sta ## the whole regression: model, Amaranth-simulator and cocotb tests
	@$(PY) -m pytest -n $(JOBS)

sim: $(STAMP) check-icarus ## only the cocotb runs on the generated Verilog
	@$(PY) -m pytest -n $(JOBS) -m cocotb

synth: $(STAMP) $(if $(PDK_ROOT),check-sta) ## area and FPGA reports for CONFIG (PDK_ROOT=dir: SRAM macros + OpenSTA timing; LIBERTY=, SWEEP=1, FAMILIES=, PNR_FAMILY=, PNR_SEEDS=1,2,3, PNR_TARGET_MHZ=100, PNR_ROUTER=router2 or none: placement only, PNR_TIMING_RIPUP=1) -> build/reports/
	@$(PY) -m synth.flow --config $(CONFIG) $(if $(LIBERTY),--liberty $(LIBERTY)) $(if $(SWEEP),--sweep) \
	  $(if $(PDK_ROOT),--pdk-root $(PDK_ROOT)) \
	  --families $(FAMILIES) --pnr-family $(PNR_FAMILY) --pnr-timeout $(PNR_TIMEOUT) --pnr-target-mhz $(PNR_TARGET_MHZ) --pnr-router $(PNR_ROUTER) $(if $(PNR_SEEDS),--pnr-seeds $(PNR_SEEDS)) $(if $(PNR_TIMING_RIPUP),--pnr-timing-ripup) $(SYNTH_FLAGS) --out $(BUILD)/reports

report: $(STAMP) ## print the summary of the last synthesis run again and redraw its plots
	@$(PY) -m synth.report --out $(BUILD)/reports

formal: $(STAMP) ## SymbiYosys proofs of every block's stream contract, conservation, response and invariants -> build/formal/
	@$(PY) -m sim.formal --jobs $(JOBS) --out $(BUILD)/formal

formal-mutants: $(STAMP) ## inject protocol bugs into a copy of the RTL; the proofs must fail on each -> build/formal/mutants/
	@$(PY) -m sim.formal.mutate --jobs $(JOBS) --out $(BUILD)/formal/mutants

bench: $(STAMP) check-icarus ## model speed at a 40K cache, retrieval table, HCU, WTU, KVMU and DRE frame-twin figures, DRE simulator speed -> build/bench/
	@$(PY) -m sim.bench --out $(BUILD)/bench

.PHONY: system
system: $(STAMP) ## V-Rex system model: ms/frame, FPS, KV prediction share, MB fetched, mJ vs cache size (CLOCK_MHZ=, KV_DUMP=) -> build/system/
	@$(PY) -m model.system --out $(BUILD)/system --config $(CONFIG) $(if $(CLOCK_MHZ),--clock-mhz $(CLOCK_MHZ)) \
	  $(if $(KV_DUMP),--kv-dump $(KV_DUMP)) $(SYSTEM_FLAGS)

# Design-space exploration on Dask (synth/dse): GRID= grid file (JSON or TOML),
# DASK_SCHEDULER=tcp://host:8786 an existing cluster (default: a LocalCluster, one worker per core),
# KV_DUMP= a KV dump, PDK_ROOT= um^2 and critical paths; DSE_FLAGS= more options.
GRID ?= synth/dse/default_grid.toml
.PHONY: dse
dse: $(STAMP) $(if $(PDK_ROOT),check-sta) ## design-space exploration on Dask: area, time per frame, recall; Pareto fronts (GRID=, DASK_SCHEDULER=, KV_DUMP=, PDK_ROOT=) -> build/dse/
	@$(PY) -m synth.dse --grid $(GRID) --out $(BUILD)/dse $(if $(DASK_SCHEDULER),--scheduler $(DASK_SCHEDULER)) \
	  $(if $(KV_DUMP),--kv-dump $(KV_DUMP)) $(if $(PDK_ROOT),--pdk-root $(PDK_ROOT)) $(DSE_FLAGS)

clean: ## remove build outputs
	rm -rf $(BUILD) sim_build results.xml

distclean: clean ## also remove .venv
	rm -rf $(VENV)

# Optional group `realtrace` (requirements-realtrace.lock): real clips through a real small LM.
# Installed with --no-deps: the lock pins every package of the group, transitive ones included.
CLIP     ?= bikes
FPS      ?= 10
FRAMES   ?= 0
.PHONY: real-trace

$(RT_STAMP): requirements-realtrace.lock | $(STAMP)
	@echo "installing the optional group realtrace (requirements-realtrace.lock, about 425 MB)"
	@start=$$(date +%s); \
	  $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-realtrace.lock && \
	  echo $$(( $$(date +%s) - start )) > $@

real-trace: $(RT_STAMP) ## a real clip through a real LM, KV dump (CLIP=bikes|bigbuckbunny|carphone FPS=10 FRAMES=0) -> build/traces/
	@seconds=$$(cat $(RT_STAMP)); $(PY) -m model.stimulus.real_trace --clip $(CLIP) --fps $(FPS) \
	  --frames $(FRAMES) --out $(BUILD)/traces/$(CLIP).npz $${seconds:+--install-seconds $$seconds}
	@echo "next: $(PY) -m model.main --kv-dump $(BUILD)/traces/$(CLIP).npz --out $(BUILD)/resv-$(CLIP)"
