/*-------------------------------------------------------------------------
 *
 * fuzz_main.c
 *	  fuzz_run(seed, iterations, corpus): the fuzz loop over every summary
 *	  type's input and receive functions.
 *
 * Each iteration picks a type and a format (text or binary), makes an input
 * (fuzz_mutate.c, fuzz_mutate_bin.c) and hands it to the type's input or
 * receive function inside a subtransaction.  A refusal must be a data
 * exception (class 22), 0A000 or 54000; an accepted value goes through
 * every check of fuzz_check.c and joins the pool later inputs start from.
 * One iteration in ten also builds a value through the transition and
 * inverse functions (fuzz_build.c) and checks it likewise.
 *
 * It returns one row per (type, format, outcome) with its count, and one
 * row per violation (the first max_violations), with the iteration, the
 * check that failed and the input.  The same seed gives the same run.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"
#include "fuzz_values.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

#define MAX_RECENT 64
#define KEYLEN 96

typedef struct CountEntry
{
	char		key[KEYLEN];	/* type \t format \t outcome */
	int64		count;
} CountEntry;

typedef struct Violation
{
	int64		iteration;
	const char *type;
	const char *format;
	char	   *check;
	char	   *detail;
} Violation;

typedef struct FuzzRun
{
	FuzzRng		rng;
	MemoryContext run_cxt;
	HTAB	   *counts;
	FuzzPool	pools[FT_NTYPES];
	int64		iteration;
	FuzzType	type;
	const char *format;
	const char *input;			/* the current input, as a SQL literal */
	Violation  *violations;
	int			nviolations;
	int			max_violations;
} FuzzRun;

static void
count_outcome(FuzzRun *run, const char *type, const char *format, const char *outcome)
{
	char		key[KEYLEN];
	CountEntry *e;
	bool		found;

	snprintf(key, sizeof(key), "%s\t%s\t%s", type, format, outcome);
	e = hash_search(run->counts, key, HASH_ENTER, &found);
	if (!found)
		e->count = 0;
	e->count++;
}

static void
count_cb(void *arg, const char *format, const char *outcome)
{
	FuzzRun    *run = arg;

	count_outcome(run, fuzz_type_names[run->type], format, outcome);
}

static void
violation_cb(void *arg, const char *check, const char *detail)
{
	FuzzRun    *run = arg;
	MemoryContext old;

	count_outcome(run, fuzz_type_names[run->type], run->format, psprintf("VIOLATION %s", check));
	if (run->nviolations >= run->max_violations)
		return;
	old = MemoryContextSwitchTo(run->run_cxt);
	run->violations[run->nviolations].iteration = run->iteration;
	run->violations[run->nviolations].type = fuzz_type_names[run->type];
	run->violations[run->nviolations].format = run->format;
	run->violations[run->nviolations].check = pstrdup(check);
	run->violations[run->nviolations].detail = psprintf("%s; input: %s", detail, run->input);
	run->nviolations++;
	MemoryContextSwitchTo(old);
}

/* text as a SQL literal E'...', escaping what is not printable ASCII-safe */
static char *
text_literal(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "E'");
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfo(&buf, "\\%c", *p);
		else if (*p < 32 || *p == 127)
			appendStringInfo(&buf, "\\x%02x", *p);
		else
			appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '\'');
	return buf.data;
}

static char *
bytes_literal(const char *data, int len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "'\\x");
	for (int i = 0; i < len; i++)
		appendStringInfo(&buf, "%02x", (unsigned char) data[i]);
	appendStringInfoString(&buf, "'::bytea");
	return buf.data;
}

/* the value's text and binary forms, copied into the run's memory */
static bool
value_forms(FuzzRun *run, FuzzType t, Datum value, const char *text, FuzzValue *v)
{
	CallResult	out = call_output(type_io(t), value);
	CallResult	send = call_send(type_io(t), value);
	bytea	   *b;
	MemoryContext old;

	if (!out.ok || !send.ok)
		return false;
	b = DatumGetByteaPP(send.value);
	old = MemoryContextSwitchTo(run->run_cxt);
	v->text = pstrdup(text != NULL ? text : DatumGetCString(out.value));
	v->binlen = VARSIZE_ANY_EXHDR(b);
	v->bin = palloc(v->binlen + 1);
	memcpy(v->bin, VARDATA_ANY(b), v->binlen);
	MemoryContextSwitchTo(old);
	return true;
}

static void
pool_add(FuzzRun *run, FuzzType t, Datum value)
{
	FuzzPool   *p = &run->pools[t];
	FuzzValue	v;

	if (!value_forms(run, t, value, NULL, &v))
		return;
	if (p->nrecent < p->max_recent)
		p->recent[p->nrecent++] = v;
	else
	{
		FuzzValue  *old = &p->recent[p->next_recent];

		pfree(old->text);
		pfree(old->bin);
		*old = v;
		p->next_recent = (p->next_recent + 1) % p->max_recent;
	}
}

/* an earlier value of the type, parsed, or 0 when there is none */
static Datum
pool_datum(FuzzRun *run, FuzzType t)
{
	const FuzzValue *v = pick_value(&run->rng, &run->pools[t]);
	CallResult	res;

	if (v == NULL)
		return (Datum) 0;
	res = call_input(type_io(t), v->text);
	return res.ok ? res.value : (Datum) 0;
}

/* corpus lines "type<TAB>value"; every value must be accepted */
static void
load_corpus(FuzzRun *run, ArrayType *corpus)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(corpus, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int t = 0; t < FT_NTYPES; t++)
	{
		run->pools[t].corpus = MemoryContextAllocZero(run->run_cxt, sizeof(FuzzValue) * Max(n, 1));
		run->pools[t].recent = MemoryContextAllocZero(run->run_cxt, sizeof(FuzzValue) * MAX_RECENT);
		run->pools[t].max_recent = MAX_RECENT;
	}
	for (int i = 0; i < n; i++)
	{
		char	   *line,
				   *tab;
		int			t;
		CallResult	res;
		FuzzPool   *p;

		if (nulls[i])
			continue;
		line = TextDatumGetCString(elems[i]);
		tab = strchr(line, '\t');
		if (tab == NULL)
			elog(ERROR, "corpus entry without a type: %s", line);
		*tab = '\0';
		for (t = 0; t < FT_NTYPES; t++)
			if (strcmp(line, fuzz_type_names[t]) == 0)
				break;
		if (t == FT_NTYPES)
			elog(ERROR, "corpus entry of unknown type %s", line);
		res = call_input(type_io(t), tab + 1);
		if (!res.ok)
			elog(ERROR, "corpus value of %s refused (%s): %s", line, res.message, tab + 1);
		p = &run->pools[t];
		if (!value_forms(run, t, res.value, tab + 1, &p->corpus[p->ncorpus]))
			elog(ERROR, "corpus value of %s has no output: %s", line, tab + 1);
		p->ncorpus++;
	}
}

static void
run_iteration(FuzzRun *run, FuzzChecker *checker, StringInfo input)
{
	FuzzRng    *r = &run->rng;
	FuzzType	t = rng_below(r, FT_NTYPES);
	bool		binary = rng_chance(r, 50);
	bool		must_accept;
	CallResult	res;

	run->type = t;
	run->format = binary ? "binary" : "text";

	/* a value built by the transition functions, from empty or an earlier value */
	if (rng_chance(r, 10))
	{
		Datum		start = rng_chance(r, 50) ? pool_datum(run, t) : (Datum) 0;
		Datum		built;
		StringInfoData trace;

		run->format = "built";
		initStringInfo(&trace);
		run->input = "(building)";
		if (!build_value(checker, t, start, &built, &trace))
			count_outcome(run, fuzz_type_names[t], "built", "NULL");
		else
		{
			count_outcome(run, fuzz_type_names[t], "built", "value");
			run->input = trace.data;
			if (check_value(checker, t, built, (Datum) 0))
				pool_add(run, t, built);
		}
		run->format = binary ? "binary" : "text";
	}

	if (binary)
	{
		must_accept = make_binary_input(r, t, run->pools, input);
		run->input = bytes_literal(input->data, input->len);
		res = call_receive(type_io(t), input->data, input->len);
	}
	else
	{
		must_accept = make_text_input(r, t, run->pools, input);
		run->input = text_literal(input->data);
		res = call_input(type_io(t), input->data);
	}

	if (!res.ok)
	{
		const char *state = sqlstate_text(res.sqlerrcode);

		count_outcome(run, fuzz_type_names[t], run->format, psprintf("refused %s", state));
		if (!refusal_allowed(res.sqlerrcode))
			violation_cb(run, psprintf("refusal with SQLSTATE %s", state), res.message);
		/* the README: a malformed text value is 22P02, a malformed binary value 22P03 */
		else if (res.sqlerrcode != (binary ? ERRCODE_INVALID_BINARY_REPRESENTATION
									: ERRCODE_INVALID_TEXT_REPRESENTATION))
			violation_cb(run, psprintf("%s refusal with SQLSTATE %s", run->format, state), res.message);
		else if (must_accept)
			violation_cb(run, "good value refused", psprintf("%s: %s", state, res.message));
		return;
	}
	count_outcome(run, fuzz_type_names[t], run->format, "accepted");
	if (check_value(checker, t, res.value, rng_chance(r, 30) ? pool_datum(run, t) : (Datum) 0) &&
		rng_chance(r, 50))
		pool_add(run, t, res.value);
}

PG_FUNCTION_INFO_V1(fuzz_run);
Datum
fuzz_run(PG_FUNCTION_ARGS)
{
	static bool ready = false;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		seed = PG_GETARG_INT64(0);
	int64		iterations = PG_GETARG_INT64(1);
	ArrayType  *corpus = PG_GETARG_ARRAYTYPE_P(2);
	FuzzRun		run;
	FuzzChecker checker;
	HASHCTL		ctl;
	MemoryContext iter_cxt,
				old;
	StringInfoData input;
	HASH_SEQ_STATUS seq;
	CountEntry *e;

	if (!ready)
	{
		old = MemoryContextSwitchTo(TopMemoryContext);
		checks_init();
		build_init();
		MemoryContextSwitchTo(old);
		ready = true;
	}
	InitMaterializedSRF(fcinfo, 0);

	memset(&run, 0, sizeof(run));
	rng_seed(&run.rng, (uint64) seed);
	run.max_violations = PG_GETARG_INT32(3);
	run.run_cxt = AllocSetContextCreate(CurrentMemoryContext, "fuzz run", ALLOCSET_DEFAULT_SIZES);
	iter_cxt = AllocSetContextCreate(run.run_cxt, "fuzz iteration", ALLOCSET_DEFAULT_SIZES);
	run.violations = MemoryContextAllocZero(run.run_cxt, sizeof(Violation) * Max(run.max_violations, 1));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = KEYLEN;
	ctl.entrysize = sizeof(CountEntry);
	ctl.hcxt = run.run_cxt;
	run.counts = hash_create("fuzz counts", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	run.input = "(corpus)";
	load_corpus(&run, corpus);

	checker.rng = &run.rng;
	checker.violation = violation_cb;
	checker.count = count_cb;
	checker.arg = &run;

	for (run.iteration = 0; run.iteration < iterations; run.iteration++)
	{
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(iter_cxt);
		old = MemoryContextSwitchTo(iter_cxt);
		initStringInfo(&input);
		run_iteration(&run, &checker, &input);
		MemoryContextSwitchTo(old);
	}

	hash_seq_init(&seq, run.counts);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, true, true};
		char	   *f1 = pstrdup(e->key);
		char	   *f2 = strchr(f1, '\t');
		char	   *f3 = strchr(f2 + 1, '\t');

		*f2++ = '\0';
		*f3++ = '\0';
		values[0] = CStringGetTextDatum("count");
		values[1] = CStringGetTextDatum(f1);
		values[2] = CStringGetTextDatum(f2);
		values[3] = CStringGetTextDatum(f3);
		values[4] = Int64GetDatum(e->count);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int i = 0; i < run.nviolations; i++)
	{
		Violation  *v = &run.violations[i];
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, true, false, false};

		values[0] = CStringGetTextDatum("violation");
		values[1] = CStringGetTextDatum(v->type);
		values[2] = CStringGetTextDatum(v->format);
		values[3] = CStringGetTextDatum(v->check);
		values[5] = Int64GetDatum(v->iteration);
		values[6] = CStringGetTextDatum(v->detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(run.run_cxt);
	return (Datum) 0;
}

/* recv then out: reproduces a binary input from SQL (fuzz_recv('winloss', '\x01...')) */
PG_FUNCTION_INFO_V1(fuzz_recv);
Datum
fuzz_recv(PG_FUNCTION_ARGS)
{
	Oid			typoid = PG_GETARG_OID(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	Oid			func,
				ioparam;
	bool		varlena;
	StringInfoData buf;
	Datum		value;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
	getTypeBinaryInputInfo(typoid, &func, &ioparam);
	value = OidReceiveFunctionCall(func, &buf, ioparam, -1);
	if (buf.cursor != buf.len)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("incorrect binary data format")));
	getTypeOutputInfo(typoid, &func, &varlena);
	PG_RETURN_TEXT_P(cstring_to_text(OidOutputFunctionCall(func, value)));
}
