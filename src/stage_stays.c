/*-------------------------------------------------------------------------
 *
 * stage_stays.c
 *	  stage_stays(...) / stage_stay_totals(...): the stays of a list of
 *	  deals in their stages, from one index scan (see below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "history_read.h"

/*
 * stage_stays(as_of, opportunity_ids, stages): the stays of the given deals
 * in the given stages (null: every stage), as the history stood at as_of.
 * Each stage event entered by as_of starts a stay that the deal's next
 * event ends (left_at); the newest one's runs on (left_at null).  An event
 * into the stage the deal is already in ends one stay and starts another,
 * as in stage_transition().  One index scan for all the deals, read in
 * order: no per-deal query, no window over the events.
 *
 * stage_stay_totals(as_of, opportunity_ids, stages): the same stays totalled
 * per deal and stage: how many, the latest one (entered, left: null if the
 * deal is still in it) and the days of all of them, summed in time order
 * (the current stay counts up to as_of).  Deals come in id order, the
 * stages of a deal in stage_id order.
 */
PG_FUNCTION_INFO_V1(stage_stays);
PG_FUNCTION_INFO_V1(stage_stay_totals);

#define STAYS_OUT_COLS 4
#define STAY_TOTALS_OUT_COLS 6

/* one deal's stays in one stage, so far */
typedef struct StayTotal
{
	int64		stage;
	int64		stays;
	TimestampTz latest_entered;
	TimestampTz latest_left;
	bool		current;		/* the deal is still in the stage */
	double		days;
} StayTotal;

typedef struct StaysState
{
	DestReceiver pub;			/* must be first */
	Tuplestorestate *store;
	TupleDesc	desc;
	int64	   *stages;			/* sorted; NULL: every stage */
	int			nstages;
	bool		have_prev;		/* prev_* hold the deal's latest event so far */
	int64		prev_opp;
	int64		prev_stage;
	TimestampTz prev_at;
	/* stage_stay_totals only */
	bool		totals;
	TimestampTz as_of;
	StayTotal  *tot;			/* the current deal's stages */
	int			ntot;
	int			totcap;
} StaysState;

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static int
stay_total_cmp(const void *a, const void *b)
{
	return int64_cmp(&((const StayTotal *) a)->stage, &((const StayTotal *) b)->stage);
}

/* emit the current deal's totals, then forget them */
static void
stays_flush_totals(StaysState *st)
{
	int			i;

	qsort(st->tot, st->ntot, sizeof(StayTotal), stay_total_cmp);
	for (i = 0; i < st->ntot; i++)
	{
		StayTotal  *t = &st->tot[i];
		Datum		values[STAY_TOTALS_OUT_COLS];
		bool		nulls[STAY_TOTALS_OUT_COLS] = {false, false, false, false, t->current, false};

		values[0] = Int64GetDatum(st->prev_opp);
		values[1] = Int64GetDatum(t->stage);
		values[2] = Int64GetDatum(t->stays);
		values[3] = TimestampTzGetDatum(t->latest_entered);
		values[4] = t->current ? (Datum) 0 : TimestampTzGetDatum(t->latest_left);
		values[5] = Float8GetDatum(t->days);
		tuplestore_putvalues(st->store, st->desc, values, nulls);
	}
	st->ntot = 0;
}

/* the stay started by the previous event, ended at left_at (or running on) */
static void
stays_emit(StaysState *st, bool ended, TimestampTz left_at)
{
	if (st->stages != NULL &&
		bsearch(&st->prev_stage, st->stages, st->nstages, sizeof(int64), int64_cmp) == NULL)
		return;
	if (st->totals)
	{
		StayTotal  *t = NULL;
		int			i;

		for (i = 0; i < st->ntot; i++)
			if (st->tot[i].stage == st->prev_stage)
				t = &st->tot[i];
		if (t == NULL)
		{
			if (st->ntot == st->totcap)
			{
				st->totcap *= 2;
				st->tot = repalloc(st->tot, sizeof(StayTotal) * st->totcap);
			}
			t = &st->tot[st->ntot++];
			memset(t, 0, sizeof(StayTotal));
			t->stage = st->prev_stage;
		}
		t->stays++;
		/* stays come in time order: the last one is the latest */
		t->latest_entered = st->prev_at;
		t->latest_left = left_at;
		t->current = !ended;
		/* as extract(epoch FROM interval) / 86400 in SQL: seconds, then days */
		t->days += ((double) ((ended ? left_at : st->as_of) - st->prev_at) / USECS_PER_SEC) / SECS_PER_DAY;
	}
	else
	{
		Datum		values[STAYS_OUT_COLS];
		bool		nulls[STAYS_OUT_COLS] = {false, false, false, !ended};

		values[0] = Int64GetDatum(st->prev_opp);
		values[1] = Int64GetDatum(st->prev_stage);
		values[2] = TimestampTzGetDatum(st->prev_at);
		values[3] = ended ? TimestampTzGetDatum(left_at) : (Datum) 0;
		tuplestore_putvalues(st->store, st->desc, values, nulls);
	}
}

/* one event, in index order: (opportunity_id, stage_id, entered_at) */
static bool
stays_receive(TupleTableSlot *slot, DestReceiver *self)
{
	StaysState *st = (StaysState *) self;
	int64		opp;
	TimestampTz at;

	slot_getallattrs(slot);
	opp = DatumGetInt64(slot->tts_values[0]);
	at = DatumGetTimestampTz(slot->tts_values[2]);
	if (st->have_prev)
	{
		stays_emit(st, st->prev_opp == opp, at);
		if (st->totals && st->prev_opp != opp)
			stays_flush_totals(st);
	}
	st->have_prev = true;
	st->prev_opp = opp;
	st->prev_stage = DatumGetInt64(slot->tts_values[1]);
	st->prev_at = at;
	return true;
}

static void
stays_run(FunctionCallInfo fcinfo, bool totals)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *caller = totals ? "stage_stay_totals" : "stage_stays";
	StaysState *st;
	Datum		values[2];
	Oid			types[2] = {TIMESTAMPTZOID, INT8ARRAYOID};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"as_of\" must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"opportunity_ids\" must not be null")));

	InitMaterializedSRF(fcinfo, 0);

	st = palloc0(sizeof(StaysState));
	receiver_init(&st->pub, stays_receive);
	st->store = rsinfo->setResult;
	st->desc = rsinfo->setDesc;
	if (st->desc->natts != (totals ? STAY_TOTALS_OUT_COLS : STAYS_OUT_COLS))
		elog(ERROR, "%s: unexpected result type", caller);
	st->totals = totals;
	st->as_of = PG_GETARG_TIMESTAMPTZ(0);
	st->totcap = 16;
	st->tot = palloc(sizeof(StayTotal) * st->totcap);
	if (!PG_ARGISNULL(2))
	{
		Datum	   *v;
		bool	   *nl;
		int			n,
					i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &v, &nl, &n);
		st->stages = palloc(sizeof(int64) * Max(n, 1));
		for (i = 0; i < n; i++)
			if (!nl[i])
				st->stages[st->nstages++] = DatumGetInt64(v[i]);
		qsort(st->stages, st->nstages, sizeof(int64), int64_cmp);
	}

	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	history_query(caller,
				  psprintf("SELECT e.opportunity_id, e.stage_id, e.entered_at"
						   "  FROM %s.stage_event e"
						   " WHERE e.opportunity_id OPERATOR(pg_catalog.=) ANY ($2)"
						   "   AND e.entered_at OPERATOR(pg_catalog.<=) $1"
						   " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
						   SALES_KPI_SCHEMA),
				  2, types, values, (DestReceiver *) st, true);
	if (st->have_prev)
	{
		stays_emit(st, false, 0);
		if (totals)
			stays_flush_totals(st);
	}
}

Datum
stage_stays(PG_FUNCTION_ARGS)
{
	stays_run(fcinfo, false);
	return (Datum) 0;
}

Datum
stage_stay_totals(PG_FUNCTION_ARGS)
{
	stays_run(fcinfo, true);
	return (Datum) 0;
}
