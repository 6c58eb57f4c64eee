/*-------------------------------------------------------------------------
 *
 * schemas.h
 *	  The extension's two schemas, fixed by sales_kpi.control (relocatable =
 *	  false): sales_kpi holds the tables and the API, sales_kpi_internal the
 *	  engine's helpers and the trigger functions.  The C code names them in
 *	  every query it runs (never through search_path), and checks that a
 *	  trigger fires for a table of the first.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_SCHEMAS_H
#define SALES_KPI_SCHEMAS_H

#include "catalog/namespace.h"

#define SALES_KPI_SCHEMA "sales_kpi"
#define SALES_KPI_INTERNAL_SCHEMA "sales_kpi_internal"

/* the OID of the extension's schema, where its tables are */
static inline Oid
extension_namespace(void)
{
	return get_namespace_oid(SALES_KPI_SCHEMA, false);
}

#endif							/* SALES_KPI_SCHEMAS_H */
