// `gac run CONFIG`: draws until every cell is filled, then prints the report.
#include <filesystem>
#include <iostream>
#include <memory>

#include "gac/report.h"
#include "gac/run.h"
#include "gac/store.h"
#include "host/cli/commands.h"

namespace gac::cli {

namespace fs = std::filesystem;

Command add_run(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    std::string out;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "draw models until every loss bin is filled");
  add_config_options(cmd, a->config, true);
  cmd->add_option("-o,--output", a->out, "run directory (default: runs/<config name>)");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  return [a] {
    const RunConfig cfg = resolve(a->config);
    RunOptions opts;
    opts.dir = !a->out.empty()        ? fs::path(a->out)
               : !cfg.output.empty() ? fs::path(cfg.output)
                                     : fs::path("runs") / fs::path(a->config.config).stem();
    opts.progress = !a->quiet;
    const RunOutcome outcome = run_experiment(cfg, opts, std::cerr);
    const auto store = Store::open_existing(opts.dir);
    std::cout << format_report(*store, ReportFormat::table);
    if (!outcome.complete) std::cerr << "gac: run stopped before every stream finished (time limit)\n";
    return 0;
  };
}

}  // namespace gac::cli
