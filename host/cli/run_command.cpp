// `gac run CONFIG`: draws until every cell is filled, then prints the report.
#include <charconv>
#include <filesystem>
#include <iostream>
#include <memory>

#include "gac/error.h"
#include "gac/exit_codes.h"
#include "gac/report.h"
#include "gac/run.h"
#include "gac/store.h"
#include "host/cli/commands.h"

namespace gac::cli {

namespace fs = std::filesystem;

namespace {

// "I/K" with 0 <= I < K: task I of a run split into K tasks.
void apply_shard(const std::string& text, RunConfig& cfg) {
  const auto slash = text.find('/');
  int task = -1, tasks = 0;
  auto number = [](std::string_view s, int& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
  };
  if (slash == std::string::npos || !number(std::string_view(text).substr(0, slash), task) ||
      !number(std::string_view(text).substr(slash + 1), tasks) || tasks < 1 || task < 0 || task >= tasks)
    throw Error("--shard: expected I/K, task I of K tasks with 0 <= I < K (e.g. 3/8), got '" + text + "'");
  cfg.task = task;
  cfg.tasks = tasks;
}

}  // namespace

Command add_run(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    std::string out, shard;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "draw models until every loss bin is filled");
  add_config_options(cmd, a->config, true);
  cmd->add_option("-o,--output", a->out, "run directory (default: runs/<config name>)");
  cmd->add_option("--shard", a->shard, "run task I of K (I/K): the run.shard and run.shards keys");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  return [a] {
    RunConfig cfg = resolve(a->config);
    if (!a->shard.empty()) apply_shard(a->shard, cfg);
    RunOptions opts;
    opts.dir = !a->out.empty()        ? fs::path(a->out)
               : !cfg.output.empty() ? fs::path(cfg.output)
                                     : fs::path("runs") / fs::path(a->config.config).stem();
    opts.progress = !a->quiet;
    opts.stop = &install_stop_signals();
    const RunOutcome outcome = run_experiment(cfg, opts, std::cerr);
    const auto store = Store::open_existing(opts.dir);
    std::cout << format_report(*store, ReportFormat::table);
    return outcome.complete ? kExitFinished : kExitResumable;
  };
}

}  // namespace gac::cli
