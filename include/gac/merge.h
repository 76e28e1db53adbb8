// `gac merge DIR`: combines the task directories DIR/shards/0..K-1 of a split
// run (include/gac/shards.h) into DIR itself, a run directory that report,
// verify and numpy read like any other.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <vector>

namespace gac {

struct MergeSummary {
  int tasks = 0;                  // K
  std::vector<int> missing;       // tasks without a run directory
  std::vector<int> unfinished;    // tasks with a unit neither filled nor out of budget
  int streams_copied = 0;         // streams whose state the merged run did not have yet
  size_t models = 0;              // models of the merged run
};

// Every task's config must be the same run split into the same K tasks. A
// missing or unfinished task is an error unless `partial`. Goes through the
// Store like any run (one commit per stream, weights synced first), so a
// merge killed at any moment loses nothing and running it again completes
// it; merging twice changes nothing.
MergeSummary merge_shards(const std::filesystem::path& dir, bool partial);

}  // namespace gac
