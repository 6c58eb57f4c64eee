/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  A restore loads the extension's tables at the speed of COPY: the rows
 *	  a dump brings are taken as they are, and their foreign keys are
 *	  checked once per table instead of once per row.
 *
 * The extension's tables exist, with their foreign keys and triggers,
 * before a restore loads their rows (CREATE EXTENSION makes them; ordinary
 * tables get their keys after the data).  PostgreSQL checks such a key with
 * one query per row, which more than doubled a restore; the triggers keep
 * derived fields that the dump already holds.  So a statement that is a
 * restore (a COPY FROM, with check_function_bodies off as pg_restore and
 * pg_dump's scripts set it, by a role allowed to set
 * session_replication_role, on a table without row security in force) runs
 * with session_replication_role = replica: PostgreSQL queues no key check
 * and fires none of the tables' triggers for its rows, as for
 * pg_restore --disable-triggers.  When the statement ends, the setting is
 * put back and every foreign key of the table is checked against the rows
 * it loaded, set-wise, locking the rows referred to as PostgreSQL's own
 * check does.  Any other statement, and a
 * restore by a role that may not set the setting, goes the ordinary way.
 *
 * Both triggers are ENABLE ALWAYS, so that they fire while the setting is
 * replica.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"

#include "schemas.h"

PG_FUNCTION_INFO_V1(restore_statement_begin);
PG_FUNCTION_INFO_V1(restore_statement_end);

/*
 * The statement that turned the setting to replica: its transaction,
 * subtransaction and table (a COPY that failed in a savepoint leaves them
 * behind, and no later statement matches them).
 */
static LocalTransactionId restoring_lxid = InvalidLocalTransactionId;
static SubTransactionId restoring_subxid = InvalidSubTransactionId;
static Oid	restoring_relid = InvalidOid;

/*
 * The client's statement is a COPY FROM into this very table (pg_restore's
 * data, a dump script's), not a statement run inside another one (a COPY
 * into a table whose trigger writes here, COPY (INSERT ...) TO).
 */
static bool
statement_is_copy_into(Oid relid)
{
	PlannedStmt *stmt;
	CopyStmt   *copy;

	if (ActivePortal == NULL || ActivePortal->commandTag != CMDTAG_COPY ||
		list_length(ActivePortal->stmts) != 1)
		return false;
	stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
	if (stmt->utilityStmt == NULL || !IsA(stmt->utilityStmt, CopyStmt))
		return false;
	copy = (CopyStmt *) stmt->utilityStmt;
	return copy->is_from && copy->relation != NULL && copy->query == NULL &&
		RangeVarGetRelid(copy->relation, NoLock, true) == relid;
}

/*
 * The table's end-of-statement trigger will fire while the setting is
 * replica: without it the keys would go unchecked and the setting would
 * stay replica (ALTER TABLE ... ENABLE TRIGGER ALL makes it an ordinary
 * trigger again).
 */
static bool
end_trigger_fires(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;

	if (trigdesc == NULL)
		return false;
	for (int i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *trigger = &trigdesc->triggers[i];

		if (strcmp(trigger->tgname, "restore_statement_end") == 0 &&
			trigger->tgenabled == TRIGGER_FIRES_ALWAYS &&
			trigger->tgnewtable != NULL &&
			TRIGGER_FOR_AFTER(trigger->tgtype) &&
			!TRIGGER_FOR_ROW(trigger->tgtype) &&
			TRIGGER_FOR_INSERT(trigger->tgtype))
			return true;
	}
	return false;
}

static bool
may_set_replication_role(void)
{
	return superuser() ||
		pg_parameter_aclcheck("session_replication_role", GetUserId(), ACL_SET) == ACLCHECK_OK;
}

static void
set_replication_role(const char *value)
{
	(void) set_config_option("session_replication_role", value,
							 superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

static TriggerData *
statement_trigger_data(FunctionCallInfo fcinfo, const char *name, bool before)
{
	TriggerData *trigdata;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by the trigger manager", name)));
	trigdata = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		(before ? !TRIGGER_FIRED_BEFORE(trigdata->tg_event) : !TRIGGER_FIRED_AFTER(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: must be fired %s INSERT FOR EACH STATEMENT", name,
						before ? "BEFORE" : "AFTER")));
	if (RelationGetNamespace(trigdata->tg_relation) != extension_namespace())
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: only for the tables of the extension's schema", name)));
	return trigdata;
}

/*
 * BEFORE INSERT FOR EACH STATEMENT: a restore's COPY turns the row-by-row
 * work off for itself.
 */
Datum
restore_statement_begin(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = statement_trigger_data(fcinfo, "restore_statement_begin", true);
	Oid			relid = RelationGetRelid(trigdata->tg_relation);

	if (!check_function_bodies &&
		SessionReplicationRole == SESSION_REPLICATION_ROLE_ORIGIN &&
		statement_is_copy_into(relid) &&
		end_trigger_fires(trigdata->tg_relation) &&
		check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED &&
		may_set_replication_role())
	{
		set_replication_role("replica");
		restoring_lxid = MyProc->lxid;
		restoring_subxid = GetCurrentSubTransactionId();
		restoring_relid = relid;
	}
	return PointerGetDatum(NULL);
}

/* "x.c1, x.c2" (or "x.c1::text, ...") for a key's columns in the loaded rows */
static void
append_columns(StringInfo buf, Relation rel, int nkeys, const AttrNumber *keys,
			   const char *prefix, const char *sep, const char *suffix)
{
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(buf, "%s%s%s%s", i > 0 ? sep : "", prefix,
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																keys[i] - 1)->attname)),
						 suffix);
}

/* the first row of a one-column bigint result */
static int64
single_count(const char *sql)
{
	bool		isnull;
	Datum		value;

	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "restore_statement_end: SPI_execute failed");
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(value);
}

/*
 * Refuse the statement when one of its rows refers to a row that does not
 * exist, with the error PostgreSQL gives for a foreign key.  As PostgreSQL's
 * own check does: MATCH SIMPLE (a row with a null key column refers to
 * nothing, as the extension's keys are declared), the referenced rows
 * locked FOR KEY SHARE (a concurrent delete waits, or was waited for and
 * its rows are not counted), and run as the referenced table's owner with
 * its row security not in force.
 */
static void
check_foreign_key(Relation rel, ForeignKeyCacheInfo *fk, const char *rows)
{
	Relation	parent = table_open(fk->confrelid, AccessShareLock);
	char	   *parent_name;
	StringInfoData not_null;
	StringInfoData matches;
	StringInfoData sql;
	int64		n_keys;
	int64		n_found;
	Oid			save_userid;
	int			save_sec_context;

	parent_name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(parent)),
											 RelationGetRelationName(parent));
	initStringInfo(&not_null);
	append_columns(&not_null, rel, fk->nkeys, fk->conkey, "x.", " AND ", " IS NOT NULL");
	initStringInfo(&matches);
	for (int i = 0; i < fk->nkeys; i++)
	{
		/* the extension's keys are bigint; its equality is qualified */
		if (get_opcode(fk->conpfeqop[i]) != F_INT8EQ)
			elog(ERROR, "restore_statement_end: foreign key %u is not on bigint columns",
				 fk->conoid);
		appendStringInfo(&matches, "%sp.%s OPERATOR(pg_catalog.=) x.%s",
						 i > 0 ? " AND " : "",
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(parent),
																fk->confkey[i] - 1)->attname)),
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																fk->conkey[i] - 1)->attname)));
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(RelationGetForm(parent)->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);

	/* the distinct keys the rows refer to, and the rows they find, locked */
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT count(*) FROM (SELECT DISTINCT ");
	append_columns(&sql, rel, fk->nkeys, fk->conkey, "x.", ", ", "");
	appendStringInfo(&sql, " FROM %s x WHERE %s) d", rows, not_null.data);
	n_keys = single_count(sql.data);
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT count(*) FROM (SELECT 1 FROM ONLY %s p WHERE EXISTS "
					 "(SELECT 1 FROM %s x WHERE %s) FOR KEY SHARE OF p) l",
					 parent_name, rows, matches.data);
	n_found = single_count(sql.data);

	if (n_found != n_keys)
	{
		StringInfoData key;
		StringInfoData value;

		/* name one key that found nothing */
		resetStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT ");
		append_columns(&sql, rel, fk->nkeys, fk->conkey, "x.", ", ", "::pg_catalog.text");
		appendStringInfo(&sql, " FROM %s x WHERE %s AND NOT EXISTS "
						 "(SELECT 1 FROM ONLY %s p WHERE %s) LIMIT 1",
						 rows, not_null.data, parent_name, matches.data);
		if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "restore_statement_end: SPI_execute failed");
		initStringInfo(&key);
		append_columns(&key, rel, fk->nkeys, fk->conkey, "", ", ", "");
		initStringInfo(&value);
		for (int i = 0; SPI_processed > 0 && i < fk->nkeys; i++)
			appendStringInfo(&value, "%s%s", i > 0 ? ", " : "",
							 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1));
		SetUserIdAndSecContext(save_userid, save_sec_context);
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						RelationGetRelationName(rel), get_constraint_name(fk->conoid)),
				 SPI_processed > 0 ?
				 errdetail("Key (%s)=(%s) is not present in table \"%s\".",
						   key.data, value.data, RelationGetRelationName(parent)) :
				 errdetail("A key is not present in table \"%s\".", RelationGetRelationName(parent)),
				 errtableconstraint(rel, get_constraint_name(fk->conoid))));
	}
	SetUserIdAndSecContext(save_userid, save_sec_context);
	table_close(parent, NoLock);
	pfree(sql.data);
	pfree(not_null.data);
	pfree(matches.data);
}

/*
 * AFTER INSERT FOR EACH STATEMENT, REFERENCING NEW TABLE: at the end of a
 * restore's COPY, put the setting back and check the foreign keys of the
 * rows it loaded, a few set-wise queries per key.  Any other statement:
 * nothing.
 */
Datum
restore_statement_end(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = statement_trigger_data(fcinfo, "restore_statement_end", false);
	Relation	rel = trigdata->tg_relation;
	ListCell   *lc;

	if (restoring_lxid != MyProc->lxid || restoring_subxid != GetCurrentSubTransactionId() ||
		restoring_relid != RelationGetRelid(rel))
		return PointerGetDatum(NULL);
	restoring_lxid = InvalidLocalTransactionId;
	restoring_subxid = InvalidSubTransactionId;
	restoring_relid = InvalidOid;
	if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
		return PointerGetDatum(NULL);	/* put back already (a subtransaction) */
	set_replication_role("origin");

	if (trigdata->tg_trigger->tgnewtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("restore_statement_end: the trigger needs REFERENCING NEW TABLE")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "restore_statement_end: SPI_connect failed");
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "restore_statement_end: SPI_register_trigger_data failed");
	/* (a copy: the relcache's list can go in a cache reset during the queries) */
	foreach(lc, copyObject(RelationGetFKeyList(rel)))
		check_foreign_key(rel, (ForeignKeyCacheInfo *) lfirst(lc),
						  quote_identifier(trigdata->tg_trigger->tgnewtable));
	SPI_finish();
	return PointerGetDatum(NULL);
}
