/*-------------------------------------------------------------------------
 *
 * dimension.c
 *	  dimension_value(dimension, pipeline, rep, team, source, industry,
 *					  segment, region, competitor, kind, product): the value a deal
 *	  takes in the breakdown a KPI was asked for.
 *
 * Every KPI function takes a "dimension" argument and groups by the value
 * this function picks from the deal's attributes, so a breakdown never
 * needs a rewritten query.  The dimension name is parsed once per query
 * (it is nearly always a constant) and each row then costs one argument
 * fetch.  A missing attribute (a deal with no competitor, an account with
 * no industry) becomes '(none)', so BI tools get a labelled group instead
 * of a null one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "errors.h"

/* argument positions; 0 is the dimension name itself */
static const char *const dimension_names[] = {
	"company", "pipeline", "rep", "team", "source",
	"industry", "segment", "region", "competitor", "kind", "product"
};

#define N_DIMENSIONS lengthof(dimension_names)
#define DIMENSION_LIST "company, pipeline, rep, team, source, industry, segment, region, competitor, kind, product"

typedef struct DimensionCache
{
	text	   *name;			/* the dimension argument last parsed */
	int			index;			/* its position in dimension_names */
	text	   *all;			/* the value of the company "breakdown" */
	text	   *none;			/* the value of a missing attribute */
} DimensionCache;

static int
dimension_index(text *name)
{
	char	   *s = text_to_cstring(name);

	for (int i = 0; i < (int) N_DIMENSIONS; i++)
		if (strcmp(s, dimension_names[i]) == 0)
			return i;
	ereport_without_context((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for argument \"dimension\": \"%s\"", s),
							 errhint("Valid dimensions are: %s.", DIMENSION_LIST)));
}

PG_FUNCTION_INFO_V1(dimension_value);
Datum
dimension_value(PG_FUNCTION_ARGS)
{
	DimensionCache *cache = (DimensionCache *) fcinfo->flinfo->fn_extra;
	text	   *name;

	if (PG_ARGISNULL(0))
		ereport_without_context((errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								 errmsg("argument \"dimension\" must not be null"),
								 errhint("Use 'company' for no breakdown; valid dimensions are: %s.", DIMENSION_LIST)));
	name = PG_GETARG_TEXT_PP(0);

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(DimensionCache));
		cache->all = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARHDRSZ + 3);
		SET_VARSIZE(cache->all, VARHDRSZ + 3);
		memcpy(VARDATA(cache->all), "all", 3);
		cache->none = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARHDRSZ + 6);
		SET_VARSIZE(cache->none, VARHDRSZ + 6);
		memcpy(VARDATA(cache->none), "(none)", 6);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->name == NULL ||
		VARSIZE_ANY_EXHDR(name) != VARSIZE(cache->name) - VARHDRSZ ||
		memcmp(VARDATA_ANY(name), VARDATA(cache->name), VARSIZE_ANY_EXHDR(name)) != 0)
	{
		int			index = dimension_index(name);
		Size		len = VARSIZE_ANY_EXHDR(name);

		if (cache->name != NULL)
			pfree(cache->name);
		cache->name = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARHDRSZ + len);
		SET_VARSIZE(cache->name, VARHDRSZ + len);
		memcpy(VARDATA(cache->name), VARDATA_ANY(name), len);
		cache->index = index;
	}

	if (cache->index == 0)
		PG_RETURN_TEXT_P(cache->all);
	if (cache->index >= PG_NARGS() || PG_ARGISNULL(cache->index))
		PG_RETURN_TEXT_P(cache->none);
	PG_RETURN_DATUM(PG_GETARG_DATUM(cache->index));
}

/*
 * dimension_key(dimension, pipeline_id, owner_id, value): the stable key of
 * a breakdown value, as the KPI engine's partials group by it.  Reps and
 * pipelines are keyed by id, so that two reps with one name stay apart;
 * every other dimension (including those only some KPIs accept) by the
 * value itself.  NULL when the part the key comes from is NULL.  A C
 * function rather than SQL: it runs once per deal of a pass.
 */
PG_FUNCTION_INFO_V1(dimension_key);
Datum
dimension_key(PG_FUNCTION_ARGS)
{
	text	   *name;
	text	   *key;
	int			from;
	Size		len;

	if (PG_ARGISNULL(0))
		ereport_without_context((errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								 errmsg("argument \"dimension\" must not be null")));
	name = PG_GETARG_TEXT_PP(0);
	len = VARSIZE_ANY_EXHDR(name);
	if (len == 3 && memcmp(VARDATA_ANY(name), "rep", 3) == 0)
		from = 2;
	else if (len == 8 && memcmp(VARDATA_ANY(name), "pipeline", 8) == 0)
		from = 1;
	else
		from = 3;

	if (PG_ARGISNULL(from))
		PG_RETURN_NULL();
	if (from == 3)
		PG_RETURN_DATUM(PG_GETARG_DATUM(3));

	/* the id's digits written straight into the result: one allocation */
	key = (text *) palloc(VARHDRSZ + MAXINT8LEN + 1);
	SET_VARSIZE(key, VARHDRSZ + pg_lltoa(PG_GETARG_INT64(from), VARDATA(key)));
	PG_RETURN_TEXT_P(key);
}
