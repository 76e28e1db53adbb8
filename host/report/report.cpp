// Per-cell results of a run directory, as a table, CSV or JSON: the entry
// points, which pick the format. The parts: units.cpp (how each unit
// stands), cells.cpp (aggregation), table.cpp, records.cpp (CSV and JSON),
// tasks.cpp (a split run's tasks), versus.cpp (two runs side by side).
#include "gac/report.h"

#include "host/report/records.h"
#include "host/report/table.h"

namespace gac {

namespace {

// The cells of a run, one row a cell or (per_repeat) a row a cell and repeat.
std::string format_cells(const Store& store, ReportFormat format, bool per_repeat) {
  const std::vector<CellReport> cells = cell_reports(store);
  switch (format) {
    case ReportFormat::csv:
      return per_repeat ? format_repeats_csv(cells) : format_csv(cells);
    case ReportFormat::json:
      return format_json(store, cells);  // nests the repeats in each cell
    case ReportFormat::table:
      break;
  }
  return per_repeat ? format_repeats_table(store, cells) : format_table(store, cells);
}

}  // namespace

std::string format_repeats(const Store& store, ReportFormat format) { return format_cells(store, format, true); }

std::string format_report(const Store& store, ReportFormat format) { return format_cells(store, format, false); }

}  // namespace gac
