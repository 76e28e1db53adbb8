// `gac verify DIR`: regenerates stored models from their draw indices.
#include <climits>
#include <iostream>
#include <memory>

#include "gac/verify.h"
#include "host/cli/commands.h"

namespace gac::cli {

Command add_verify(CLI::App& app) {
  struct Args {
    std::string dir;
    int limit = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("verify", "regenerate stored models from their draw indices and re-score them");
  cmd->add_option("dir", a->dir, "run directory")->required();
  cmd->add_option("--limit", a->limit, "check at most this many models (0 = all)")->check(whole_number(0, INT_MAX));
  return [a] { return verify_run(a->dir, a->limit, std::cout) ? 0 : 1; };
}

}  // namespace gac::cli
