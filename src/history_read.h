/*-------------------------------------------------------------------------
 *
 * history_read.h
 *	  Reading the extension's history tables from C: a range of deals, one
 *	  query's rows sent to a receiver one at a time, and cursors read in
 *	  batches into arrays of values (for passes that merge several tables
 *	  in deal order).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_HISTORY_READ_H
#define SALES_KPI_HISTORY_READ_H

#include "fmgr.h"
#include "tcop/dest.h"
#include "utils/portal.h"

#include "schemas.h"

/*
 * The deals a call reads: opportunity_id between the arguments first_id and
 * last_id (inclusive; null is unbounded), so that a query can read ranges
 * of the deals in parallel workers.
 */
typedef struct DealRange
{
	Datum		values[3];		/* as_of, first_id, last_id: the query's $1..$3 */
} DealRange;

extern const Oid deal_range_types[3];

/*
 * The condition of a query over a range of deals, for a table alias.  Its
 * operators are schema-qualified, as in every query the C code runs: the
 * queries run under the caller's search_path.
 */
#define DEAL_RANGE_COND(alias) \
	" AND " alias ".opportunity_id OPERATOR(pg_catalog.>=) $2" \
	" AND " alias ".opportunity_id OPERATOR(pg_catalog.<=) $3"


extern void deal_range_init(DealRange *r, FunctionCallInfo fcinfo, int first_arg);
extern void receiver_init(DestReceiver *pub, bool (*receive) (TupleTableSlot *slot, DestReceiver *self));
extern void history_query(const char *caller, const char *query, int nargs, const Oid *types,
						  const Datum *values, DestReceiver *dest, bool by_index);

/* a cursor read in batches straight into arrays of values */
#define HISTORY_BATCH 4096
#define HISTORY_MAXCOLS 8

typedef struct CursorRow
{
	Datum		values[HISTORY_MAXCOLS];
	bool		nulls[HISTORY_MAXCOLS];
} CursorRow;

typedef struct HistoryCursor
{
	DestReceiver pub;			/* must be first */
	Portal		portal;
	MemoryContext batch_cxt;	/* by-reference values of the batch */
	CursorRow  *rows;			/* HISTORY_BATCH of them */
	uint64		n;
	uint64		i;
	bool		done;
} HistoryCursor;

extern void history_cursor_open(HistoryCursor *c, const char *query, DealRange *range);
extern CursorRow *history_cursor_peek(HistoryCursor *c);

/* past the row history_cursor_peek() gave (its values stay valid until the next peek) */
static inline void
history_cursor_next(HistoryCursor *c)
{
	c->i++;
}

/* the deal of a cursor row: its first column */
static inline int64
history_cursor_opp(CursorRow *row)
{
	return DatumGetInt64(row->values[0]);
}

#endif							/* SALES_KPI_HISTORY_READ_H */
