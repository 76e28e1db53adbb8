// `gac report DIR`: per-cell results as a table, CSV or JSON.
#include <filesystem>
#include <iostream>
#include <memory>

#include "gac/report.h"
#include "gac/store.h"
#include "host/cli/commands.h"
#include "host/report/probes.h"

namespace gac::cli {

Command add_report(CLI::App& app) {
  struct Args {
    std::string dir, versus, probes;
    bool csv = false, json = false, per_repeat = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "report", "per-cell results of a run directory; progress per task of a split run not merged yet");
  cmd->add_option("dir", a->dir, "run directory")->required();
  auto* csv_flag = cmd->add_flag("--csv", a->csv, "CSV instead of a table");
  cmd->add_flag("--json", a->json, "JSON instead of a table")->excludes(csv_flag);
  auto* per_repeat =
      cmd->add_flag("--per-repeat", a->per_repeat, "one row per cell and repeat (training set): classes, models, accuracy");
  cmd->add_option("--versus", a->versus,
                  "another run of the same bins (e.g. SGD against guess and check): the cells of the sizes n both have side by side, with the "
                  "difference of their mean test accuracies and its 95% interval")
      ->excludes(per_repeat);
  cmd->add_option("--probes", a->probes,
                  "slab: how many models fit the paper's linear and nonlinear probe sets of the slab data (Figure 3)")
      ->check(CLI::IsMember({"slab"}))
      ->excludes(per_repeat)
      ->excludes("--versus");
  return [a] {
    const ReportFormat format = a->csv ? ReportFormat::csv : a->json ? ReportFormat::json : ReportFormat::table;
    // A split run before its merge: how far each task has come.
    const std::filesystem::path dir = a->dir;
    if (!a->probes.empty()) {
      std::cout << format_probe_report(*Store::open_existing(dir), slab_probes(), format);
      return 0;
    }
    if (!a->versus.empty()) {
      std::cout << format_versus(*Store::open_existing(dir), *Store::open_existing(a->versus), format);
      return 0;
    }
    if (!std::filesystem::exists(dir / "ledger.sqlite") &&
        (std::filesystem::is_directory(dir / "shards") || std::filesystem::exists(dir / "slurm" / "config.toml"))) {
      std::cout << format_task_progress(dir, format);
      return 0;
    }
    const auto store = Store::open_existing(dir);
    std::cout << (a->per_repeat ? format_repeats(*store, format) : format_report(*store, format));
    return 0;
  };
}

}  // namespace gac::cli
