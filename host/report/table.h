// The report as text tables, and the text pieces other tables (--versus) share.
#pragma once

#include <string>
#include <vector>

#include "gac/report.h"

namespace gac {

std::string printf_string(const char* format, double a, double b = 0, double c = 0);
std::string bin_label(double lo, double hi, int decimals);  // "(0.30, 0.35]"
int edge_decimals(const std::vector<double>& edges);
std::string aligned(const std::vector<std::vector<std::string>>& rows);

std::string format_table(const Store& store, const std::vector<CellReport>& cells);
std::string format_repeats_table(const Store& store, const std::vector<CellReport>& cells);  // a row per cell and repeat

}  // namespace gac
