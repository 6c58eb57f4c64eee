/*-------------------------------------------------------------------------
 *
 * stage_sync.c
 *	  The common case of the triggers that keep a deal's stage fields in
 *	  step with its stage history: a move costs a few index probes.
 *
 * A move (move_stage, or a CRM inserting a stage event) sets off a chain of
 * triggers.  Written in PL/pgSQL the chain ran about twenty statements, each
 * with its own executor start-up, and those start-ups were most of a move's
 * time.  Here:
 *
 *	- sync_opportunity_stage(ids) reads the newest event of each deal and
 *	  updates the deals whose stage fields say something else; while its
 *	  UPDATE runs it vouches for the values it writes;
 *	- stage_event_after_insert reads the inserted events from the transition
 *	  table itself, locks their deals, checks that each event's stage is in
 *	  its deal's pipeline and syncs the deals.  A deal the lock does not
 *	  return (row security hid it once a concurrent change committed) fails
 *	  the statement with a serialization failure.  Events dated ahead of now, a
 *	  stage of another pipeline and a pipeline with stage gates on are left
 *	  to stage_event_after_insert_general(), the PL/pgSQL trigger that
 *	  handles every case (and raises the errors);
 *	- opportunity_after_update compares each updated row with its old
 *	  version.  When no row changed a field that a check or a snapshot
 *	  depends on, or a row changed only its stage fields, to the values the
 *	  sync vouches for, there is nothing to do; otherwise
 *	  opportunity_after_update_general() runs, the PL/pgSQL trigger that
 *	  checks the rows and takes the snapshots.
 *
 * Comparisons are binary: a value stored in another form (a numeric with
 * another scale) counts as changed, which only sends the statement to the
 * general trigger.  Every query is schema-qualified and prepared once per
 * session with a generic plan that probes by deal id, so its cost does not
 * depend on the tables' sizes and nothing is planned per move.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "schemas.h"

PG_FUNCTION_INFO_V1(sync_opportunity_stage);
PG_FUNCTION_INFO_V1(stage_event_after_insert);
PG_FUNCTION_INFO_V1(opportunity_after_update);

/*
 * The queries, prepared in the extension's schema (every %s) on first use.
 */
typedef enum StageQuery
{
	Q_LOCK,						/* lock the deals, in id order (see lock_deals),
								 * and say whether their pipelines have gates */
	Q_PIPELINE,					/* an event whose stage is of another pipeline */
	Q_NEWEST,					/* the deals whose stage fields must change */
	Q_UPDATE,					/* and the change */
	Q_REFUSE_UNSEEN,			/* the error for a deal the lock did not return */
	N_QUERIES
} StageQuery;

static const char *const query_text[N_QUERIES] = {
	[Q_LOCK] =
	"SELECT coalesce(p.gate_mode, %1$s.default_stage_gate_mode()) OPERATOR(pg_catalog.<>) 'off'"
	" FROM %1$s.opportunity o"
	" JOIN %1$s.pipeline p ON p.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id"
	" WHERE o.opportunity_id OPERATOR(pg_catalog.=) ANY ($1)"
	" ORDER BY o.opportunity_id FOR NO KEY UPDATE OF o",
	[Q_PIPELINE] =
	"SELECT 1 FROM pg_catalog.unnest($1) AS n(id)"
	" JOIN %1$s.stage_event e ON e.stage_event_id OPERATOR(pg_catalog.=) n.id"
	" JOIN %1$s.opportunity o ON o.opportunity_id OPERATOR(pg_catalog.=) e.opportunity_id"
	" JOIN %1$s.stage s ON s.stage_id OPERATOR(pg_catalog.=) e.stage_id"
	" WHERE s.pipeline_id OPERATOR(pg_catalog.<>) o.pipeline_id LIMIT 1",
	/* a deal without events keeps its stage, but has no stage_entered_at */
	[Q_NEWEST] =
	"SELECT o.opportunity_id, t.stage_id, t.closed_at, t.entered_at"
	" FROM pg_catalog.unnest($1) AS d(id)"
	" JOIN %1$s.opportunity o ON o.opportunity_id OPERATOR(pg_catalog.=) d.id"
	" LEFT JOIN LATERAL ("
	"   SELECT e.stage_id, e.entered_at,"
	"          CASE WHEN s.kind OPERATOR(pg_catalog.<>) 'open' THEN e.entered_at END AS closed_at"
	"     FROM %1$s.stage_event e"
	"     JOIN %1$s.stage s ON s.stage_id OPERATOR(pg_catalog.=) e.stage_id"
	"    WHERE e.opportunity_id OPERATOR(pg_catalog.=) d.id"
	"    ORDER BY e.entered_at DESC, e.stage_event_id DESC LIMIT 1) n ON true"
	" CROSS JOIN LATERAL ("
	"   SELECT CASE WHEN n.stage_id IS NULL THEN o.stage_id ELSE n.stage_id END AS stage_id,"
	"          CASE WHEN n.stage_id IS NULL THEN o.closed_at ELSE n.closed_at END AS closed_at,"
	"          n.entered_at) t"
	" WHERE o.stage_id IS DISTINCT FROM t.stage_id"
	"    OR o.closed_at IS DISTINCT FROM t.closed_at"
	"    OR o.stage_entered_at IS DISTINCT FROM t.entered_at"
	" ORDER BY o.opportunity_id",
	[Q_UPDATE] =
	"UPDATE %1$s.opportunity o"
	"   SET stage_id = u.stage_id, closed_at = u.closed_at, stage_entered_at = u.entered_at"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	"                  pg_catalog.unnest($4)) AS u(id, stage_id, closed_at, entered_at)"
	" WHERE o.opportunity_id OPERATOR(pg_catalog.=) u.id",
	[Q_REFUSE_UNSEEN] =
	"SELECT " SALES_KPI_INTERNAL_SCHEMA ".refuse_unseen_deals($1)",
};

static const int query_nargs[N_QUERIES] = {1, 1, 1, 4, 1};
static const Oid query_argtypes[N_QUERIES][4] = {
	{INT8ARRAYOID},
	{INT8ARRAYOID},
	{INT8ARRAYOID},
	{INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID},
	{INT8ARRAYOID},
};

/* the prepared queries, for the schema they were prepared in */
static Oid	prepared_nspid = InvalidOid;
static SPIPlanPtr prepared[N_QUERIES];

/*
 * The stage fields the running sync writes, by deal: an update of a deal to
 * exactly these is the sync's own and needs no check.  Set only while the
 * sync's UPDATE runs (an inner sync's hides an outer one's), and only as
 * long as no other sync has begun: every write of stage events syncs their
 * deals, so a sync begun since (a user's trigger that wrote events during
 * the UPDATE) means the values may be stale, and the general check runs.
 */
/* the columns of Q_NEWEST: the deal, then the stage fields it gets */
#define N_SYNC_COLUMNS 4
static const Oid sync_column_type[N_SYNC_COLUMNS] = {
	INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID
};

typedef struct StageVouch
{
	uint64		generation;		/* syncs_begun when the values were read */
	int			n;
	/* column c of row i: value[c][i], isnull[c][i]; deals ascending */
	Datum	   *value[N_SYNC_COLUMNS];
	bool	   *isnull[N_SYNC_COLUMNS];
} StageVouch;

static const StageVouch *vouched = NULL;
static uint64 syncs_begun = 0;

/* Runs query q of schema nspid (connected to SPI); returns rows processed. */
static uint64
run_query(Oid nspid, StageQuery q, Datum *values, const char *nulls)
{
	int			rc;

	if (prepared_nspid != nspid)
	{
		for (int i = 0; i < N_QUERIES; i++)
		{
			if (prepared[i] != NULL)
				SPI_freeplan(prepared[i]);
			prepared[i] = NULL;
		}
		prepared_nspid = nspid;
	}
	if (prepared[q] == NULL)
	{
		const char *schema = quote_identifier(get_namespace_name(nspid));
		char	   *sql = psprintf(query_text[q], schema);
		SPIPlanPtr	plan;

		/* a generic plan: probes by id whatever the arrays hold */
		plan = SPI_prepare_cursor(sql, query_nargs[q], (Oid *) query_argtypes[q],
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		prepared[q] = plan;
	}
	rc = SPI_execute_plan(prepared[q], values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Connects to SPI with search_path = pg_catalog, pg_temp for the queries,
 * as the extension's SQL functions set it: whatever the caller's path, an
 * operator the text leaves to the parser (IS DISTINCT FROM uses =) is
 * pg_catalog's, and a saved plan is not analysed again for each caller's
 * path.  Returns the level end_queries() puts the setting back from.
 */
static int
begin_queries(void)
{
	int			nestlevel;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

static void
end_queries(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
	SPI_finish();
}

/* qsort and bsearch order of bigint datums */
static int
compare_int8_datums(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return (x > y) - (x < y);
}

/* A one-dimensional array of bigint or timestamptz values (nulls allowed). */
static Datum
array_of_8_byte(Datum *values, bool *isnull, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	return PointerGetDatum(construct_md_array(values, isnull, 1, dims, lbs, type, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Sets the stage fields of the given deals (connected to SPI) from their
 * newest events, vouching for the values while the UPDATE runs.
 */
static void
sync_deals(Oid nspid, Datum deal_ids)
{
	Datum		args[4];
	uint64		n;
	SPITupleTable *tuptable;
	StageVouch	vouch;
	const StageVouch *outer;

	syncs_begun++;
	vouch.generation = syncs_begun;
	args[0] = deal_ids;
	n = run_query(nspid, Q_NEWEST, args, NULL);
	if (n == 0)
		return;
	if (n > (uint64) (MaxAllocSize / sizeof(Datum)))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many deals to sync at once: %llu", (unsigned long long) n)));

	tuptable = SPI_tuptable;
	vouch.n = (int) n;
	for (int c = 0; c < N_SYNC_COLUMNS; c++)
	{
		vouch.value[c] = palloc(n * sizeof(Datum));
		vouch.isnull[c] = palloc(n * sizeof(bool));
		for (uint64 i = 0; i < n; i++)
			vouch.value[c][i] = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, c + 1,
											  &vouch.isnull[c][i]);
		args[c] = array_of_8_byte(vouch.value[c], vouch.isnull[c], vouch.n, sync_column_type[c]);
	}

	outer = vouched;
	vouched = &vouch;
	PG_TRY();
	{
		run_query(nspid, Q_UPDATE, args, NULL);
	}
	PG_FINALLY();
	{
		vouched = outer;
	}
	PG_END_TRY();
}

/*
 * sync_opportunity_stage(opportunity_ids bigint[]): sets stage_id, closed_at
 * and stage_entered_at of the given deals from their newest stage events.
 * A null array syncs nothing.
 */
Datum
sync_opportunity_stage(PG_FUNCTION_ARGS)
{
	int			nestlevel;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	nestlevel = begin_queries();
	sync_deals(extension_namespace(), PG_GETARG_DATUM(0));
	end_queries(nestlevel);
	PG_RETURN_VOID();
}

/*
 * The trigger is the extension's own, fired as its definition says, for the
 * extension's table of that name.
 */
static TriggerData *
check_trigger_call(FunctionCallInfo fcinfo, const char *function, const char *table,
				   bool update)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called as a trigger", function)));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(update ? TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) : TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)) ||
		trigdata->tg_newtable == NULL || (update && trigdata->tg_oldtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: must be fired AFTER %s FOR EACH STATEMENT with %s", function,
						update ? "UPDATE" : "INSERT",
						update ? "OLD TABLE and NEW TABLE" : "NEW TABLE")));
	rel = trigdata->tg_relation;
	if (RelationGetNamespace(rel) != extension_namespace() ||
		strcmp(RelationGetRelationName(rel), table) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: fired for table \"%s\", which is not the extension's %s",
						function, RelationGetRelationName(rel), table)));
	return trigdata;
}

/*
 * Hands the trigger call to the extension's PL/pgSQL trigger that handles
 * every case.
 */
static Datum
call_general_trigger(FunctionCallInfo fcinfo, const char *name)
{
	List	   *funcname = list_make2(makeString(SALES_KPI_INTERNAL_SCHEMA),
									  makeString(pstrdup(name)));
	Oid			funcoid = LookupFuncName(funcname, 0, NULL, false);
	FmgrInfo	flinfo;
	LOCAL_FCINFO(general, 0);
	Datum		result;

	if (get_func_rettype(funcoid) != TRIGGEROID)
		elog(ERROR, "function %s does not return trigger", name);
	fmgr_info(funcoid, &flinfo);
	InitFunctionCallInfoData(*general, &flinfo, 0, InvalidOid, fcinfo->context, NULL);
	result = FunctionCallInvoke(general);
	if (general->isnull)
		elog(ERROR, "trigger function %s returned null value", name);
	return result;
}

/* The attribute number of a column of the trigger's table; an error if none. */
static int
column_number(Relation rel, const char *function, const char *name, Oid type)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0 || TupleDescAttr(tupdesc, attnum - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: table \"%s\" has no column \"%s\" of type %s", function,
						RelationGetRelationName(rel), name, format_type_be(type))));
	return attnum;
}

/* A slot that reads a transition table from its start. */
static TupleTableSlot *
open_transition_table(Tuplestorestate *store, TupleDesc tupdesc)
{
	int			readptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(store, readptr);
	tuplestore_rescan(store);
	return MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
}

/*
 * stage_event_after_insert(): AFTER INSERT ON stage_event FOR EACH
 * STATEMENT, REFERENCING NEW TABLE.
 */
Datum
stage_event_after_insert(PG_FUNCTION_ARGS)
{
	const char *function = "stage_event_after_insert";
	TriggerData *trigdata = check_trigger_call(fcinfo, function, "stage_event", false);
	Relation	rel = trigdata->tg_relation;
	int			id_att = column_number(rel, function, "stage_event_id", INT8OID);
	int			deal_att = column_number(rel, function, "opportunity_id", INT8OID);
	int			at_att = column_number(rel, function, "entered_at", TIMESTAMPTZOID);
	Oid			nspid = RelationGetNamespace(rel);
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TupleTableSlot *slot;
	Datum	   *ids;
	Datum	   *deals;
	int			n = 0;
	int			n_deals;
	int			allocated = 64;
	bool		ahead = false;
	int			nestlevel;
	Datum		args[1];
	Datum		event_ids;
	Datum		deal_ids;
	bool		gated = false;
	uint64		locked;

	ids = palloc(allocated * sizeof(Datum));
	deals = palloc(allocated * sizeof(Datum));
	slot = open_transition_table(trigdata->tg_newtable, RelationGetDescr(rel));
	while (tuplestore_gettupleslot(trigdata->tg_newtable, true, false, slot))
	{
		bool		id_null,
					deal_null,
					at_null;
		Datum		id = slot_getattr(slot, id_att, &id_null);
		Datum		deal = slot_getattr(slot, deal_att, &deal_null);
		TimestampTz at = DatumGetTimestampTz(slot_getattr(slot, at_att, &at_null));

		if (id_null || deal_null || at_null)
		{
			ahead = true;		/* not for this path: the general one decides */
			break;
		}
		if (n == allocated)
		{
			if (allocated >= (int) (MaxAllocSize / sizeof(Datum) / 2))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many stage events in one statement")));
			allocated *= 2;
			ids = repalloc(ids, allocated * sizeof(Datum));
			deals = repalloc(deals, allocated * sizeof(Datum));
		}
		ids[n] = id;
		deals[n] = deal;
		n++;
		/* dated after the transaction began, or not finite: checked there */
		if (at > now || TIMESTAMP_NOT_FINITE(at))
			ahead = true;
	}
	ExecDropSingleTupleTableSlot(slot);
	if (ahead)
		return call_general_trigger(fcinfo, "stage_event_after_insert_general");
	if (n == 0)
		return PointerGetDatum(NULL);

	/* the deals, in id order, once each */
	qsort(deals, n, sizeof(Datum), compare_int8_datums);
	n_deals = 0;
	for (int i = 0; i < n; i++)
		if (n_deals == 0 || DatumGetInt64(deals[n_deals - 1]) != DatumGetInt64(deals[i]))
			deals[n_deals++] = deals[i];
	event_ids = array_of_8_byte(ids, NULL, n, INT8OID);
	deal_ids = array_of_8_byte(deals, NULL, n_deals, INT8OID);

	nestlevel = begin_queries();
	args[0] = deal_ids;
	locked = run_query(nspid, Q_LOCK, args, NULL);

	/*
	 * The events' deals exist (their foreign key was checked), so a deal the
	 * lock did not return is one row security hid once a concurrent change
	 * of its owner committed: refuse_unseen_deals() raises the error.
	 */
	if (locked < (uint64) n_deals)
		run_query(nspid, Q_REFUSE_UNSEEN, args, NULL);
	for (uint64 i = 0; i < locked && !gated; i++)
	{
		bool		isnull;

		gated = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)) ||
			isnull;
	}
	SPI_freetuptable(SPI_tuptable);
	args[0] = event_ids;
	if (gated || run_query(nspid, Q_PIPELINE, args, NULL) > 0)
	{
		end_queries(nestlevel);
		return call_general_trigger(fcinfo, "stage_event_after_insert_general");
	}
	sync_deals(nspid, deal_ids);
	end_queries(nestlevel);
	return PointerGetDatum(NULL);
}

/* The columns of opportunity whose change the general trigger looks at. */
#define N_WATCHED 11
static const char *const watched_column[N_WATCHED] = {
	/* 0-2: the stage fields the sync writes */
	"stage_id", "closed_at", "stage_entered_at",
	/* checked against the history */
	"pipeline_id", "snapshot_at", "created_at",
	/* a change leaves a snapshot */
	"amount", "expected_close", "forecast_category", "owner_id",
	/* the key the rows are paired by */
	"opportunity_id",
};
static const Oid watched_type[N_WATCHED] = {
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	NUMERICOID, DATEOID, TEXTOID, INT8OID,
	INT8OID,
};

#define N_STAGE_FIELDS 3
#define KEY_COLUMN (N_WATCHED - 1)

static bool
same_value(TupleTableSlot *a, TupleTableSlot *b, int attnum)
{
	Form_pg_attribute att = TupleDescAttr(a->tts_tupleDescriptor, attnum - 1);
	bool		a_null,
				b_null;
	Datum		x = slot_getattr(a, attnum, &a_null);
	Datum		y = slot_getattr(b, attnum, &b_null);

	if (a_null || b_null)
		return a_null && b_null;
	return datumIsEqual(x, y, att->attbyval, att->attlen);
}

/* The new row's stage fields are those the running sync writes. */
static bool
stage_fields_vouched(TupleTableSlot *row, const int *attnum)
{
	const StageVouch *vouch = vouched;
	bool		isnull;
	Datum		id;
	const Datum *found;
	int			i;

	if (vouch == NULL || vouch->generation != syncs_begun)
		return false;
	id = slot_getattr(row, attnum[KEY_COLUMN], &isnull);
	if (isnull)
		return false;
	found = bsearch(&id, vouch->value[0], vouch->n, sizeof(Datum), compare_int8_datums);
	if (found == NULL)
		return false;
	i = (int) (found - vouch->value[0]);
	for (int f = 0; f < N_STAGE_FIELDS; f++)
	{
		Datum		value = slot_getattr(row, attnum[f], &isnull);
		bool		vouched_null = vouch->isnull[f + 1][i];

		if (vouched_null != isnull)
			return false;
		/* bigint and timestamptz: equal exactly when their bits are */
		if (!isnull && DatumGetInt64(vouch->value[f + 1][i]) != DatumGetInt64(value))
			return false;
	}
	return true;
}

/*
 * opportunity_after_update(): AFTER UPDATE ON opportunity FOR EACH
 * STATEMENT, REFERENCING OLD TABLE and NEW TABLE.  PostgreSQL stores each
 * updated row's old and new version at the same place in the two tables;
 * rows that do not pair up that way go to the general trigger too.
 */
Datum
opportunity_after_update(PG_FUNCTION_ARGS)
{
	const char *function = "opportunity_after_update";
	TriggerData *trigdata = check_trigger_call(fcinfo, function, "opportunity", true);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attnum[N_WATCHED];
	TupleTableSlot *old_row;
	TupleTableSlot *new_row;
	bool		general = false;

	for (int c = 0; c < N_WATCHED; c++)
		attnum[c] = column_number(rel, function, watched_column[c], watched_type[c]);

	old_row = open_transition_table(trigdata->tg_oldtable, tupdesc);
	new_row = open_transition_table(trigdata->tg_newtable, tupdesc);
	for (;;)
	{
		bool		has_old = tuplestore_gettupleslot(trigdata->tg_oldtable, true, false, old_row);
		bool		has_new = tuplestore_gettupleslot(trigdata->tg_newtable, true, false, new_row);
		bool		stage_changed = false;

		if (!has_old || !has_new)
		{
			general = has_old != has_new;
			break;
		}
		for (int c = N_STAGE_FIELDS; c < N_WATCHED && !general; c++)
			general = !same_value(old_row, new_row, attnum[c]);
		for (int c = 0; c < N_STAGE_FIELDS && !stage_changed; c++)
			stage_changed = !same_value(old_row, new_row, attnum[c]);
		if (!general && stage_changed)
			general = !stage_fields_vouched(new_row, attnum);
		if (general)
			break;
	}
	ExecDropSingleTupleTableSlot(old_row);
	ExecDropSingleTupleTableSlot(new_row);

	if (general)
		return call_general_trigger(fcinfo, "opportunity_after_update_general");
	return PointerGetDatum(NULL);
}
