/*-------------------------------------------------------------------------
 *
 * stage_walk.c
 *	  stage_event_walk(as_of, from_at, to_at, pair_from, pair_to, suspects):
 *	  one ordered pass over the stage history, returning the few events a
 *	  process-health KPI looks at, each with what a window over its deal
 *	  would say about it; stage_history_check(...): the same events and, in
 *	  the same pass with the deals and their first snapshots, the deals whose
 *	  own row disagrees with their history (see below).
 *
 * The history is read once, deal by deal in the order of the index
 * stage_event (opportunity_id, entered_at, stage_event_id), into a state
 * that keeps one deal's events at a time (history_read.c: a receiver for
 * the walk, cursors in batches when the deals and snapshots are merged in):
 * no window function runs over every event (each one re-reads its
 * partition from a tuplestore, which costs far more than the scan), and
 * only the events asked for reach the result.  For every event entered by
 * as_of it knows the previous event of the deal (prev_stage_id,
 * prev_entered_at), the smallest stage_event_id of the later events
 * (min_later_id: smaller than its own when an event recorded before it was
 * entered later), whether it is the deal's newest event, and the deal's
 * first event.
 *
 * An event is returned when it was entered in [from_at, to_at) (a null
 * bound is open) and
 *	  - the move that led to it, (prev_stage_id, stage_id), is one of the
 *		pairs (pair_from[i], pair_to[i]), or
 *	  - suspects is true and it is an event recorded before an event
 *		entered later (min_later_id < its id), or its amount is negative,
 *		or it was entered in the same instant as the previous event.
 *
 * Both take a range of deal ids, so that a query can read halves of the
 * deals in parallel workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "history_read.h"

PG_FUNCTION_INFO_V1(stage_event_walk);

#define WALK_OUT_COLS 12
/* stage_history_check: the walk's columns, is_deal and the deal columns */
#define HISTORY_OUT_COLS (WALK_OUT_COLS + 9)

typedef struct WalkPair
{
	int64		from;
	int64		to;
} WalkPair;

typedef struct WalkEvent
{
	int64		id;
	int64		stage;
	TimestampTz at;
	int64		rep;
	Datum		amount;			/* numeric, in deal_cxt */
	bool		rep_null;
	bool		amount_null;
	bool		amount_neg;
	int64		min_later;		/* filled when the deal is complete */
	bool		min_later_null;
} WalkEvent;

typedef struct WalkState
{
	DestReceiver pub;			/* must be first */
	Tuplestorestate *store;
	TupleDesc	desc;
	bool		have_lo;
	bool		have_hi;
	TimestampTz lo;
	TimestampTz hi;
	bool		suspects;
	WalkPair   *pairs;			/* sorted by (from, to) */
	int			npairs;
	Datum		zero;			/* numeric 0 */
	int64		opp;			/* the deal being collected */
	WalkEvent  *ev;
	int			nev;
	int			cap;
	MemoryContext deal_cxt;		/* amounts of the current deal */
} WalkState;

static int
pair_cmp(const void *a, const void *b)
{
	const WalkPair *x = a;
	const WalkPair *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return 0;
}

static bool
pair_listed(WalkState *st, int64 from, int64 to)
{
	WalkPair	key;

	if (st->npairs == 0)
		return false;
	key.from = from;
	key.to = to;
	return bsearch(&key, st->pairs, st->npairs, sizeof(WalkPair), pair_cmp) != NULL;
}

/* emit the wanted events of the deal collected so far, then forget it */
static void
walk_flush(WalkState *st)
{
	int			n = st->nev;
	int			i;
	int64		min_later = 0;
	bool		have_min = false;

	if (n == 0)
		return;
	for (i = n - 1; i >= 0; i--)
	{
		WalkEvent  *e = &st->ev[i];

		e->min_later_null = !have_min;
		e->min_later = min_later;
		if (!have_min || e->id < min_later)
			min_later = e->id;
		have_min = true;
	}
	for (i = 0; i < n; i++)
	{
		WalkEvent  *e = &st->ev[i];
		WalkEvent  *p = i > 0 ? &st->ev[i - 1] : NULL;
		bool		newest = (i == n - 1);
		bool		want;

		if ((st->have_lo && e->at < st->lo) || (st->have_hi && e->at >= st->hi))
			continue;
		want = p != NULL && pair_listed(st, p->stage, e->stage);
		if (!want && st->suspects)
			want = (!e->min_later_null && e->min_later < e->id)
				|| e->amount_neg
				|| (p != NULL && p->at == e->at);
		if (want)
		{
			Datum		values[HISTORY_OUT_COLS];
			bool		nulls[HISTORY_OUT_COLS];

			/* stage_history_check's rows: these columns, then its deal columns */
			memset(values, 0, sizeof(values));
			memset(nulls, true, sizeof(nulls));
			memset(nulls, false, sizeof(bool) * WALK_OUT_COLS);
			if (st->desc->natts == HISTORY_OUT_COLS)
			{
				values[WALK_OUT_COLS] = BoolGetDatum(false);
				nulls[WALK_OUT_COLS] = false;
			}
			values[0] = Int64GetDatum(e->id);
			values[1] = Int64GetDatum(st->opp);
			values[2] = Int64GetDatum(e->stage);
			values[3] = TimestampTzGetDatum(e->at);
			values[4] = e->amount;
			nulls[4] = e->amount_null;
			values[5] = Int64GetDatum(e->rep);
			nulls[5] = e->rep_null;
			if (p != NULL)
			{
				values[6] = Int64GetDatum(p->stage);
				values[7] = TimestampTzGetDatum(p->at);
			}
			else
			{
				values[6] = values[7] = (Datum) 0;
				nulls[6] = nulls[7] = true;
			}
			values[8] = Int64GetDatum(e->min_later);
			nulls[8] = e->min_later_null;
			values[9] = BoolGetDatum(newest);
			values[10] = TimestampTzGetDatum(st->ev[0].at);
			values[11] = Int64GetDatum(st->ev[0].id);
			tuplestore_putvalues(st->store, st->desc, values, nulls);
		}
	}
	st->nev = 0;
	MemoryContextReset(st->deal_cxt);
}

/* add an event of the deal st->opp, in time order */
static void
walk_add(WalkState *st, int64 id, int64 stage, TimestampTz at, bool rep_null, int64 rep,
		 bool amount_null, Datum amount)
{
	WalkEvent  *e;

	if (st->nev == st->cap)
	{
		st->cap *= 2;
		st->ev = repalloc(st->ev, sizeof(WalkEvent) * st->cap);
	}
	e = &st->ev[st->nev++];
	e->id = id;
	e->stage = stage;
	e->at = at;
	e->rep_null = rep_null;
	e->rep = rep_null ? 0 : rep;
	e->amount_null = amount_null;
	if (amount_null)
	{
		e->amount = (Datum) 0;
		e->amount_neg = false;
	}
	else
	{
		MemoryContext old = MemoryContextSwitchTo(st->deal_cxt);

		e->amount = PointerGetDatum(PG_DETOAST_DATUM_COPY(amount));
		MemoryContextSwitchTo(old);
		e->amount_neg = DatumGetBool(DirectFunctionCall2(numeric_lt, e->amount, st->zero));
	}
}

/* one event, in index order: (opportunity_id, stage_event_id, stage_id, entered_at, rep_id, amount) */
static bool
walk_receive(TupleTableSlot *slot, DestReceiver *self)
{
	WalkState  *st = (WalkState *) self;
	int64		opp;

	slot_getallattrs(slot);
	opp = DatumGetInt64(slot->tts_values[0]);
	if (st->nev > 0 && opp != st->opp)
		walk_flush(st);
	st->opp = opp;
	walk_add(st, DatumGetInt64(slot->tts_values[1]), DatumGetInt64(slot->tts_values[2]),
			 DatumGetTimestampTz(slot->tts_values[3]), slot->tts_isnull[4],
			 slot->tts_isnull[4] ? 0 : DatumGetInt64(slot->tts_values[4]),
			 slot->tts_isnull[5], slot->tts_values[5]);
	return true;
}

static void
read_pairs(WalkState *st, ArrayType *from, ArrayType *to)
{
	Datum	   *fv,
			   *tv;
	bool	   *fn,
			   *tn;
	int			nf,
				nt,
				i,
				n = 0;

	deconstruct_array(from, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &fv, &fn, &nf);
	deconstruct_array(to, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &tv, &tn, &nt);
	if (nf != nt)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("arguments \"pair_from\" and \"pair_to\" must have the same length")));
	st->pairs = palloc(sizeof(WalkPair) * Max(nf, 1));
	for (i = 0; i < nf; i++)
	{
		if (fn[i] || tn[i])
			continue;
		st->pairs[n].from = DatumGetInt64(fv[i]);
		st->pairs[n].to = DatumGetInt64(tv[i]);
		n++;
	}
	qsort(st->pairs, n, sizeof(WalkPair), pair_cmp);
	st->npairs = n;
}

/* the state of a walk writing into the function's result */
static WalkState *
walk_init(ReturnSetInfo *rsinfo, int ncols, const char *caller)
{
	WalkState  *st = palloc0(sizeof(WalkState));

	receiver_init(&st->pub, walk_receive);
	st->store = rsinfo->setResult;
	st->desc = rsinfo->setDesc;
	if (st->desc->natts != ncols)
		elog(ERROR, "%s: unexpected result type", caller);
	st->zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	st->cap = 64;
	st->ev = palloc(sizeof(WalkEvent) * st->cap);
	st->deal_cxt = AllocSetContextCreate(CurrentMemoryContext, "stage walk deal", ALLOCSET_SMALL_SIZES);
	return st;
}

Datum
stage_event_walk(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WalkState  *st;
	DealRange	range;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"as_of\" must not be null")));

	InitMaterializedSRF(fcinfo, 0);

	st = walk_init(rsinfo, WALK_OUT_COLS, "stage_event_walk");
	st->have_lo = !PG_ARGISNULL(1);
	st->lo = st->have_lo ? PG_GETARG_TIMESTAMPTZ(1) : 0;
	st->have_hi = !PG_ARGISNULL(2);
	st->hi = st->have_hi ? PG_GETARG_TIMESTAMPTZ(2) : 0;
	if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4))
		read_pairs(st, PG_GETARG_ARRAYTYPE_P(3), PG_GETARG_ARRAYTYPE_P(4));
	st->suspects = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);

	deal_range_init(&range, fcinfo, 6);
	history_query("stage_event_walk",
				  psprintf("SELECT e.opportunity_id, e.stage_event_id, e.stage_id, e.entered_at, e.rep_id, e.amount"
						   "  FROM %s.stage_event e"
						   " WHERE e.entered_at OPERATOR(pg_catalog.<=) $1"
						   DEAL_RANGE_COND("e")
						   " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
						   SALES_KPI_SCHEMA),
				  3, deal_range_types, range.values, (DestReceiver *) st, false);
	walk_flush(st);

	return (Datum) 0;
}

/*
 * stage_history_check(as_of, pair_from, pair_to, terminal_stages, first_id,
 *					   last_id): what data_quality_findings needs of the stage
 * history, in one pass over the deals, all their stage events and their
 * first snapshots together (three cursors in deal order, merged):
 *
 *	  - the rows of stage_event_walk(as_of, NULL, NULL, pair_from, pair_to,
 *		true), is_deal false;
 *	  - one row per deal created by as_of whose own row may break a rule,
 *		is_deal true: it has no stage event entered by as_of, or its first
 *		event was entered before it was created, or its closed_at disagrees
 *		with its current stage (closed but not in a stage listed in
 *		terminal_stages, or in such a stage but not closed), or, unless it
 *		has events after as_of, its stage_id, closed_at or stage_entered_at
 *		differ from what its newest event says, or its amount is negative,
 *		or it has no owner, or no snapshot at or before its creation.  With
 *		it come the newest event by as_of, the first event, whether it has
 *		events after as_of and the first snapshot; the rules themselves are
 *		checked again by the caller.
 *
 * Deal rows use the walk's columns opportunity_id, stage_id (the row's),
 * amount (the row's), first_entered_at and first_event_id.  A deal with no
 * event at all (by as_of or after) still gets its row checked.
 */
PG_FUNCTION_INFO_V1(stage_history_check);

static bool
id_listed(int64 *ids, int n, int64 id)
{
	int			i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* the deal's own checks, before walk_flush forgets its events */
static void
history_deal_row(WalkState *st, CursorRow *to, bool moved, bool have_snap, TimestampTz snap_at,
				 int64 *terminal, int nterminal)
{
	Datum	   *v = to->values;
	bool	   *n = to->nulls;
	bool		owner_null,
				amount_null,
				closed_null,
				stage_null,
				entered_null;
	int64		owner;
	Datum		amount;
	TimestampTz created,
				closed,
				entered;
	int64		stage;
	bool		have_ev = st->nev > 0;
	WalkEvent  *first = have_ev ? &st->ev[0] : NULL;
	WalkEvent  *newest = have_ev ? &st->ev[st->nev - 1] : NULL;
	bool		cur_terminal;
	bool		ev_terminal = have_ev && id_listed(terminal, nterminal, newest->stage);
	Datum		values[HISTORY_OUT_COLS];
	bool		nulls[HISTORY_OUT_COLS];

	/* (opportunity_id, owner_id, amount, created_at, closed_at, stage_id, stage_entered_at) */
	owner_null = n[1];
	owner = owner_null ? 0 : DatumGetInt64(v[1]);
	amount_null = n[2];
	amount = v[2];
	created = DatumGetTimestampTz(v[3]);
	closed_null = n[4];
	closed = closed_null ? 0 : DatumGetTimestampTz(v[4]);
	stage_null = n[5];
	stage = stage_null ? 0 : DatumGetInt64(v[5]);
	entered_null = n[6];
	entered = entered_null ? 0 : DatumGetTimestampTz(v[6]);
	cur_terminal = !stage_null && id_listed(terminal, nterminal, stage);

	if (!(!have_ev
		  || first->at < created
		  || (!closed_null && !cur_terminal)
		  || (closed_null && cur_terminal)
		  || (!moved && (stage_null || stage != newest->stage
						 || closed_null != !ev_terminal
						 || (!closed_null && closed != newest->at)
						 || entered_null || entered != newest->at))
		  || (!amount_null && DatumGetBool(DirectFunctionCall2(numeric_lt, amount, st->zero)))
		  || owner_null
		  || !have_snap || snap_at > created))
		return;

	memset(values, 0, sizeof(values));
	memset(nulls, true, sizeof(nulls));
	values[1] = Int64GetDatum(st->opp);
	nulls[1] = false;
	values[2] = Int64GetDatum(stage);
	nulls[2] = stage_null;
	values[4] = amount;
	nulls[4] = amount_null;
	if (have_ev)
	{
		values[10] = TimestampTzGetDatum(first->at);
		values[11] = Int64GetDatum(first->id);
		nulls[10] = nulls[11] = false;
	}
	values[WALK_OUT_COLS] = BoolGetDatum(true);
	nulls[WALK_OUT_COLS] = false;
	values[WALK_OUT_COLS + 1] = Int64GetDatum(owner);
	nulls[WALK_OUT_COLS + 1] = owner_null;
	values[WALK_OUT_COLS + 2] = TimestampTzGetDatum(created);
	nulls[WALK_OUT_COLS + 2] = false;
	values[WALK_OUT_COLS + 3] = TimestampTzGetDatum(closed);
	nulls[WALK_OUT_COLS + 3] = closed_null;
	if (have_ev)
	{
		values[WALK_OUT_COLS + 4] = Int64GetDatum(newest->stage);
		values[WALK_OUT_COLS + 5] = TimestampTzGetDatum(newest->at);
		nulls[WALK_OUT_COLS + 4] = nulls[WALK_OUT_COLS + 5] = false;
	}
	values[WALK_OUT_COLS + 6] = BoolGetDatum(moved);
	nulls[WALK_OUT_COLS + 6] = false;
	values[WALK_OUT_COLS + 7] = TimestampTzGetDatum(snap_at);
	nulls[WALK_OUT_COLS + 7] = !have_snap;
	values[WALK_OUT_COLS + 8] = TimestampTzGetDatum(entered);
	nulls[WALK_OUT_COLS + 8] = entered_null;
	tuplestore_putvalues(st->store, st->desc, values, nulls);
}

Datum
stage_history_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz as_of;
	WalkState  *st;
	HistoryCursor	co,
				ce,
				ch;
	int64	   *terminal;
	int			nterminal = 0;
	DealRange	range;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"as_of\" must not be null")));
	as_of = PG_GETARG_TIMESTAMPTZ(0);
	InitMaterializedSRF(fcinfo, 0);
	st = walk_init(rsinfo, HISTORY_OUT_COLS, "stage_history_check");
	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		read_pairs(st, PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2));
	st->suspects = true;
	{
		Datum	   *v;
		bool	   *nl;
		int			n,
					i;

		if (PG_ARGISNULL(3))
			n = 0, v = NULL, nl = NULL;
		else
			deconstruct_array(PG_GETARG_ARRAYTYPE_P(3), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
							  &v, &nl, &n);
		terminal = palloc(sizeof(int64) * Max(n, 1));
		for (i = 0; i < n; i++)
			if (!nl[i])
				terminal[nterminal++] = DatumGetInt64(v[i]);
	}
	deal_range_init(&range, fcinfo, 4);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	history_cursor_open(&co, psprintf("SELECT o.opportunity_id, o.owner_id, o.amount, o.created_at, o.closed_at,"
										  "       o.stage_id, o.stage_entered_at"
										  "  FROM %s.opportunity o"
										  " WHERE o.created_at OPERATOR(pg_catalog.<=) $1"
										  DEAL_RANGE_COND("o")
										  " ORDER BY o.opportunity_id",
										  SALES_KPI_SCHEMA),
								 &range);
	/* every event, those after as_of too: they excuse a row running ahead */
	history_cursor_open(&ce, psprintf("SELECT e.opportunity_id, e.stage_event_id, e.stage_id, e.entered_at,"
										  "       e.rep_id, e.amount"
										  "  FROM %s.stage_event e"
										  " WHERE $1 IS NOT NULL"
										  DEAL_RANGE_COND("e")
										  " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
										  SALES_KPI_SCHEMA),
								 &range);
	/* the first snapshot of each deal, whenever it was taken */
	history_cursor_open(&ch, psprintf("SELECT DISTINCT ON (h.opportunity_id) h.opportunity_id, h.changed_at"
										  "  FROM %s.opportunity_history h"
										  " WHERE $1 IS NOT NULL"
										  DEAL_RANGE_COND("h")
										  " ORDER BY h.opportunity_id, h.changed_at",
										  SALES_KPI_SCHEMA),
								 &range);
	for (;;)
	{
		CursorRow  *to = history_cursor_peek(&co);
		CursorRow  *te = history_cursor_peek(&ce);
		CursorRow  *th;
		bool		moved = false;
		bool		have_snap = false;
		TimestampTz snap_at = 0;

		CHECK_FOR_INTERRUPTS();
		if (to == NULL && te == NULL)
			break;
		/* the next deal: the smaller id of the deal and event cursors */
		if (te == NULL || (to != NULL && history_cursor_opp(to) <= history_cursor_opp(te)))
			st->opp = history_cursor_opp(to);
		else
			st->opp = history_cursor_opp(te);

		/* its events; those after as_of only say that it moved since */
		while ((te = history_cursor_peek(&ce)) != NULL && history_cursor_opp(te) == st->opp)
		{
			Datum	   *v = te->values;
			bool	   *n = te->nulls;

			if (DatumGetTimestampTz(v[3]) > as_of)
				moved = true;
			else
				walk_add(st, DatumGetInt64(v[1]), DatumGetInt64(v[2]), DatumGetTimestampTz(v[3]),
						 n[4], n[4] ? 0 : DatumGetInt64(v[4]), n[5], v[5]);
			history_cursor_next(&ce);
		}

		/* the deal's own row, if it was created by as_of */
		if (to != NULL && history_cursor_opp(to) == st->opp)
		{
			while ((th = history_cursor_peek(&ch)) != NULL && history_cursor_opp(th) <= st->opp)
			{
				if (history_cursor_opp(th) == st->opp)
				{
					have_snap = true;
					snap_at = DatumGetTimestampTz(th->values[1]);
				}
				history_cursor_next(&ch);
			}
			history_deal_row(st, to, moved, have_snap, snap_at, terminal, nterminal);
			history_cursor_next(&co);
		}
		walk_flush(st);
	}
	SPI_cursor_close(co.portal);
	SPI_cursor_close(ce.portal);
	SPI_cursor_close(ch.portal);
	SPI_finish();

	return (Datum) 0;
}

