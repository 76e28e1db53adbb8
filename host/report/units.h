// The units (include/gac/shards.h) a run directory's cells and tasks are made
// of, and how each stands: its stream's state in the ledger, and whether the
// process that last wrote the directory may still be running.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gac/shards.h"
#include "gac/store.h"

namespace gac {

bool writer_alive(const std::optional<WriterInfo>& w);

std::vector<Unit> directory_units(const RunMeta& meta);

using StreamIndex = std::map<std::tuple<int, int, int>, const StreamState*>;

StreamIndex index_streams(const std::vector<StreamState>& states);
const StreamState* find_stream(const StreamIndex& index, const Unit& u);  // nullptr before its first commit

std::string unit_status(const Unit& u, const StreamState* st, bool alive);
std::string worse_status(const std::string& a, const std::string& b);  // the more telling of two unit statuses

}  // namespace gac
