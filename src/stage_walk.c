/*-------------------------------------------------------------------------
 *
 * stage_walk.c
 *	  stage_event_walk(as_of, from_at, to_at, pair_from, pair_to, suspects):
 *	  one ordered pass over the stage history, returning the few events a
 *	  process-health KPI looks at, each with what a window over its deal
 *	  would say about it; gate_move_violations(...): the same pass over the
 *	  history and the milestone completions, returning the gated moves that
 *	  left a required milestone incomplete; stage_history_check(...): the
 *	  walk's events and, in the same pass with the deals and their first
 *	  snapshots, the deals whose own row disagrees with their history;
 *	  stage_stays(...) / stage_stay_totals(...): the stays of a list of
 *	  deals (see below).
 *
 * The history is read once, deal by deal in the order of the index
 * stage_event (opportunity_id, entered_at, stage_event_id), through SPI
 * into a receiver that keeps one deal's events at a time (or, when other
 * tables are merged in, through cursors fetched in batches into arrays of
 * values): no window
 * function runs over every event (each one re-reads its partition from a
 * tuplestore, which costs far more than the scan), and only the events
 * asked for reach the result.  For every event entered by as_of it knows
 * the previous event of the deal (prev_stage_id, prev_entered_at), the
 * smallest stage_event_id of the later events (min_later_id: smaller than
 * its own when an event recorded before it was entered later), whether it
 * is the deal's newest event, and the deal's first event.
 *
 * An event is returned when it was entered in [from_at, to_at) (a null
 * bound is open) and
 *	  - the move that led to it, (prev_stage_id, stage_id), is one of the
 *		pairs (pair_from[i], pair_to[i]), or
 *	  - suspects is true and it is an event recorded before an event
 *		entered later (min_later_id < its id), or its amount is negative,
 *		or it was entered in the same instant as the previous event.
 *
 * The passes over the whole history take a range of deal ids, so that a
 * query can read halves of the deals in parallel workers.  The queries run
 * with the caller's privileges, so permissions and row security apply as to
 * any query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "tcop/pquery.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

/*
 * The deals a call reads: opportunity_id between the arguments first_id and
 * last_id (inclusive; null is unbounded).  The KPI queries split the deals
 * into ranges and read them in parallel workers.
 */
typedef struct DealRange
{
	Datum		values[3];		/* as_of, first_id, last_id: the query's $1..$3 */
} DealRange;

static void
deal_range_init(DealRange *r, FunctionCallInfo fcinfo, int first_arg)
{
	r->values[0] = PG_GETARG_DATUM(0);
	r->values[1] = PG_ARGISNULL(first_arg) ? Int64GetDatum(PG_INT64_MIN) : PG_GETARG_DATUM(first_arg);
	r->values[2] = PG_ARGISNULL(first_arg + 1) ? Int64GetDatum(PG_INT64_MAX) : PG_GETARG_DATUM(first_arg + 1);
}

static const Oid deal_range_types[3] = {TIMESTAMPTZOID, INT8OID, INT8OID};

/* the schema of the calling function, quoted: the extension's tables are there */
static const char *
extension_schema(FunctionCallInfo fcinfo)
{
	return quote_identifier(get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid)));
}

/*
 * Run a read-only query planned for the given parameter values, its rows
 * going to dest one at a time (nothing is collected in between).  With
 * by_index, the query is planned without sequential scans: a list of deals
 * is read through the index in its order, where the planner would rather
 * scan and sort the whole table (twice as slow for a tenth of the deals).
 */
static void
history_query(const char *caller, const char *query, int nargs, const Oid *types, const Datum *values,
			  DestReceiver *dest, bool by_index)
{
	ParamListInfo params = makeParamList(nargs);
	SPIExecuteOptions options;
	int			save_nestlevel = 0;
	int			rc;
	int			i;

	for (i = 0; i < nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = dest;
	if (by_index)
	{
		/* for this query only, as RI_Initial_Check sets work_mem */
		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_indexscan", "on", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_extended(query, &options);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "%s: reading the stage history failed: %s", caller, SPI_result_code_string(rc));
	SPI_finish();
	if (by_index)
		AtEOXact_GUC(true, save_nestlevel);
}

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
walk_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
walk_shutdown(DestReceiver *self)
{
}

static void
walk_destroy(DestReceiver *self)
{
}

/* a receiver whose rows go to receive, one at a time */
static void
receiver_init(DestReceiver *pub, bool (*receive) (TupleTableSlot *slot, DestReceiver *self))
{
	pub->receiveSlot = receive;
	pub->rStartup = walk_startup;
	pub->rShutdown = walk_shutdown;
	pub->rDestroy = walk_destroy;
	/* anything but DestNone, which SPI takes for a discarded result */
	pub->mydest = DestTuplestore;
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
						   " WHERE e.entered_at <= $1 AND e.opportunity_id BETWEEN $2 AND $3"
						   " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
						   extension_schema(fcinfo)),
				  3, deal_range_types, range.values, (DestReceiver *) st, false);
	walk_flush(st);

	return (Datum) 0;
}

/*
 * gate_move_violations(as_of, from_at, to_at, gate_from, gate_to,
 *						gate_milestone, gate_label):
 *	  the gated moves entered in [from_at, to_at) (null: open) that left a
 *	  required milestone incomplete, in one ordered pass over the stage
 *	  history and the milestone completions together.
 *
 * The gate is given as parallel arrays: a move from stage gate_from[i] to
 * gate_to[i] needs milestone gate_milestone[i], named gate_label[i]; the
 * labels of a pair are listed in the order given.  For every event entered
 * by as_of whose move from the deal's previous event is such a pair, each
 * needed milestone is missing when the deal has no completion of it at or
 * before the move (completions after as_of are unknown); one row per move
 * with a missing milestone: the labels joined by ', ', how many are
 * missing and how many of those were completed later (by as_of).
 *
 * The stage history and the completions are read through two cursors, each
 * in deal order (a cursor's plan favours the index scans that give that
 * order), and merged deal by deal; a deal's events are put in (entered_at,
 * stage_event_id) order here whatever the order they came in.
 */
PG_FUNCTION_INFO_V1(gate_move_violations);

#define GATE_OUT_COLS 9

typedef struct GateRow
{
	int64		from;
	int64		to;
	int64		milestone;
	int			order;			/* position in the arguments */
	char	   *label;
} GateRow;

typedef struct GateEvent
{
	int64		id;
	int64		stage;
	TimestampTz at;
	int64		rep;
	bool		rep_null;
} GateEvent;

typedef struct GateDone
{
	int64		milestone;
	TimestampTz at;
} GateDone;

typedef struct GateState
{
	Tuplestorestate *store;
	TupleDesc	desc;
	bool		have_lo;
	bool		have_hi;
	TimestampTz lo;
	TimestampTz hi;
	GateRow    *gate;			/* sorted by (from, to, order) */
	int			ngate;
	bool		started;
	int64		opp;
	GateEvent  *ev;
	int			nev;
	int			evcap;
	GateDone   *done;
	int			ndone;
	int			donecap;
	StringInfoData labels;
} GateState;

static int
gate_row_cmp(const void *a, const void *b)
{
	const GateRow *x = a;
	const GateRow *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return x->order - y->order;
}

/* the first gate row of the pair, or -1 */
static int
gate_first(GateState *st, int64 from, int64 to)
{
	int			lo = 0,
				hi = st->ngate;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		GateRow    *g = &st->gate[mid];

		if (g->from < from || (g->from == from && g->to < to))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < st->ngate && st->gate[lo].from == from && st->gate[lo].to == to)
		return lo;
	return -1;
}

static void
gate_flush(GateState *st)
{
	int			i,
				j;

	/* the deal's events in (entered_at, stage_event_id) order: insertion
	 * sort, as they nearly always arrive in that order already */
	for (i = 1; i < st->nev; i++)
	{
		GateEvent	cur = st->ev[i];

		for (j = i - 1; j >= 0 &&
			 (st->ev[j].at > cur.at || (st->ev[j].at == cur.at && st->ev[j].id > cur.id)); j--)
			st->ev[j + 1] = st->ev[j];
		st->ev[j + 1] = cur;
	}
	for (i = 1; i < st->nev; i++)
	{
		GateEvent  *e = &st->ev[i];
		GateEvent  *p = &st->ev[i - 1];
		int			g;
		int64		missing = 0;
		int64		late = 0;

		if ((st->have_lo && e->at < st->lo) || (st->have_hi && e->at >= st->hi))
			continue;
		g = gate_first(st, p->stage, e->stage);
		if (g < 0)
			continue;
		resetStringInfo(&st->labels);
		for (; g < st->ngate && st->gate[g].from == p->stage && st->gate[g].to == e->stage; g++)
		{
			GateDone   *d = NULL;

			for (j = 0; j < st->ndone; j++)
				if (st->done[j].milestone == st->gate[g].milestone)
				{
					d = &st->done[j];
					break;
				}
			if (d != NULL && d->at <= e->at)
				continue;
			if (missing > 0)
				appendStringInfoString(&st->labels, ", ");
			appendStringInfoString(&st->labels, st->gate[g].label);
			missing++;
			if (d != NULL)
				late++;
		}
		if (missing > 0)
		{
			Datum		values[GATE_OUT_COLS];
			bool		nulls[GATE_OUT_COLS];

			memset(nulls, 0, sizeof(nulls));
			values[0] = Int64GetDatum(e->id);
			values[1] = Int64GetDatum(st->opp);
			values[2] = Int64GetDatum(p->stage);
			values[3] = Int64GetDatum(e->stage);
			values[4] = TimestampTzGetDatum(e->at);
			values[5] = Int64GetDatum(e->rep);
			nulls[5] = e->rep_null;
			values[6] = PointerGetDatum(cstring_to_text_with_len(st->labels.data, st->labels.len));
			values[7] = Int64GetDatum(missing);
			values[8] = Int64GetDatum(late);
			tuplestore_putvalues(st->store, st->desc, values, nulls);
			pfree(DatumGetPointer(values[6]));
		}
	}
	st->nev = 0;
	st->ndone = 0;
}

/*
 * A cursor read in batches straight into arrays of values: the portal's
 * rows go to a receiver that keeps their columns (by-reference values copied
 * into a context reset at each batch), so no tuple is formed and deformed
 * again per row as SPI_cursor_fetch would.
 */
#define GATE_BATCH 4096
#define GATE_MAXCOLS 8

typedef struct CursorRow
{
	Datum		values[GATE_MAXCOLS];
	bool		nulls[GATE_MAXCOLS];
} CursorRow;

typedef struct GateCursor
{
	DestReceiver pub;			/* must be first */
	Portal		portal;
	MemoryContext batch_cxt;	/* by-reference values of the batch */
	CursorRow  *rows;			/* GATE_BATCH of them */
	uint64		n;
	uint64		i;
	bool		done;
} GateCursor;

static bool
gate_cursor_receive(TupleTableSlot *slot, DestReceiver *self)
{
	GateCursor *c = (GateCursor *) self;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	CursorRow  *row = &c->rows[c->n++];
	int			natts = Min(desc->natts, GATE_MAXCOLS);
	int			k;

	slot_getallattrs(slot);
	for (k = 0; k < natts; k++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, k);

		row->nulls[k] = slot->tts_isnull[k];
		if (row->nulls[k] || att->attbyval)
			row->values[k] = slot->tts_values[k];
		else
		{
			MemoryContext old = MemoryContextSwitchTo(c->batch_cxt);

			row->values[k] = datumCopy(slot->tts_values[k], false, att->attlen);
			MemoryContextSwitchTo(old);
		}
	}
	return true;
}

/* the current row of the cursor, or NULL at its end */
static CursorRow *
gate_cursor_peek(GateCursor *c)
{
	while (!c->done && c->i >= c->n)
	{
		MemoryContextReset(c->batch_cxt);
		c->n = 0;
		c->i = 0;
		PortalRunFetch(c->portal, FETCH_FORWARD, GATE_BATCH, (DestReceiver *) c);
		if (c->n == 0)
			c->done = true;
	}
	return c->done ? NULL : &c->rows[c->i];
}

static int64
gate_cursor_opp(GateCursor *c, CursorRow *row)
{
	return DatumGetInt64(row->values[0]);
}

/* open a cursor on a query over a range of deals ($1 as_of, $2..$3 the ids) */
static void
gate_cursor_open(GateCursor *c, const char *query, DealRange *range)
{
	memset(c, 0, sizeof(GateCursor));
	receiver_init(&c->pub, gate_cursor_receive);
	c->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "stage walk cursor batch",
										 ALLOCSET_SMALL_SIZES);
	c->rows = palloc(sizeof(CursorRow) * GATE_BATCH);
	c->portal = SPI_cursor_open_with_args(NULL, query, 3, (Oid *) deal_range_types, range->values,
										  NULL, true, 0);
	if (c->portal == NULL)
		elog(ERROR, "could not open a cursor on the stage history: %s", SPI_result_code_string(SPI_result));
}

/*
 * Both cursors in deal order, merged: each deal's stage events
 * (opportunity_id, stage_event_id, stage_id, entered_at, rep_id) and
 * milestone completions (opportunity_id, milestone_id, completed_at).
 */
static void
gate_read(GateState *st, GateCursor *ce, GateCursor *cm)
{
	for (;;)
	{
		CursorRow  *te = gate_cursor_peek(ce);
		CursorRow  *tm = gate_cursor_peek(cm);
		int64		opp;

		CHECK_FOR_INTERRUPTS();
		if (te == NULL && tm == NULL)
			break;
		if (te == NULL)
			opp = gate_cursor_opp(cm, tm);
		else if (tm == NULL)
			opp = gate_cursor_opp(ce, te);
		else
			opp = Min(gate_cursor_opp(ce, te), gate_cursor_opp(cm, tm));
		if (st->started && opp <= st->opp)
			elog(ERROR, "gate_move_violations: history not in deal order");
		st->started = true;
		st->opp = opp;
		while (te != NULL && gate_cursor_opp(ce, te) == opp)
		{
			GateEvent  *e;

			if (st->nev == st->evcap)
			{
				st->evcap *= 2;
				st->ev = repalloc(st->ev, sizeof(GateEvent) * st->evcap);
			}
			e = &st->ev[st->nev++];
			e->id = DatumGetInt64(te->values[1]);
			e->stage = DatumGetInt64(te->values[2]);
			e->at = DatumGetTimestampTz(te->values[3]);
			e->rep_null = te->nulls[4];
			e->rep = e->rep_null ? 0 : DatumGetInt64(te->values[4]);
			ce->i++;
			te = gate_cursor_peek(ce);
		}
		while (tm != NULL && gate_cursor_opp(cm, tm) == opp)
		{
			GateDone   *g;

			if (st->ndone == st->donecap)
			{
				st->donecap *= 2;
				st->done = repalloc(st->done, sizeof(GateDone) * st->donecap);
			}
			g = &st->done[st->ndone++];
			g->milestone = DatumGetInt64(tm->values[1]);
			g->at = DatumGetTimestampTz(tm->values[2]);
			cm->i++;
			tm = gate_cursor_peek(cm);
		}
		gate_flush(st);
	}
}

static void
read_gate(GateState *st, ArrayType *from, ArrayType *to, ArrayType *milestone, ArrayType *label)
{
	Datum	   *fv,
			   *tv,
			   *mv,
			   *lv;
	bool	   *fn,
			   *tn,
			   *mn,
			   *ln;
	int			nf,
				nt,
				nm,
				nl,
				i,
				n = 0;

	deconstruct_array(from, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &fv, &fn, &nf);
	deconstruct_array(to, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &tv, &tn, &nt);
	deconstruct_array(milestone, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &mv, &mn, &nm);
	deconstruct_array(label, TEXTOID, -1, false, TYPALIGN_INT, &lv, &ln, &nl);
	if (nf != nt || nf != nm || nf != nl)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the gate arrays must have the same length")));
	st->gate = palloc(sizeof(GateRow) * Max(nf, 1));
	for (i = 0; i < nf; i++)
	{
		if (fn[i] || tn[i] || mn[i])
			continue;
		st->gate[n].from = DatumGetInt64(fv[i]);
		st->gate[n].to = DatumGetInt64(tv[i]);
		st->gate[n].milestone = DatumGetInt64(mv[i]);
		st->gate[n].order = i;
		st->gate[n].label = ln[i] ? "" : TextDatumGetCString(lv[i]);
		n++;
	}
	qsort(st->gate, n, sizeof(GateRow), gate_row_cmp);
	st->ngate = n;
}

Datum
gate_move_violations(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GateState  *st;
	const char *schema;
	GateCursor	ce;
	GateCursor	cm;
	DealRange	range;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"as_of\" must not be null")));
	for (i = 3; i <= 6; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the gate arrays must not be null")));

	InitMaterializedSRF(fcinfo, 0);

	st = palloc0(sizeof(GateState));
	st->store = rsinfo->setResult;
	st->desc = rsinfo->setDesc;
	if (st->desc->natts != GATE_OUT_COLS)
		elog(ERROR, "gate_move_violations: unexpected result type");
	st->have_lo = !PG_ARGISNULL(1);
	st->lo = st->have_lo ? PG_GETARG_TIMESTAMPTZ(1) : 0;
	st->have_hi = !PG_ARGISNULL(2);
	st->hi = st->have_hi ? PG_GETARG_TIMESTAMPTZ(2) : 0;
	read_gate(st, PG_GETARG_ARRAYTYPE_P(3), PG_GETARG_ARRAYTYPE_P(4), PG_GETARG_ARRAYTYPE_P(5),
			  PG_GETARG_ARRAYTYPE_P(6));
	st->evcap = 64;
	st->ev = palloc(sizeof(GateEvent) * st->evcap);
	st->donecap = 64;
	st->done = palloc(sizeof(GateDone) * st->donecap);
	initStringInfo(&st->labels);
	deal_range_init(&range, fcinfo, 7);

	schema = extension_schema(fcinfo);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	gate_cursor_open(&ce, psprintf("SELECT e.opportunity_id, e.stage_event_id, e.stage_id, e.entered_at, e.rep_id"
										  "  FROM %s.stage_event e"
										  " WHERE e.entered_at <= $1 AND e.opportunity_id BETWEEN $2 AND $3"
										  " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
										  schema),
								 &range);
	gate_cursor_open(&cm, psprintf("SELECT m.opportunity_id, m.milestone_id, m.completed_at"
										  "  FROM %s.milestone_event m"
										  " WHERE m.completed_at <= $1 AND m.opportunity_id BETWEEN $2 AND $3"
										  " ORDER BY m.opportunity_id, m.milestone_id",
										  schema),
								 &range);
	gate_read(st, &ce, &cm);
	SPI_cursor_close(ce.portal);
	SPI_cursor_close(cm.portal);
	SPI_finish();

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
	const char *schema;
	WalkState  *st;
	GateCursor	co,
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

	schema = extension_schema(fcinfo);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	gate_cursor_open(&co, psprintf("SELECT o.opportunity_id, o.owner_id, o.amount, o.created_at, o.closed_at,"
										  "       o.stage_id, o.stage_entered_at"
										  "  FROM %s.opportunity o"
										  " WHERE o.created_at <= $1 AND o.opportunity_id BETWEEN $2 AND $3"
										  " ORDER BY o.opportunity_id",
										  schema),
								 &range);
	/* every event, those after as_of too: they excuse a row running ahead */
	gate_cursor_open(&ce, psprintf("SELECT e.opportunity_id, e.stage_event_id, e.stage_id, e.entered_at,"
										  "       e.rep_id, e.amount"
										  "  FROM %s.stage_event e"
										  " WHERE $1 IS NOT NULL AND e.opportunity_id BETWEEN $2 AND $3"
										  " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
										  schema),
								 &range);
	/* the first snapshot of each deal, whenever it was taken */
	gate_cursor_open(&ch, psprintf("SELECT DISTINCT ON (h.opportunity_id) h.opportunity_id, h.changed_at"
										  "  FROM %s.opportunity_history h"
										  " WHERE $1 IS NOT NULL AND h.opportunity_id BETWEEN $2 AND $3"
										  " ORDER BY h.opportunity_id, h.changed_at",
										  schema),
								 &range);
	for (;;)
	{
		CursorRow  *to = gate_cursor_peek(&co);
		CursorRow  *te = gate_cursor_peek(&ce);
		CursorRow  *th;
		bool		moved = false;
		bool		have_snap = false;
		TimestampTz snap_at = 0;

		CHECK_FOR_INTERRUPTS();
		if (to == NULL && te == NULL)
			break;
		/* the next deal: the smaller id of the deal and event cursors */
		if (te == NULL || (to != NULL && gate_cursor_opp(&co, to) <= gate_cursor_opp(&ce, te)))
			st->opp = gate_cursor_opp(&co, to);
		else
			st->opp = gate_cursor_opp(&ce, te);

		/* its events; those after as_of only say that it moved since */
		while ((te = gate_cursor_peek(&ce)) != NULL && gate_cursor_opp(&ce, te) == st->opp)
		{
			Datum	   *v = te->values;
			bool	   *n = te->nulls;

			if (DatumGetTimestampTz(v[3]) > as_of)
				moved = true;
			else
				walk_add(st, DatumGetInt64(v[1]), DatumGetInt64(v[2]), DatumGetTimestampTz(v[3]),
						 n[4], n[4] ? 0 : DatumGetInt64(v[4]), n[5], v[5]);
			ce.i++;
		}

		/* the deal's own row, if it was created by as_of */
		if (to != NULL && gate_cursor_opp(&co, to) == st->opp)
		{
			while ((th = gate_cursor_peek(&ch)) != NULL && gate_cursor_opp(&ch, th) <= st->opp)
			{
				if (gate_cursor_opp(&ch, th) == st->opp)
				{
					have_snap = true;
					snap_at = DatumGetTimestampTz(th->values[1]);
				}
				ch.i++;
			}
			history_deal_row(st, to, moved, have_snap, snap_at, terminal, nterminal);
			co.i++;
		}
		walk_flush(st);
	}
	SPI_cursor_close(co.portal);
	SPI_cursor_close(ce.portal);
	SPI_cursor_close(ch.portal);
	SPI_finish();

	return (Datum) 0;
}

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
						   " WHERE e.opportunity_id = ANY ($2) AND e.entered_at <= $1"
						   " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
						   extension_schema(fcinfo)),
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
