// The bench's standard scenarios, each built as a user would write its config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gac/config.h"

namespace gac {

struct Scenario {
  std::string name;
  std::string what;          // one line for the table's legend
  std::vector<int> ns;       // default training-set sizes
  uint64_t probe_batch;      // first batch of the sizing probe: small enough for the scalar CPU code
};

const std::vector<Scenario>& scenarios();

// A directory for synthetic data files, removed when the bench ends.
class TempDir {
 public:
  const std::filesystem::path& path();
  ~TempDir();

 private:
  std::filesystem::path path_;
};

// The scenario's config, as a user would write it. `data_name` says which data it uses.
RunConfig scenario_config(const Scenario& s, const std::vector<int>& ns, TempDir& tmp, std::string& data_name);

}  // namespace gac
