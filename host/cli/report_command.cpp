// `gac report DIR`: per-cell results as a table, CSV or JSON.
#include <iostream>
#include <memory>

#include "gac/report.h"
#include "gac/store.h"
#include "host/cli/commands.h"

namespace gac::cli {

Command add_report(CLI::App& app) {
  struct Args {
    std::string dir;
    bool csv = false, json = false, per_repeat = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("report", "per-cell results of a run directory");
  cmd->add_option("dir", a->dir, "run directory")->required();
  auto* csv_flag = cmd->add_flag("--csv", a->csv, "CSV instead of a table");
  cmd->add_flag("--json", a->json, "JSON instead of a table")->excludes(csv_flag);
  cmd->add_flag("--per-repeat", a->per_repeat, "one row per cell and repeat (training set): classes, models, accuracy");
  return [a] {
    const auto store = Store::open_existing(a->dir);
    const ReportFormat format = a->csv ? ReportFormat::csv : a->json ? ReportFormat::json : ReportFormat::table;
    std::cout << (a->per_repeat ? format_repeats(*store, format) : format_report(*store, format));
    return 0;
  };
}

}  // namespace gac::cli
