/*-------------------------------------------------------------------------
 *
 * currency.c
 *	  to_base(amount, currency, on_date): an amount in the base currency.
 *
 * The rate is the newest sales_kpi.fx_rate row of the currency whose
 * valid_from is not after the date.  Before a currency's first rate, that
 * first rate applies: the first range is open back to the beginning of time,
 * as with Salesforce's dated rates, so an old deal does not fail every KPI
 * (data_quality_findings reports it as missing_fx_rate).  The base currency
 * needs no row; a currency with no row at all is an error naming it, never
 * a silent 1:1 (the triggers refuse such a deal when it is written).  The first call of a query reads the whole rate table once (it is
 * small: currencies x months) into the function's own memory, so each row
 * costs a binary search and one numeric multiplication instead of a
 * look-up through the executor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "errors.h"
#include "settings.h"

typedef struct FxRate
{
	char		currency[4];	/* ISO code, NUL-terminated */
	DateADT		valid_from;
	Datum		rate;			/* numeric, in fn_mcxt */
} FxRate;

typedef struct FxCache
{
	char		base[4];		/* base currency when the cache was built */
	int			n;
	FxRate	   *rates;			/* ordered by currency, valid_from */
} FxCache;

/* reads the rate table of the function's own schema into fn_mcxt */
static FxCache *
fx_cache_build(FunctionCallInfo fcinfo)
{
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
	char	   *schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));
	FxCache    *cache = MemoryContextAllocZero(mcxt, sizeof(FxCache));
	char	   *query;

	sales_kpi_check_base_currency();
	strlcpy(cache->base, sales_kpi_base_currency, sizeof(cache->base));
	query = psprintf("SELECT currency::pg_catalog.text, valid_from, rate FROM %s.fx_rate ORDER BY currency, valid_from",
					 quote_identifier(schema));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.fx_rate", schema);
	cache->n = (int) SPI_processed;
	cache->rates = MemoryContextAllocZero(mcxt, sizeof(FxRate) * Max(cache->n, 1));
	for (int i = 0; i < cache->n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *cur = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		MemoryContext old;

		strlcpy(cache->rates[i].currency, cur, sizeof(cache->rates[i].currency));
		cache->rates[i].valid_from = DatumGetDateADT(SPI_getbinval(tup, desc, 2, &isnull));
		old = MemoryContextSwitchTo(mcxt);
		cache->rates[i].rate = datumCopy(SPI_getbinval(tup, desc, 3, &isnull), false, -1);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return cache;
}

/*
 * The rate in force for a currency code (len bytes) on day: the newest not
 * after day, else the currency's first; NULL when it has none.
 */
static const FxRate *
fx_lookup(const FxCache *cache, const char *code, int len, DateADT day)
{
	int			lo = 0,
				hi = cache->n - 1,
				found = -1;

	if (len != 3)
		return NULL;
	/* last row with (currency, valid_from) <= (code, day) */
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = memcmp(cache->rates[mid].currency, code, 3);

		if (c < 0 || (c == 0 && cache->rates[mid].valid_from <= day))
		{
			found = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	if (found >= 0 && memcmp(cache->rates[found].currency, code, 3) == 0)
		return &cache->rates[found];
	/* before the first rate: lo is the currency's first row, if it has one */
	if (lo < cache->n && memcmp(cache->rates[lo].currency, code, 3) == 0)
		return &cache->rates[lo];
	return NULL;
}

PG_FUNCTION_INFO_V1(to_base);
Datum
to_base(PG_FUNCTION_ARGS)
{
	Datum		amount = PG_GETARG_DATUM(0);
	struct varlena *cur = pg_detoast_datum_packed((struct varlena *) PG_GETARG_POINTER(1));
	const char *code = VARDATA_ANY(cur);
	int			len = VARSIZE_ANY_EXHDR(cur);
	DateADT		day = PG_GETARG_DATEADT(2);
	FxCache    *cache = (FxCache *) fcinfo->flinfo->fn_extra;
	const FxRate *r;

	/* character(n) pads with blanks */
	while (len > 0 && code[len - 1] == ' ')
		len--;
	if (cache == NULL || strcmp(cache->base, sales_kpi_base_currency) != 0)
		fcinfo->flinfo->fn_extra = cache = fx_cache_build(fcinfo);
	if (len == 3 && memcmp(code, cache->base, 3) == 0)
		PG_RETURN_DATUM(amount);
	r = fx_lookup(cache, code, len, day);
	if (r == NULL)
		ereport_without_context((errcode(ERRCODE_NO_DATA_FOUND),
								 errmsg("no exchange rate for currency %.*s", len, code),
								 errdetail("Amounts in %.*s are converted to the base currency %s with sales_kpi.fx_rate, which has no row for %.*s.",
										   len, code, cache->base, len, code),
								 errhint("Insert the rates of %.*s into sales_kpi.fx_rate.", len, code)));
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_mul, amount, r->rate));
}
