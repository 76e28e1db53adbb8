// `gac merge DIR`: combines the tasks DIR/shards/* of a split run into DIR.
#include <iostream>
#include <memory>

#include "gac/merge.h"
#include "host/cli/commands.h"

namespace gac::cli {

Command add_merge(CLI::App& app) {
  struct Args {
    std::string dir;
    bool partial = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("merge", "combine the tasks of a split run (DIR/shards/*) into the run directory DIR");
  cmd->add_option("dir", a->dir, "the run directory gac slurm wrote to")->required();
  cmd->add_flag("--partial", a->partial, "merge even when tasks are missing or unfinished (their cells show it)");
  return [a] {
    const MergeSummary s = merge_shards(a->dir, a->partial);
    std::cout << "merged " << s.tasks - s.missing.size() << " of " << s.tasks << " tasks into " << a->dir << ": "
              << s.models << " models (" << s.streams_copied << " streams updated)";
    if (!s.missing.empty() || !s.unfinished.empty())
      std::cout << "; partial: " << s.missing.size() << " never started, " << s.unfinished.size() << " unfinished";
    std::cout << "\n";
    return 0;
  };
}

}  // namespace gac::cli
