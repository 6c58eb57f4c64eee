# sales_kpi: PGXS build.  The install script of the version in development
# is assembled from the SQL fragments in src/sql/ (one per concern,
# concatenated in name order); releases/ holds the frozen install scripts of
# released versions and the upgrade scripts between versions.

EXTENSION  = sales_kpi
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = $(EXTENSION)
OBJS = \
	src/sales_kpi.o \
	src/settings.o \
	src/errors.o \
	src/demo_random.o \
	src/summary.o \
	src/exact_sum.o \
	src/weighted_pipeline.o \
	src/winloss.o \
	src/stats_math.o \
	src/qsketch.o \
	src/survival_math.o \
	src/duration.o \
	src/survival.o \
	src/lift.o \
	src/funnel.o \
	src/window.o \
	src/currency.o \
	src/dimension.o \
	src/history_read.o \
	src/history_replace.o \
	src/restore.o \
	src/stage_walk.o \
	src/funnel_walk.o \
	src/stage_gate.o \
	src/stage_stays.o \
	src/stage_sync.o

SQL_SOURCES = $(sort $(wildcard src/sql/*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
DATA        = $(sort $(wildcard releases/$(EXTENSION)--*.sql))

# pg_regress: every sql/NAME.sql, compared with expected/NAME.out
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = $(DATA_built)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) $(EXTENSION).control
	cat $(SQL_SOURCES) > $@

.PHONY: demo test bench valgrind
demo:
	scripts/demo.sh
test:
	scripts/test.sh
# the suites against an assert-enabled server under Valgrind (long; not in CI)
valgrind:
	scripts/valgrind.sh $(VALGRIND_ARGS)
bench:
	bench/run.sh
	bench/aggregates.sh
	bench/kpi.sh
