// The config parser: TOML text, then --set overrides (the input's NUL-separated
// parts after the first). A config that parses must survive the round trip
// through the identity a run directory stores, and build its model.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "gac/config.h"
#include "gac/error.h"

using namespace gac;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_nul(data, size, 8);
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  RunConfig cfg;
  try {
    cfg = parse_config(std::string(parts[0]), "fuzz.toml", overrides);
  } catch (const Error&) {
    return 0;
  }
  // What a run stores must read back as the same run.
  const std::string identity = identity_toml(cfg);
  if (identity_toml(parse_config(identity, "config.toml")) != identity) __builtin_trap();
  parse_config(resolved_toml(cfg), "resolved.toml");

  const bool images = cfg.data.kind == "idx" || cfg.data.kind == "cifar10";
  const int c = cfg.data.kind == "cifar10" ? 3 : 1, side = images ? 28 + 4 * (c == 3) : 1;
  try {
    const Model model = build_model(cfg.model, c, side, images ? side : 2, 2 + static_cast<int>(cfg.data.classes.size()));
    make_prior_spec(cfg.prior, model);
  } catch (const Error&) {
  }
  return 0;
}
