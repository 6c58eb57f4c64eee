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

#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"

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
	DefineCustomStringVariable("sales_kpi.base_currency",
							   "Currency that all KPI amounts are reported in.",
							   "Amounts in other currencies are converted with sales_kpi.fx_rate.",
							   &sales_kpi_base_currency,
							   "USD",
							   PGC_USERSET,
							   0,
							   check_base_currency, NULL, NULL);

	DefineCustomStringVariable("sales_kpi.reporting_timezone",
							   "Time zone in which periods, weeks and hours of day are cut.",
							   "Empty (the default) means the session's TimeZone.",
							   &sales_kpi_reporting_timezone,
							   "",
							   PGC_USERSET,
							   0,
							   check_reporting_timezone, NULL, NULL);

	DefineCustomIntVariable("sales_kpi.fiscal_year_start_month",
							"First month (1-12) of the fiscal year.",
							NULL,
							&sales_kpi_fiscal_year_start_month,
							1, 1, 12,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

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
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("sales_kpi");
}

PG_FUNCTION_INFO_V1(base_currency);
Datum
base_currency(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(sales_kpi_base_currency));
}

PG_FUNCTION_INFO_V1(reporting_timezone);
Datum
reporting_timezone(PG_FUNCTION_ARGS)
{
	const char *tz = sales_kpi_reporting_timezone;

	if (tz == NULL || tz[0] == '\0')
		tz = pg_get_timezone_name(session_timezone);
	PG_RETURN_TEXT_P(cstring_to_text(tz));
}

PG_FUNCTION_INFO_V1(fiscal_year_start_month);
Datum
fiscal_year_start_month(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(sales_kpi_fiscal_year_start_month);
}

PG_FUNCTION_INFO_V1(default_stage_gate_mode);
Datum
default_stage_gate_mode(PG_FUNCTION_ARGS)
{
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
