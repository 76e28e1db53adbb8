// Internals of the task progress of a split run (tasks.cpp) that the table
// of a merged run uses.
#pragma once

#include <string>

#include "gac/report.h"

namespace gac {

std::string merged_tasks_line(const Store& store);

}  // namespace gac
