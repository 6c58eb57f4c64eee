/*-------------------------------------------------------------------------
 *
 * history_replace.c
 *	  The BEFORE INSERT row trigger of opportunity_history: a snapshot
 *	  inserted for an instant that already has one replaces it.
 *
 * It runs for every history row written, so it must cost the same whatever
 * the table's size.  A PL/pgSQL version kept the plan of its UPDATE from
 * its first runs, when a restore's table is empty: a sequential scan, then
 * run for every row (quadratic); forcing the index needed function-level
 * SET clauses, which cost more than the rest of the insert.  Here the
 * primary key is probed directly (no planner), and only when a snapshot
 * exists at that instant is it replaced, by an UPDATE through SPI, so that
 * row-level security and the table's own triggers apply as for any update.
 * The UPDATE finds the row by its tuple id as well as its key, a plan that
 * is a TID scan whatever the table's size.
 *
 * The probe sees the transaction's own rows, those of the inserting
 * statement included (a second row for the same instant in one COPY
 * replaces the first, as the SPI UPDATE would find it), and every
 * committed row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_index.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* the columns the UPDATE sets, then the key, then the tuple id */
#define N_SET_COLUMNS	4
static const char *const set_columns[N_SET_COLUMNS] = {
	"amount", "expected_close", "forecast_category", "owner_id"
};

/*
 * Where the trigger finds what it needs in the table: looked up at the
 * first row and kept for the session, so that a row costs no name look-up.
 * It is found again when the table, its primary key or its number of
 * columns is another (the extension dropped and created again, a rebuilt
 * key).
 */
typedef struct HistoryLayout
{
	Oid			relid;
	Oid			indexoid;		/* the primary key (opportunity_id, changed_at) */
	int			natts;
	int			id_att;
	int			at_att;
	int			set_att[N_SET_COLUMNS];
	SPIPlanPtr	replace;		/* the UPDATE that replaces a snapshot */
} HistoryLayout;

static HistoryLayout layout;

static int
column_number(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: the table has no column \"%s\"", name)));
	return attnum;
}

/* The UPDATE that replaces a snapshot, by key and tuple id. */
static SPIPlanPtr
prepare_replace(Relation rel, TupleDesc tupdesc)
{
	StringInfoData sql;
	Oid			argtypes[N_SET_COLUMNS + 3];
	SPIPlanPtr	plan;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s.%s h SET ",
					 quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
					 quote_identifier(RelationGetRelationName(rel)));
	for (i = 0; i < N_SET_COLUMNS; i++)
	{
		appendStringInfo(&sql, "%s%s = $%d", i > 0 ? ", " : "",
						 quote_identifier(set_columns[i]), i + 1);
		argtypes[i] = SPI_gettypeid(tupdesc, layout.set_att[i]);
	}
	appendStringInfo(&sql,
					 " WHERE h.opportunity_id OPERATOR(pg_catalog.=) $%d"
					 " AND h.changed_at OPERATOR(pg_catalog.=) $%d"
					 " AND h.ctid OPERATOR(pg_catalog.=) $%d",
					 N_SET_COLUMNS + 1, N_SET_COLUMNS + 2, N_SET_COLUMNS + 3);
	argtypes[N_SET_COLUMNS] = INT8OID;
	argtypes[N_SET_COLUMNS + 1] = TIMESTAMPTZOID;
	argtypes[N_SET_COLUMNS + 2] = TIDOID;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql.data, N_SET_COLUMNS + 3, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	SPI_finish();
	pfree(sql.data);
	return plan;
}

/* The layout of the trigger's table, checked and looked up when it changed. */
static const HistoryLayout *
history_layout(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			indexoid = RelationGetPrimaryKeyIndex(rel);
	Relation	idxrel;
	bool		key_ok;
	int			i;

	if (layout.relid == RelationGetRelid(rel) && layout.indexoid == indexoid &&
		layout.natts == tupdesc->natts)
		return &layout;

	layout.relid = InvalidOid;	/* until complete */
	if (layout.replace != NULL)
		SPI_freeplan(layout.replace);
	layout.replace = NULL;

	layout.id_att = column_number(tupdesc, "opportunity_id");
	layout.at_att = column_number(tupdesc, "changed_at");
	if (SPI_gettypeid(tupdesc, layout.id_att) != INT8OID ||
		SPI_gettypeid(tupdesc, layout.at_att) != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: opportunity_id must be bigint and changed_at timestamptz")));
	for (i = 0; i < N_SET_COLUMNS; i++)
		layout.set_att[i] = column_number(tupdesc, set_columns[i]);

	if (!OidIsValid(indexoid))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: table \"%s\" has no primary key",
						RelationGetRelationName(rel))));
	idxrel = index_open(indexoid, AccessShareLock);
	key_ok = idxrel->rd_index->indnkeyatts == 2 &&
		idxrel->rd_index->indkey.values[0] == layout.id_att &&
		idxrel->rd_index->indkey.values[1] == layout.at_att;
	index_close(idxrel, AccessShareLock);
	if (!key_ok)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: the primary key of \"%s\" must be (opportunity_id, changed_at)",
						RelationGetRelationName(rel))));

	layout.replace = prepare_replace(rel, tupdesc);
	layout.indexoid = indexoid;
	layout.natts = tupdesc->natts;
	layout.relid = RelationGetRelid(rel);
	return &layout;
}

/* Is there a row at (opportunity_id, changed_at)?  Sets *tid to it. */
static bool
find_snapshot(Relation rel, const HistoryLayout *lay, Datum id, Datum at,
			  ItemPointer tid)
{
	Relation	idxrel = index_open(lay->indexoid, AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData key[2];
	TupleTableSlot *slot;
	bool		found;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, id);
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_TIMESTAMP_EQ, at);

	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idxrel, SnapshotSelf, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		*tid = slot->tts_tid;
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idxrel, AccessShareLock);
	return found;
}

PG_FUNCTION_INFO_V1(opportunity_history_before_insert);
Datum
opportunity_history_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	const HistoryLayout *lay;
	Datum		id;
	Datum		at;
	bool		id_null;
	bool		at_null;
	ItemPointerData tid;
	Datum		values[N_SET_COLUMNS + 3];
	char		nulls[N_SET_COLUMNS + 3];
	uint64		replaced;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: not called by the trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("opportunity_history_before_insert: must be fired before insert, for each row")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	tuple = trigdata->tg_trigtuple;
	lay = history_layout(rel);

	id = heap_getattr(tuple, lay->id_att, tupdesc, &id_null);
	at = heap_getattr(tuple, lay->at_att, tupdesc, &at_null);
	/* a null key is refused by the table's NOT NULL constraints */
	if (id_null || at_null || !find_snapshot(rel, lay, id, at, &tid))
		return PointerGetDatum(tuple);

	for (i = 0; i < N_SET_COLUMNS; i++)
	{
		bool		isnull;

		values[i] = heap_getattr(tuple, lay->set_att[i], tupdesc, &isnull);
		nulls[i] = isnull ? 'n' : ' ';
	}
	values[N_SET_COLUMNS] = id;
	values[N_SET_COLUMNS + 1] = at;
	values[N_SET_COLUMNS + 2] = PointerGetDatum(&tid);
	nulls[N_SET_COLUMNS] = nulls[N_SET_COLUMNS + 1] = nulls[N_SET_COLUMNS + 2] = ' ';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(lay->replace, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not replace a snapshot of opportunity %lld",
			 (long long) DatumGetInt64(id));
	replaced = SPI_processed;
	SPI_finish();

	/*
	 * Replaced: the row is not inserted.  Not replaced (row-level security
	 * hides the row, or a concurrent transaction moved it): insert, and let
	 * the policy or the unique key refuse it.
	 */
	return replaced > 0 ? PointerGetDatum(NULL) : PointerGetDatum(tuple);
}
