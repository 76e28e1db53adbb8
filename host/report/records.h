// The report as records, for CSV and JSON: the fields of a cell, a repeat
// and a run, in column order, and CSV text made of them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gac/report.h"

namespace gac {

using ordered_json = nlohmann::ordered_json;  // keeps the columns in the order they are added

ordered_json meta_json(const RunMeta& m);

// The field "failed" (draws that gave no model) of a run of `optimizer`:
// missing (NaN) for guess and check, which has no optimization to fail.
ordered_json failed_field(const std::string& optimizer, uint64_t failed);

// A header of the fields of `header`, then one line per row of the same fields.
std::string csv_text(const ordered_json& header, const std::vector<ordered_json>& rows);

std::string format_csv(const std::vector<CellReport>& cells);
std::string format_repeats_csv(const std::vector<CellReport>& cells);  // one row per cell and repeat
std::string format_json(const Store& store, const std::vector<CellReport>& cells);

}  // namespace gac
