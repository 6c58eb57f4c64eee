/*-------------------------------------------------------------------------
 *
 * funnel_walk.c
 *	  funnel_deals(as_of, created_from, created_to, first_id, last_id): how
 *	  far each deal created in a period got through its funnel as the stage
 *	  history stood at as_of, from one ordered pass over the deals and their
 *	  history.
 *
 * The funnel KPIs need, per deal, the open-stage rank it reached: the
 * number of open stages of its pipeline when it ever entered a won stage,
 * else the highest rank it entered (funnel_stage_ranks() ranks the open
 * stages of a pipeline 1..n by position); and, for the strict funnel, the
 * largest k such that it first entered ranks 1..k in that order (ties in
 * time count as in order), NULL for 0.  Grouping every event by deal in a
 * query hashes the whole history (a million groups at a million deals),
 * and joining the result back to the deals hashes a million more; here the
 * deals come in the order of opportunity's covering index and their events
 * in the order of the index stage_event (opportunity_id, entered_at,
 * stage_event_id), side by side, and one deal is kept at a time, in a few
 * integers and one first-entry time per rank.
 *
 * One row per deal created in the period and by as_of with an event entered
 * by as_of, among the deals with opportunity_id between first_id and
 * last_id (null: unbounded), so that a query can read halves of the deals
 * in parallel workers.  The ranks are read once per call from
 * funnel_stage_ranks().  The tests compare the results with the same ranks
 * grouped from each deal's events in SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "history_read.h"

/* a stage as the funnel sees it */
typedef struct ReachStage
{
	int64		stage_id;
	int32		rank;			/* 1..n for an open stage, 0 otherwise */
	int32		open_stages;	/* open stages of its pipeline */
	bool		won;
} ReachStage;

typedef struct ReachState
{
	Tuplestorestate *store;
	TupleDesc	desc;
	ReachStage *stages;			/* sorted by stage_id */
	int			nstages;
	int32		max_rank;		/* the highest rank of any stage */
	/* the deal being read */
	bool		have_deal;
	bool		ever_won;
	int32		min_open_stages;
	int32		top_rank;		/* 0: no open stage entered */
	TimestampTz *first_at;		/* first entry per rank, 1..max_rank */
	bool	   *entered;		/* per rank */
} ReachState;

static int
stage_cmp(const void *a, const void *b)
{
	int64		x = ((const ReachStage *) a)->stage_id;
	int64		y = ((const ReachStage *) b)->stage_id;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* the ranks of every stage, from funnel_stage_ranks() */
static void
read_stages(ReachState *st)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(psprintf("SELECT r.stage_id, coalesce(r.rank, 0), r.open_stages,"
							  "       r.kind OPERATOR(pg_catalog.=) 'won'"
							  "  FROM " SALES_KPI_INTERNAL_SCHEMA ".funnel_stage_ranks() r"),
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "funnel_deals: reading the stage ranks failed: %s", SPI_result_code_string(rc));
	st->nstages = (int) SPI_processed;
	st->stages = MemoryContextAlloc(cxt, sizeof(ReachStage) * Max(st->nstages, 1));
	st->max_rank = 0;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ReachStage *s = &st->stages[i];
		bool		isnull;

		s->stage_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		s->rank = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		s->open_stages = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		s->won = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		st->max_rank = Max(st->max_rank, s->rank);
	}
	SPI_finish();
	qsort(st->stages, st->nstages, sizeof(ReachStage), stage_cmp);
	st->first_at = MemoryContextAlloc(cxt, sizeof(TimestampTz) * (st->max_rank + 1));
	st->entered = MemoryContextAllocZero(cxt, sizeof(bool) * (st->max_rank + 1));
}

/*
 * The ranks of the deal read so far into values[0..1] (reached, strict),
 * then forget it.
 */
static void
reach_result(ReachState *st, Datum *values, bool *nulls)
{
	int32		k;
	int32		strict = 0;
	bool		broken = false;

	if (st->ever_won)
	{
		values[0] = Int32GetDatum(st->min_open_stages);
		nulls[0] = false;
	}
	else
	{
		values[0] = Int32GetDatum(st->top_rank);
		nulls[0] = (st->top_rank == 0);
	}

	/*
	 * The entered ranks in order (none above top_rank, so a deal costs the
	 * ranks it reached, not every rank of the funnels): the strict prefix
	 * ends before the first one that leaves a gap or was first entered
	 * before the one below it.
	 */
	for (k = 1; k <= st->top_rank; k++)
	{
		if (!st->entered[k])
		{
			/* a gap: the ranks above it break the prefix, if any */
			broken = true;
			continue;
		}
		if (!broken && (k == 1 || st->first_at[k] >= st->first_at[k - 1]))
			strict = k;
		else
			broken = true;
		st->entered[k] = false;
	}
	values[1] = Int32GetDatum(strict);
	nulls[1] = (strict == 0);
	st->have_deal = false;
}

/*
 * One event of the deal, in time order.  An event whose stage the caller
 * cannot see (row security on stage) is passed over, as the grouping way
 * of funnel_partials, which joins the events to the visible stages, leaves
 * it out; a deal with no other event gives no row.
 */
static void
reach_event(ReachState *st, int64 stage_id, TimestampTz at)
{
	ReachStage	key;
	ReachStage *s;

	key.stage_id = stage_id;
	s = bsearch(&key, st->stages, st->nstages, sizeof(ReachStage), stage_cmp);
	if (s == NULL)
		return;
	if (!st->have_deal)
	{
		st->have_deal = true;
		st->ever_won = false;
		st->min_open_stages = PG_INT32_MAX;
		st->top_rank = 0;
	}
	st->ever_won |= s->won;
	st->min_open_stages = Min(st->min_open_stages, s->open_stages);
	if (s->rank > 0)
	{
		st->top_rank = Max(st->top_rank, s->rank);
		/* events come in time order: the first one of a rank is its first entry */
		if (!st->entered[s->rank])
		{
			st->entered[s->rank] = true;
			st->first_at[s->rank] = at;
		}
	}
}

/*
 * The deals created in [created_from, created_to) and by as_of, with an
 * event by as_of, each with the columns of its row that the funnel partials
 * read (pipeline, creation, current stage and when it was entered) and its
 * reached and strict ranks.  The deals (opportunity's covering index) and
 * their events (stage_event's deal index) are read side by side in deal
 * order; the events of a deal outside the period are passed over.
 */
PG_FUNCTION_INFO_V1(funnel_deals);

#define DEALS_OUT_COLS 7
/* the deal's own columns, first in the cursor and in the result */
#define DEALS_ROW_COLS 5

StaticAssertDecl(DEALS_ROW_COLS <= HISTORY_MAXCOLS && DEALS_ROW_COLS + 2 == DEALS_OUT_COLS,
				 "funnel_deals: the deal's columns and the two ranks make the result");

Datum
funnel_deals(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ReachState *st;
	DealRange	range;
	HistoryCursor co;
	HistoryCursor ce;
	CursorRow  *to;
	CursorRow  *te;
	TimestampTz created_from;
	TimestampTz created_to;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments \"as_of\", \"created_from\" and \"created_to\" must not be null")));
	created_from = PG_GETARG_TIMESTAMPTZ(1);
	created_to = PG_GETARG_TIMESTAMPTZ(2);

	InitMaterializedSRF(fcinfo, 0);
	st = palloc0(sizeof(ReachState));
	st->store = rsinfo->setResult;
	st->desc = rsinfo->setDesc;
	if (st->desc->natts != DEALS_OUT_COLS)
		elog(ERROR, "funnel_deals: unexpected result type");

	read_stages(st);
	deal_range_init(&range, fcinfo, 3);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	history_cursor_open(&co, psprintf("SELECT o.opportunity_id, o.pipeline_id, o.created_at, o.stage_id,"
									  "       o.stage_entered_at"
									  "  FROM %s.opportunity o"
									  " WHERE o.created_at OPERATOR(pg_catalog.<=) $1"
									  DEAL_RANGE_COND("o")
									  " ORDER BY o.opportunity_id",
									  SALES_KPI_SCHEMA),
						&range);
	history_cursor_open(&ce, psprintf("SELECT e.opportunity_id, e.stage_id, e.entered_at"
									  "  FROM %s.stage_event e"
									  " WHERE e.entered_at OPERATOR(pg_catalog.<=) $1"
									  DEAL_RANGE_COND("e")
									  " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
									  SALES_KPI_SCHEMA),
						&range);

	while ((to = history_cursor_peek(&co)) != NULL)
	{
		Datum		values[DEALS_OUT_COLS];
		bool		nulls[DEALS_OUT_COLS];
		int64		opp = history_cursor_opp(to);
		TimestampTz created_at = DatumGetTimestampTz(to->values[2]);
		bool		wanted = created_at >= created_from && created_at < created_to;
		int			k;

		CHECK_FOR_INTERRUPTS();
		/*
		 * The deal's columns, before the cursor moves on (by value on 64-bit
		 * builds; by reference they stay valid until the next batch is read,
		 * after this deal's row is stored)
		 */
		for (k = 0; k < DEALS_ROW_COLS; k++)
		{
			values[k] = to->values[k];
			nulls[k] = to->nulls[k];
		}
		history_cursor_next(&co);

		/* its events; those of deals not read here (created after as_of) are passed over */
		while ((te = history_cursor_peek(&ce)) != NULL && history_cursor_opp(te) <= opp)
		{
			if (wanted && history_cursor_opp(te) == opp)
				reach_event(st, DatumGetInt64(te->values[1]), DatumGetTimestampTz(te->values[2]));
			history_cursor_next(&ce);
		}
		if (st->have_deal)
		{
			reach_result(st, values + DEALS_ROW_COLS, nulls + DEALS_ROW_COLS);
			tuplestore_putvalues(st->store, st->desc, values, nulls);
		}
	}
	SPI_cursor_close(co.portal);
	SPI_cursor_close(ce.portal);
	SPI_finish();

	return (Datum) 0;
}
