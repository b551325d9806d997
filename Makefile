# The three stable entry points: `make run`, `make test`, `make bench`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/velaops
export REDIS_URL ?= redis://127.0.0.1:6379/0

# The sandbox's moto accepts any credentials and its DSQL endpoint checks tokens signed with these;
# a developer's own AWS credentials, if any, are left alone.
ifeq ($(AWS_ACCESS_KEY_ID)$(AWS_PROFILE)$(wildcard $(HOME)/.aws/credentials $(HOME)/.aws/config),)
export AWS_ACCESS_KEY_ID := sandbox
export AWS_SECRET_ACCESS_KEY := sandbox
endif

# Local runs: debug on, so no SECRET_KEY is needed and static files are served by whitenoise from source.
# Links in emails name the web port explicitly (VELAOPS_BASE_URL).
RUN_ENV := DEBUG=1 PORT=$(PORT) VELAOPS_BASE_URL=http://127.0.0.1:$(PORT)
DEMO_USER ?= demo
DEMO_PASSWORD ?= vela-demo-operator
ADMIN_USER ?= admin
ADMIN_PASSWORD ?= vela-demo-admin

.PHONY: run test bench install lock lint clean system-libs cdk-synth

# The last lines make .venv/bin/velaops, the console script pyproject.toml declares, for this checkout: its
# dependencies are in the lock, and nothing is built or downloaded (the venv's setuptools cannot build wheels).
$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/base.txt -r requirements/dev.txt
	printf '#!%s\nimport sys\nsys.path.insert(0, "%s")\nfrom velaops_cli.main import main\nsys.exit(main())\n' \
	  "$(abspath $(PY))" "$(CURDIR)" > $(VENV)/bin/velaops && chmod +x $(VENV)/bin/velaops
	touch $(STAMP)

install: $(STAMP)

# Reports render PDFs with WeasyPrint (Pango, HarfBuzz, fonts); the tests read them back with pdftotext.
# Installed from Debian's packages only when missing, and only where apt-get can run.
WEASYPRINT_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils
system-libs:
	@if ldconfig -p | grep -q libpangoft2-1.0.so.0 && ldconfig -p | grep -q libharfbuzz-subset.so.0 \
	    && command -v pdftotext >/dev/null && fc-list 2>/dev/null | grep -qi dejavu; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(WEASYPRINT_DEBS) >/dev/null; \
	else echo "Reports need Debian's $(WEASYPRINT_DEBS) (apt-get install them as root)." >&2; fi

# infra/supervise.py runs infra/Procfile.dev under supervisord: a process that exits (killed, or lost
# Redis) is restarted with a growing delay and logged, the others keep running; Ctrl-C stops them all.
run: install system-libs
	@$(PY) -m infra.ensure_services
	$(PY) -m infra.ensure_database
	$(RUN_ENV) $(PY) manage.py migrate --no-input -v0
	$(RUN_ENV) VELAOPS_PASSWORD=$(DEMO_PASSWORD) $(PY) manage.py createuser $(DEMO_USER) --role operator
	$(RUN_ENV) VELAOPS_PASSWORD=$(ADMIN_PASSWORD) $(PY) manage.py createuser $(ADMIN_USER) --role superuser
	@echo
	@echo "  VelaOps:  http://127.0.0.1:$(PORT)/"
	@echo "  operator: $(DEMO_USER) / $(DEMO_PASSWORD)"
	@echo "  admin:    $(ADMIN_USER) / $(ADMIN_PASSWORD)"
	@echo "  sandbox:  offline AWS + DSQL + Aurora + API health route (manage.py sandbox), environment 'sandbox'"
	@echo "  Ctrl-C stops everything; a process that exits is restarted."
	@echo
	@$(RUN_ENV) $(PY) -m infra.supervise infra/Procfile.dev

# The layering contracts (.importlinter) first: a second, not worth a test run when broken. The suite runs on
# TEST_WORKERS pytest-xdist workers, each with a PostgreSQL server of its own (tests/parallel.py). Most tests
# wait on subprocesses and sockets, so 3 on 2 cores; 4 pushed the CPU-bound tests (test_hostile_input, moto's
# start) past their time limits on a busy machine. TEST_WORKERS=0: one process, on DATABASE_URL.
TEST_WORKERS ?= 3
test: install system-libs
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n $(TEST_WORKERS)

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# Vela's CDK app (infra/sandbox/cdk): re-synthesize the r0/r1/r2 templates the sandbox deploys, with the
# machine's Node and the locked npm packages. The templates are committed: make run and CI need no Node.
cdk-synth:
	cd infra/sandbox/cdk && npm ci --no-audit --no-fund --loglevel=error && npx tsc --noEmit && node synth.js

# Recompile the pinned requirements after editing requirements/*.in.
lock:
	$(PY) -m pip install --quiet uv
	cd requirements && ../$(VENV)/bin/uv pip compile --python-version 3.11 --generate-hashes -q base.in -o base.txt
	cd requirements && ../$(VENV)/bin/uv pip compile --python-version 3.11 --generate-hashes -q dev.in -o dev.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
