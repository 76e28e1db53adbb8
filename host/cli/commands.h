// The gac command line: one file per subcommand. Each add_* registers its
// options on the app and returns the function that runs it once parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "gac/config.h"

namespace gac::cli {

using Command = std::function<int()>;

// Options shared by the commands that take a config file.
struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string backend;
  std::string devices;
  int threads = -1;
};
void add_config_options(CLI::App* cmd, ConfigArgs& a, bool config_required);

// An option's value must be a whole number in [lo, hi]; the error says so
// ("expected a whole number from 1 to 4096, got 'abc'"), unlike CLI::Range's
// "Value abc not in range".
CLI::Validator whole_number(long long lo, long long hi);
RunConfig resolve(const ConfigArgs& a);  // the config file, its --set overrides, --backend and --threads

Command add_run(CLI::App& app);
Command add_report(CLI::App& app);
Command add_verify(CLI::App& app);
Command add_info(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_slurm(CLI::App& app);
Command add_merge(CLI::App& app);
Command add_plot(CLI::App& app);

}  // namespace gac::cli
