/*-------------------------------------------------------------------------
 *
 * fuzz.h
 *	  Shared declarations of the sales_kpi fuzz harness (a test-only
 *	  loadable module, never part of the extension).
 *
 * fuzz_main.c     the SQL entry point, the per-iteration loop, counting
 * fuzz_rng.c      the seeded PRNG (splitmix64 seeding xoshiro256**)
 * fuzz_mutate.c   input generation: mutations of text and binary values
 * fuzz_call.c     calls inside internal subtransactions, function look-ups
 * fuzz_check.c    round trips, combine and accessor invariants per type
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_FUZZ_H
#define SALES_KPI_FUZZ_H

#include "postgres.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

/* ---- PRNG ---- */
typedef struct FuzzRng
{
	uint64		s[4];
} FuzzRng;

extern void rng_seed(FuzzRng *r, uint64 seed);
extern uint64 rng_next(FuzzRng *r);
extern uint64 rng_below(FuzzRng *r, uint64 n);	/* uniform in [0, n) */
extern bool rng_chance(FuzzRng *r, int percent);
extern double rng_unit(FuzzRng *r);	/* uniform in [0, 1) */

/* ---- summary types ---- */
typedef enum FuzzType
{
	FT_WEIGHTED_SUM,
	FT_WINLOSS,
	FT_DURATION,
	FT_SURVIVAL,
	FT_LIFT,
	FT_FUNNEL,
	FT_NTYPES
} FuzzType;

extern const char *const fuzz_type_names[FT_NTYPES];

/* ---- calling functions inside a subtransaction ---- */
typedef struct CallResult
{
	bool		ok;				/* no error */
	bool		isnull;			/* the result is SQL NULL (when ok) */
	Datum		value;			/* the result (when ok and not null) */
	int			sqlerrcode;		/* the error's code (when !ok) */
	char	   *message;		/* the error's message (when !ok) */
} CallResult;

/* a function of the extension looked up once by its signature */
typedef struct FuzzFn
{
	const char *signature;		/* regprocedure text */
	FmgrInfo	flinfo;
} FuzzFn;

typedef void (*ProtectedFn) (void *arg, CallResult *res);
extern void run_protected(ProtectedFn fn, void *arg, CallResult *res);

extern void fn_lookup(FuzzFn *fn, const char *signature);
extern CallResult fn_call(FuzzFn *fn, int nargs, const Datum *args);
/* nulls may be NULL; a NULL argument is passed only to a function that is not strict */
extern CallResult fn_call_nulls(FuzzFn *fn, int nargs, const Datum *args, const bool *nulls);

typedef struct TypeIO
{
	Oid			typoid;
	Oid			ioparam;
	FmgrInfo	in,
				out,
				recv,
				send;
} TypeIO;

extern void typeio_lookup(TypeIO *io, const char *typname);
extern CallResult call_input(TypeIO *io, const char *text);
extern CallResult call_receive(TypeIO *io, const char *data, int len);
extern CallResult call_output(TypeIO *io, Datum value);	/* value: cstring */
extern CallResult call_send(TypeIO *io, Datum value);	/* value: bytea */

extern const char *sqlstate_text(int sqlerrcode);
extern bool refusal_allowed(int sqlerrcode);

/* ---- input generation ---- */
typedef struct FuzzValue
{
	char	   *text;			/* text form, NUL-terminated */
	char	   *bin;			/* binary form */
	int			binlen;
} FuzzValue;

/* the values an input may start from: corpus entries and accepted values */
typedef struct FuzzPool
{
	FuzzValue  *corpus;
	int			ncorpus;
	FuzzValue  *recent;			/* ring of accepted values */
	int			nrecent;
	int			next_recent;
	int			max_recent;
} FuzzPool;

/* both return true when the input is an unchanged corpus or accepted value */
extern bool make_text_input(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo out);
extern bool make_binary_input(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo out);

/* ---- checks of an accepted value ---- */

/* reports one broken invariant; check is a short name, detail free text */
typedef void (*ViolationFn) (void *arg, const char *check, const char *detail);

typedef struct FuzzChecker
{
	FuzzRng    *rng;
	ViolationFn violation;
	void	   *arg;
	/* accessor calls by outcome, filled by the checks */
	void		(*count) (void *arg, const char *format, const char *outcome);
} FuzzChecker;

extern void checks_init(void);
extern TypeIO *type_io(FuzzType t);
/* returns whether the value's text and binary forms read back */
extern bool check_value(FuzzChecker *c, FuzzType t, Datum value, Datum other);

/* a value built by 1 to 20 calls of the type's transition and inverse functions */
extern void build_init(void);
/* trace receives the successful calls as one SQL expression */
extern bool build_value(FuzzChecker *c, FuzzType t, Datum start, Datum *result, StringInfo trace);

#endif							/* SALES_KPI_FUZZ_H */
