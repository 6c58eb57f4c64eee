/*-------------------------------------------------------------------------
 *
 * sales_kpi.c
 *	  Module entry point: registers the extension's settings.
 *
 * Each family of SQL-callable functions lives in its own file with its own
 * header; this file only ties the module together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "errors.h"
#include "settings.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	sales_kpi_define_settings();
	sales_kpi_install_error_hook();
}
