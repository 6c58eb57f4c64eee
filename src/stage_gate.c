/*-------------------------------------------------------------------------
 *
 * stage_gate.c
 *	  gate_move_violations(...): the gated moves of the stage history that
 *	  left a required milestone incomplete, in one ordered pass over the
 *	  history and the milestone completions (see below).
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "history_read.h"

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
 * Both cursors in deal order, merged: each deal's stage events
 * (opportunity_id, stage_event_id, stage_id, entered_at, rep_id) and
 * milestone completions (opportunity_id, milestone_id, completed_at).
 */
static void
gate_read(GateState *st, HistoryCursor *ce, HistoryCursor *cm)
{
	for (;;)
	{
		CursorRow  *te = history_cursor_peek(ce);
		CursorRow  *tm = history_cursor_peek(cm);
		int64		opp;

		CHECK_FOR_INTERRUPTS();
		if (te == NULL && tm == NULL)
			break;
		if (te == NULL)
			opp = history_cursor_opp(tm);
		else if (tm == NULL)
			opp = history_cursor_opp(te);
		else
			opp = Min(history_cursor_opp(te), history_cursor_opp(tm));
		if (st->started && opp <= st->opp)
			elog(ERROR, "gate_move_violations: history not in deal order");
		st->started = true;
		st->opp = opp;
		while (te != NULL && history_cursor_opp(te) == opp)
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
			history_cursor_next(ce);
			te = history_cursor_peek(ce);
		}
		while (tm != NULL && history_cursor_opp(tm) == opp)
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
			history_cursor_next(cm);
			tm = history_cursor_peek(cm);
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
	HistoryCursor	ce;
	HistoryCursor	cm;
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	history_cursor_open(&ce, psprintf("SELECT e.opportunity_id, e.stage_event_id, e.stage_id, e.entered_at, e.rep_id"
										  "  FROM %s.stage_event e"
										  " WHERE e.entered_at OPERATOR(pg_catalog.<=) $1"
										  DEAL_RANGE_COND("e")
										  " ORDER BY e.opportunity_id, e.entered_at, e.stage_event_id",
										  SALES_KPI_SCHEMA),
								 &range);
	history_cursor_open(&cm, psprintf("SELECT m.opportunity_id, m.milestone_id, m.completed_at"
										  "  FROM %s.milestone_event m"
										  " WHERE m.completed_at OPERATOR(pg_catalog.<=) $1"
										  DEAL_RANGE_COND("m")
										  " ORDER BY m.opportunity_id, m.milestone_id",
										  SALES_KPI_SCHEMA),
								 &range);
	gate_read(st, &ce, &cm);
	SPI_cursor_close(ce.portal);
	SPI_cursor_close(cm.portal);
	SPI_finish();

	return (Datum) 0;
}

