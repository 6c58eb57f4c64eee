/*-------------------------------------------------------------------------
 *
 * fuzz_call.c
 *	  Calling the extension's functions inside internal subtransactions, so
 *	  that an error is caught, its SQLSTATE recorded, and the run goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"

/*
 * Runs fn inside an internal subtransaction.  On success the subtransaction
 * is released and whatever fn allocated stays in the caller's memory
 * context; on error the error is copied into res, flushed, and the
 * subtransaction rolled back.
 */
void
run_protected(ProtectedFn fn, void *arg, CallResult *res)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	memset(res, 0, sizeof(*res));
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		fn(arg, res);
		res->ok = true;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		res->ok = false;
		res->isnull = true;
		res->sqlerrcode = edata->sqlerrcode;
		res->message = edata->message ? edata->message : "";
	}
	PG_END_TRY();
}

const char *
sqlstate_text(int sqlerrcode)
{
	return unpack_sql_state(sqlerrcode);
}

/*
 * A refusal the harness accepts: a data exception (class 22), a feature not
 * supported (0A000) or a program limit (54000).  Anything else, an internal
 * error (XX000) or data corruption (XX001) above all, is a violation.
 */
bool
refusal_allowed(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED ||
		sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

void
fn_lookup(FuzzFn *fn, const char *signature)
{
	Oid			oid;

	oid = DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(signature)));
	fn->signature = signature;
	fmgr_info_cxt(oid, &fn->flinfo, TopMemoryContext);
}

typedef struct FnCallArgs
{
	FuzzFn	   *fn;
	int			nargs;
	const Datum *args;
	const bool *nulls;
} FnCallArgs;

static void
fn_call_body(void *arg, CallResult *res)
{
	FnCallArgs *a = arg;
	LOCAL_FCINFO(fcinfo, 4);

	Assert(a->nargs <= 4);
	InitFunctionCallInfoData(*fcinfo, &a->fn->flinfo, a->nargs, InvalidOid, NULL, NULL);
	for (int i = 0; i < a->nargs; i++)
	{
		fcinfo->args[i].value = a->args[i];
		fcinfo->args[i].isnull = a->nulls != NULL && a->nulls[i];
	}
	res->value = FunctionCallInvoke(fcinfo);
	res->isnull = fcinfo->isnull;
}

/* calls a function of non-null arguments; its result may be NULL */
CallResult
fn_call(FuzzFn *fn, int nargs, const Datum *args)
{
	return fn_call_nulls(fn, nargs, args, NULL);
}

CallResult
fn_call_nulls(FuzzFn *fn, int nargs, const Datum *args, const bool *nulls)
{
	FnCallArgs	a = {fn, nargs, args, nulls};
	CallResult	res;

	if (nulls != NULL && fn->flinfo.fn_strict)
	{
		/* what the executor does for a strict function */
		for (int i = 0; i < nargs; i++)
			if (nulls[i])
			{
				memset(&res, 0, sizeof(res));
				res.ok = true;
				res.isnull = true;
				return res;
			}
	}
	run_protected(fn_call_body, &a, &res);
	return res;
}

void
typeio_lookup(TypeIO *io, const char *typname)
{
	Oid			func;
	bool		varlena;

	io->typoid = DatumGetObjectId(DirectFunctionCall1(regtypein, CStringGetDatum(typname)));
	getTypeInputInfo(io->typoid, &func, &io->ioparam);
	fmgr_info_cxt(func, &io->in, TopMemoryContext);
	getTypeBinaryInputInfo(io->typoid, &func, &io->ioparam);
	fmgr_info_cxt(func, &io->recv, TopMemoryContext);
	getTypeOutputInfo(io->typoid, &func, &varlena);
	fmgr_info_cxt(func, &io->out, TopMemoryContext);
	getTypeBinaryOutputInfo(io->typoid, &func, &varlena);
	fmgr_info_cxt(func, &io->send, TopMemoryContext);
}

typedef struct IOArgs
{
	TypeIO	   *io;
	const char *text;
	StringInfo	buf;
	Datum		value;
} IOArgs;

static void
input_body(void *arg, CallResult *res)
{
	IOArgs	   *a = arg;

	res->value = InputFunctionCall(&a->io->in, (char *) a->text, a->io->ioparam, -1);
}

CallResult
call_input(TypeIO *io, const char *text)
{
	IOArgs		a = {io, text, NULL, 0};
	CallResult	res;

	run_protected(input_body, &a, &res);
	return res;
}

static void
receive_body(void *arg, CallResult *res)
{
	IOArgs	   *a = arg;

	res->value = ReceiveFunctionCall(&a->io->recv, a->buf, a->io->ioparam, -1);
	/* what COPY BINARY and the protocol's Bind do with leftover bytes */
	if (a->buf->cursor != a->buf->len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("incorrect binary data format (receive function left %d bytes unread)",
						a->buf->len - a->buf->cursor)));
}

/* the receive function gets a private copy: it may move the cursor */
CallResult
call_receive(TypeIO *io, const char *data, int len)
{
	StringInfoData buf;
	IOArgs		a = {io, NULL, &buf, 0};
	CallResult	res;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, data, len);
	run_protected(receive_body, &a, &res);
	return res;
}

static void
output_body(void *arg, CallResult *res)
{
	IOArgs	   *a = arg;

	res->value = CStringGetDatum(OutputFunctionCall(&a->io->out, a->value));
}

CallResult
call_output(TypeIO *io, Datum value)
{
	IOArgs		a = {io, NULL, NULL, value};
	CallResult	res;

	run_protected(output_body, &a, &res);
	return res;
}

static void
send_body(void *arg, CallResult *res)
{
	IOArgs	   *a = arg;

	res->value = PointerGetDatum(SendFunctionCall(&a->io->send, a->value));
}

CallResult
call_send(TypeIO *io, Datum value)
{
	IOArgs		a = {io, NULL, NULL, value};
	CallResult	res;

	run_protected(send_body, &a, &res);
	return res;
}
