/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The sales_kpi.* configuration parameters and their SQL accessors.
 *
 * SQL code reads the settings through the accessor functions below rather
 * than current_setting(): calling a C function loads the module, so the
 * parameters exist (with their documented defaults and validation) even in
 * a session that has not touched the extension before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "errors.h"
#include "settings.h"

char	   *sales_kpi_base_currency = NULL;
char	   *sales_kpi_reporting_timezone = NULL;
int			sales_kpi_fiscal_year_start_month = 1;
int			sales_kpi_stage_gate_mode = STAGE_GATE_OFF;

static const struct config_enum_entry stage_gate_mode_options[] = {
	{"off", STAGE_GATE_OFF, false},
	{"warn", STAGE_GATE_WARN, false},
	{"enforce", STAGE_GATE_ENFORCE, false},
	{NULL, 0, false}
};

static const char *const stage_gate_mode_names[] = {"off", "warn", "enforce"};

/*
 * A value set before the module was loaded (ALTER DATABASE/ROLE ... SET,
 * postgresql.conf, or SET in a session that had not used the extension yet)
 * is only checked when the module defines the parameter.  PostgreSQL then
 * warns and keeps the default: a BI tool never shows the warning, and every
 * KPI would silently be in the wrong currency or time zone.  So a value
 * refused at that point is remembered, and the accessors raise an error
 * naming it until the parameter is set again.
 */
typedef enum SettingId
{
	SETTING_BASE_CURRENCY,
	SETTING_REPORTING_TIMEZONE,
	SETTING_FISCAL_YEAR_START_MONTH,
	SETTING_STAGE_GATE_MODE,
	NUM_SETTINGS
} SettingId;

static const char *const setting_names[NUM_SETTINGS] = {
	"sales_kpi.base_currency",
	"sales_kpi.reporting_timezone",
	"sales_kpi.fiscal_year_start_month",
	"sales_kpi.stage_gate_mode"
};

/* the value refused when the module defined the parameter, if any */
static char *rejected_value[NUM_SETTINGS];

/*
 * A module first loaded inside a parallel query (a C function of the
 * extension called by the leader while workers run) cannot apply the values
 * set before: PostgreSQL refuses to set parameters then, warns, and keeps
 * the default.  Such a value is kept here and applied by the first accessor
 * called outside parallel mode, again if a rollback undid it, until the
 * parameter is set in the session; an accessor called inside parallel mode
 * before that raises an error instead of reading the default.
 */
static char *pending_value[NUM_SETTINGS];
static bool applying_pending = false;

/*
 * Any assignment that succeeds (SET, RESET, the end of a SET LOCAL) clears
 * a refused value, and so does one made by the user for a pending value.
 */
static void
assigned(SettingId id)
{
	rejected_value[id] = NULL;
	if (!applying_pending)
		pending_value[id] = NULL;
}

static void
assign_base_currency(const char *newval, void *extra)
{
	assigned(SETTING_BASE_CURRENCY);
}

static void
assign_reporting_timezone(const char *newval, void *extra)
{
	assigned(SETTING_REPORTING_TIMEZONE);
}

static void
assign_fiscal_year_start_month(int newval, void *extra)
{
	assigned(SETTING_FISCAL_YEAR_START_MONTH);
}

static void
assign_stage_gate_mode(int newval, void *extra)
{
	assigned(SETTING_STAGE_GATE_MODE);
}

static void check_not_rejected(SettingId id);

/* For C code that reads sales_kpi_base_currency directly. */
void
sales_kpi_check_base_currency(void)
{
	check_not_rejected(SETTING_BASE_CURRENCY);
}

/* Raises the error for a parameter whose value was refused, if it was. */
/* Applies a pending value not in force (outside parallel mode only). */
static void
apply_pending(SettingId id)
{
	const char *current;

	if (pending_value[id] == NULL)
		return;
	current = GetConfigOption(setting_names[id], false, false);
	if (current != NULL && strcmp(current, pending_value[id]) == 0)
		return;
	applying_pending = true;
	PG_TRY();
	{
		(void) set_config_option(setting_names[id], pending_value[id],
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET,
								 true, ERROR, false);
	}
	PG_FINALLY();
	{
		applying_pending = false;
	}
	PG_END_TRY();
}

/* Every statement starts by applying the pending values, if any. */
static ExecutorStart_hook_type prev_executor_start = NULL;

static void
apply_pending_at_start(QueryDesc *queryDesc, int eflags)
{
	if (!IsInParallelMode())
		for (int i = 0; i < NUM_SETTINGS; i++)
			apply_pending((SettingId) i);
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
check_not_rejected(SettingId id)
{
	if (pending_value[id] != NULL)
	{
		const char *current = GetConfigOption(setting_names[id], false, false);

		if (current == NULL || strcmp(current, pending_value[id]) != 0)
		{
			if (IsInParallelMode())
				ereport_without_context((errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
										 errmsg("parameter \"%s\" = \"%s\" is not applied yet",
												setting_names[id], pending_value[id]),
										 errdetail("sales_kpi was first loaded in this session inside a parallel query, when parameters cannot be set."),
										 errhint("It is applied when the next statement starts; to avoid this, load sales_kpi at session start: ALTER DATABASE ... SET session_preload_libraries = 'sales_kpi'.")));
			apply_pending(id);
		}
	}
	if (rejected_value[id] != NULL)
		ereport_without_context((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("invalid value for parameter \"%s\": \"%s\"",
										setting_names[id], rejected_value[id]),
								 errdetail("The value was set before sales_kpi was loaded and was refused when it was; the KPIs will not fall back to the default."),
								 errhint("Correct the setting where it is made (ALTER DATABASE or ALTER ROLE ... SET, postgresql.conf), or SET it in this session.")));
}

/* An ISO 4217 code: exactly three upper-case ASCII letters. */
static bool
check_base_currency(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || strlen(s) != 3 ||
		!isupper((unsigned char) s[0]) ||
		!isupper((unsigned char) s[1]) ||
		!isupper((unsigned char) s[2]))
	{
		GUC_check_errmsg("invalid value for parameter \"sales_kpi.base_currency\": \"%s\"",
						 s ? s : "");
		GUC_check_errdetail("The base currency must be a three-letter upper-case ISO 4217 code, such as USD.");
		return false;
	}
	return true;
}

/* Empty means "the session's TimeZone"; anything else must be a known zone. */
static bool
check_reporting_timezone(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || s[0] == '\0')
		return true;
	if (pg_tzset(s) == NULL)
	{
		GUC_check_errmsg("invalid value for parameter \"sales_kpi.reporting_timezone\": \"%s\"", s);
		GUC_check_errdetail("Use a time zone name such as Europe/Berlin, or an empty string for the session's TimeZone.");
		return false;
	}
	return true;
}

void
sales_kpi_define_settings(void)
{
	char	   *placeholder_value[NUM_SETTINGS];	/* the value before, if any */
	int			i;

	for (i = 0; i < NUM_SETTINGS; i++)
	{
		const char *value = GetConfigOption(setting_names[i], true, false);

		placeholder_value[i] = value ? MemoryContextStrdup(TopMemoryContext, value) : NULL;
	}

	/*
	 * The rates of sales_kpi.fx_rate convert to one base currency, and the
	 * triggers let a deal in the base currency go without a rate: a writer
	 * who could change it in their own session could write deals no KPI can
	 * convert.  So only a superuser sets it (for the database, a role, or
	 * the server).
	 */
	DefineCustomStringVariable("sales_kpi.base_currency",
							   "Currency that all KPI amounts are reported in.",
							   "Amounts in other currencies are converted with sales_kpi.fx_rate.",
							   &sales_kpi_base_currency,
							   "USD",
							   PGC_SUSET,
							   0,
							   check_base_currency, assign_base_currency, NULL);

	DefineCustomStringVariable("sales_kpi.reporting_timezone",
							   "Time zone in which periods, weeks and hours of day are cut.",
							   "Empty (the default) means the session's TimeZone.",
							   &sales_kpi_reporting_timezone,
							   "",
							   PGC_USERSET,
							   0,
							   check_reporting_timezone, assign_reporting_timezone, NULL);

	DefineCustomIntVariable("sales_kpi.fiscal_year_start_month",
							"First month (1-12) of the fiscal year.",
							NULL,
							&sales_kpi_fiscal_year_start_month,
							1, 1, 12,
							PGC_USERSET,
							0,
							NULL, assign_fiscal_year_start_month, NULL);

	/*
	 * Only a superuser may change the gate mode (postgresql.conf, ALTER
	 * SYSTEM, or ALTER DATABASE / ROLE ... SET by a superuser): a gate that
	 * the writer it holds back could switch off in its own session would
	 * enforce nothing.
	 */
	DefineCustomEnumVariable("sales_kpi.stage_gate_mode",
							 "Default stage-gate mode for pipelines whose gate_mode is null.",
							 "off: no check; warn: a warning per move that leaves required milestones open; enforce: such a move is refused.",
							 &sales_kpi_stage_gate_mode,
							 STAGE_GATE_OFF,
							 stage_gate_mode_options,
							 PGC_SUSET,
							 0,
							 NULL, assign_stage_gate_mode, NULL);

	MarkGUCPrefixReserved("sales_kpi");

	/*
	 * Check each earlier value again, without applying it (0 is a refusal;
	 * without applying, a valid value gives -1): the ones that PostgreSQL
	 * just refused (with a warning) are remembered.  Checking
	 * as a superuser's session setting only tells whether the value is
	 * valid; who may set it was decided when it was set.
	 */
	for (i = 0; i < NUM_SETTINGS; i++)
	{
		if (placeholder_value[i] == NULL)
			continue;
		if (set_config_option(setting_names[i], placeholder_value[i],
							  PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET,
							  false, DEBUG1, false) == 0)
			rejected_value[i] = placeholder_value[i];
		else if (IsInParallelMode() &&
				 strcmp(GetConfigOption(setting_names[i], false, false), placeholder_value[i]) != 0)
			pending_value[i] = placeholder_value[i];
		else
			pfree(placeholder_value[i]);
	}
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = apply_pending_at_start;
}

PG_FUNCTION_INFO_V1(base_currency);
Datum
base_currency(PG_FUNCTION_ARGS)
{
	check_not_rejected(SETTING_BASE_CURRENCY);
	PG_RETURN_TEXT_P(cstring_to_text(sales_kpi_base_currency));
}

PG_FUNCTION_INFO_V1(reporting_timezone);
Datum
reporting_timezone(PG_FUNCTION_ARGS)
{
	const char *tz = sales_kpi_reporting_timezone;

	check_not_rejected(SETTING_REPORTING_TIMEZONE);
	if (tz == NULL || tz[0] == '\0')
		tz = pg_get_timezone_name(session_timezone);
	PG_RETURN_TEXT_P(cstring_to_text(tz));
}

PG_FUNCTION_INFO_V1(fiscal_year_start_month);
Datum
fiscal_year_start_month(PG_FUNCTION_ARGS)
{
	check_not_rejected(SETTING_FISCAL_YEAR_START_MONTH);
	PG_RETURN_INT32(sales_kpi_fiscal_year_start_month);
}

PG_FUNCTION_INFO_V1(default_stage_gate_mode);
Datum
default_stage_gate_mode(PG_FUNCTION_ARGS)
{
	check_not_rejected(SETTING_STAGE_GATE_MODE);
	PG_RETURN_TEXT_P(cstring_to_text(stage_gate_mode_names[sales_kpi_stage_gate_mode]));
}

/*
 * valid_timezone(text) -> bool: is the name a time zone the server knows?
 * Used by the rep.timezone check constraint.
 */
PG_FUNCTION_INFO_V1(valid_timezone);
Datum
valid_timezone(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(name[0] != '\0' && pg_tzset(name) != NULL);
}
