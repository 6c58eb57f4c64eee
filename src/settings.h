/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The sales_kpi.* configuration parameters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_SETTINGS_H
#define SALES_KPI_SETTINGS_H

typedef enum StageGateMode
{
	STAGE_GATE_OFF,
	STAGE_GATE_WARN,
	STAGE_GATE_ENFORCE
} StageGateMode;

extern char *sales_kpi_base_currency;
extern char *sales_kpi_reporting_timezone;
extern int	sales_kpi_fiscal_year_start_month;
extern int	sales_kpi_stage_gate_mode;

extern void sales_kpi_define_settings(void);
extern void sales_kpi_check_base_currency(void);

#endif							/* SALES_KPI_SETTINGS_H */
