/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  Errors about the caller's data or arguments reach the client without
 *	  the internal query text as context.
 *
 * ereport_without_context() (errors.h) clears the context stack before
 * raising, which covers an error raised in the backend that runs the query.
 * An error raised in a parallel worker is raised again by the leader, whose
 * context stack holds every internal query the KPI runs; the log hook below
 * drops the context of such an error when it comes from one of the places
 * that raise errors without context (recognized by source file and
 * function, which the leader keeps from the worker's report).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"

#include "errors.h"

/* where ereport_without_context() is used */
static const struct
{
	const char *file;
	const char *function;
}			context_free[] =
{
	{"currency.c", "to_base"},
	{"dimension.c", "dimension_index"},
	{"dimension.c", "dimension_value"},
	{"settings.c", "check_not_rejected"},
};

static emit_log_hook_type prev_emit_log_hook = NULL;

static void
drop_internal_context(ErrorData *edata)
{
	if (edata->elevel >= ERROR && edata->context != NULL &&
		edata->filename != NULL && edata->funcname != NULL)
	{
		for (int i = 0; i < (int) lengthof(context_free); i++)
		{
			if (strcmp(edata->filename, context_free[i].file) == 0 &&
				strcmp(edata->funcname, context_free[i].function) == 0)
			{
				edata->context = NULL;
				break;
			}
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
sales_kpi_install_error_hook(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = drop_internal_context;
}
