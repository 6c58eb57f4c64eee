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
 * pg_restore --disable-triggers.  When the statement ends, every foreign
 * key of the table is checked against the rows it loaded with one
 * anti-join, and the setting is put back.  Any other statement, and a
 * restore by a role that may not set the setting, goes the ordinary way.
 *
 * Both triggers are ENABLE ALWAYS, so that they fire while the setting is
 * replica.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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

PG_FUNCTION_INFO_V1(restore_statement_begin);
PG_FUNCTION_INFO_V1(restore_statement_end);

/* the statement that turned the setting to replica: its transaction, table */
static LocalTransactionId restoring_lxid = InvalidLocalTransactionId;
static Oid	restoring_relid = InvalidOid;

/*
 * The statement running is a COPY (pg_restore's data, a dump script's): the
 * portal the client's statement runs in says which command it is, also
 * when several statements came in one query string.
 */
static bool
statement_is_copy(void)
{
	return ActivePortal != NULL && ActivePortal->commandTag == CMDTAG_COPY;
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
		statement_is_copy() &&
		check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED &&
		may_set_replication_role())
	{
		set_replication_role("replica");
		restoring_lxid = MyProc->lxid;
		restoring_relid = relid;
	}
	return PointerGetDatum(NULL);
}

/* "c1, c2" or "x.c1::text, x.c2::text" (with_prefix) for a key's columns */
static void
append_columns(StringInfo buf, Relation rel, int nkeys, const AttrNumber *keys, bool as_text)
{
	for (int i = 0; i < nkeys; i++)
	{
		const char *name = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																   keys[i] - 1)->attname));

		if (i > 0)
			appendStringInfoString(buf, ", ");
		if (as_text)
			appendStringInfo(buf, "x.%s::pg_catalog.text", name);
		else
			appendStringInfoString(buf, name);
	}
}

/*
 * Refuse the statement when one of its rows refers to a row that does not
 * exist, with the error PostgreSQL gives for a foreign key.  MATCH SIMPLE,
 * as the extension's keys are: a row with a null key column refers to
 * nothing.
 */
static void
check_foreign_key(Relation rel, ForeignKeyCacheInfo *fk, const char *rows)
{
	Relation	parent = RelationIdGetRelation(fk->confrelid);
	StringInfoData sql;
	StringInfoData key;
	StringInfoData value;

	if (!RelationIsValid(parent))
		elog(ERROR, "could not open relation with OID %u", fk->confrelid);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	append_columns(&sql, rel, fk->nkeys, fk->conkey, true);
	appendStringInfo(&sql, " FROM %s x WHERE ", rows);
	for (int i = 0; i < fk->nkeys; i++)
		appendStringInfo(&sql, "x.%s IS NOT NULL AND ",
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																fk->conkey[i] - 1)->attname)));
	appendStringInfo(&sql, "NOT EXISTS (SELECT 1 FROM ONLY %s.%s p WHERE ",
					 quote_identifier(get_namespace_name(RelationGetNamespace(parent))),
					 quote_identifier(RelationGetRelationName(parent)));
	for (int i = 0; i < fk->nkeys; i++)
	{
		/* the extension's keys are bigint; its equality is qualified */
		if (get_opcode(fk->conpfeqop[i]) != F_INT8EQ)
			elog(ERROR, "restore_statement_end: foreign key %u is not on bigint columns",
				 fk->conoid);
		appendStringInfo(&sql, "%sp.%s OPERATOR(pg_catalog.=) x.%s",
						 i > 0 ? " AND " : "",
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(parent),
																fk->confkey[i] - 1)->attname)),
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																fk->conkey[i] - 1)->attname)));
	}
	appendStringInfoString(&sql, ") LIMIT 1");

	if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "restore_statement_end: SPI_execute failed");
	if (SPI_processed > 0)
	{
		initStringInfo(&key);
		append_columns(&key, rel, fk->nkeys, fk->conkey, false);
		initStringInfo(&value);
		for (int i = 0; i < fk->nkeys; i++)
			appendStringInfo(&value, "%s%s", i > 0 ? ", " : "",
							 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1));
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						RelationGetRelationName(rel), get_constraint_name(fk->conoid)),
				 errdetail("Key (%s)=(%s) is not present in table \"%s\".",
						   key.data, value.data, RelationGetRelationName(parent)),
				 errtableconstraint(rel, get_constraint_name(fk->conoid))));
	}
	RelationClose(parent);
	pfree(sql.data);
}

/*
 * AFTER INSERT FOR EACH STATEMENT, REFERENCING NEW TABLE: at the end of a
 * restore's COPY, put the setting back and check the foreign keys of the
 * rows it loaded, one query per key.  Any other statement: nothing.
 */
Datum
restore_statement_end(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = statement_trigger_data(fcinfo, "restore_statement_end", false);
	Relation	rel = trigdata->tg_relation;
	ListCell   *lc;

	if (restoring_lxid != MyProc->lxid || restoring_relid != RelationGetRelid(rel))
		return PointerGetDatum(NULL);
	restoring_lxid = InvalidLocalTransactionId;
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
	foreach(lc, RelationGetFKeyList(rel))
		check_foreign_key(rel, (ForeignKeyCacheInfo *) lfirst(lc),
						  quote_identifier(trigdata->tg_trigger->tgnewtable));
	SPI_finish();
	return PointerGetDatum(NULL);
}
