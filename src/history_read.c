/*-------------------------------------------------------------------------
 *
 * history_read.c
 *	  Reading the extension's history tables from C (see history_read.h):
 *	  the passes of stage_walk.c, stage_gate.c and stage_stays.c read
 *	  through these.
 *
 * Every query runs with the caller's privileges, so permissions and row
 * security apply as to any query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "history_read.h"

/* the range of deals named by the arguments first_arg and first_arg + 1 */
void
deal_range_init(DealRange *r, FunctionCallInfo fcinfo, int first_arg)
{
	r->values[0] = PG_GETARG_DATUM(0);
	r->values[1] = PG_ARGISNULL(first_arg) ? Int64GetDatum(PG_INT64_MIN) : PG_GETARG_DATUM(first_arg);
	r->values[2] = PG_ARGISNULL(first_arg + 1) ? Int64GetDatum(PG_INT64_MAX) : PG_GETARG_DATUM(first_arg + 1);
}

const Oid deal_range_types[3] = {TIMESTAMPTZOID, INT8OID, INT8OID};

/*
 * Run a read-only query planned for the given parameter values, its rows
 * going to dest one at a time (nothing is collected in between).  With
 * by_index, the query is planned without sequential scans: a list of deals
 * is read through the index in its order, where the planner would rather
 * scan and sort the whole table (twice as slow for a tenth of the deals).
 */
void
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

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
receiver_shutdown(DestReceiver *self)
{
}

static void
receiver_destroy(DestReceiver *self)
{
}

/* a receiver whose rows go to receive, one at a time */
void
receiver_init(DestReceiver *pub, bool (*receive) (TupleTableSlot *slot, DestReceiver *self))
{
	pub->receiveSlot = receive;
	pub->rStartup = receiver_startup;
	pub->rShutdown = receiver_shutdown;
	pub->rDestroy = receiver_destroy;
	/* anything but DestNone, which SPI takes for a discarded result */
	pub->mydest = DestTuplestore;
}

/*
 * A cursor read in batches straight into arrays of values: the portal's
 * rows go to a receiver that keeps their columns (by-reference values copied
 * into a context reset at each batch), so no tuple is formed and deformed
 * again per row as SPI_cursor_fetch would.
 */
static bool
history_cursor_receive(TupleTableSlot *slot, DestReceiver *self)
{
	HistoryCursor *c = (HistoryCursor *) self;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	CursorRow  *row = &c->rows[c->n++];
	int			natts = Min(desc->natts, HISTORY_MAXCOLS);
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
CursorRow *
history_cursor_peek(HistoryCursor *c)
{
	while (!c->done && c->i >= c->n)
	{
		MemoryContextReset(c->batch_cxt);
		c->n = 0;
		c->i = 0;
		PortalRunFetch(c->portal, FETCH_FORWARD, HISTORY_BATCH, (DestReceiver *) c);
		if (c->n == 0)
			c->done = true;
	}
	return c->done ? NULL : &c->rows[c->i];
}

/* open a cursor on a query over a range of deals ($1 as_of, $2..$3 the ids) */
void
history_cursor_open(HistoryCursor *c, const char *query, DealRange *range)
{
	memset(c, 0, sizeof(HistoryCursor));
	receiver_init(&c->pub, history_cursor_receive);
	c->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "stage walk cursor batch",
										 ALLOCSET_SMALL_SIZES);
	c->rows = palloc(sizeof(CursorRow) * HISTORY_BATCH);
	c->portal = SPI_cursor_open_with_args(NULL, query, 3, (Oid *) deal_range_types, range->values,
										  NULL, true, 0);
	if (c->portal == NULL)
		elog(ERROR, "could not open a cursor on the stage history: %s", SPI_result_code_string(SPI_result));
}

