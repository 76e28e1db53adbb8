// `gac slurm CONFIG -o DIR --tasks K [--submit]`: a SLURM job array of the run.
#include <filesystem>
#include <iostream>
#include <memory>

#include "gac/slurm.h"
#include "host/cli/commands.h"

namespace gac::cli {

Command add_slurm(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    SlurmOptions slurm;
    std::string out;
    bool submit = false, merge_after = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("slurm", "write (and with --submit submit) a SLURM job array whose tasks split the run");
  add_config_options(cmd, a->config, true);
  SlurmOptions& o = a->slurm;
  cmd->add_option("-o,--output", a->out, "run directory: DIR/slurm/ (script, logs), DIR/shards/I (task I)")->required();
  cmd->add_option("--tasks", o.tasks, "number of array tasks K")->required()->check(whole_number(1, 1 << 20));
  cmd->add_option("--throttle", o.throttle, "at most this many tasks at once (the array's %P)")->check(whole_number(0, 1 << 20));
  cmd->add_flag("--submit", a->submit, "submit with sbatch and print the job ids (default: only write the script)");
  cmd->add_flag("--merge-job", a->merge_after, "with --submit: also submit `gac merge DIR` to run after every task");
  cmd->add_option("--job-name", o.job_name, "job name (default: gac-<DIR's name>)");
  cmd->add_option("--partition", o.partition, "#SBATCH --partition");
  cmd->add_option("--time", o.time, "#SBATCH --time (a task stopped by it is requeued and resumes)");
  cmd->add_option("--account", o.account, "#SBATCH --account");
  cmd->add_option("--qos", o.qos, "#SBATCH --qos");
  cmd->add_option("--cpus-per-task", o.cpus_per_task, "#SBATCH --cpus-per-task (gac uses that many threads)")
      ->check(whole_number(1, 4096));
  cmd->add_option("--mem", o.mem, "#SBATCH --mem");
  cmd->add_option("--gpus-per-task", o.gpus_per_task, "#SBATCH --gpus-per-task (e.g. 1: one GPU per task)");
  cmd->add_option("--gres", o.gres, "#SBATCH --gres (e.g. gpu:1)");
  cmd->add_option("--constraint", o.constraint, "#SBATCH --constraint");
  cmd->add_option("--sbatch", o.sbatch_lines, "an extra #SBATCH option, e.g. --sbatch=--exclusive (repeatable)");
  cmd->add_option("--signal-seconds", o.signal_seconds, "SIGUSR1 this many seconds before the time limit (default 120)")
      ->check(whole_number(10, 65535));
  cmd->add_option("--max-requeues", o.max_requeues, "requeues of a task stopped before its time limit (default 10)")
      ->check(whole_number(0, 1000));
  cmd->add_option("--max-array-size", o.max_array_size,
                  "the cluster's MaxArraySize (default 1001): more tasks are submitted in chunks")
      ->check(whole_number(1, 1 << 24));
  cmd->add_option("--gac", o.gac, "the gac binary the tasks run (default: this one)");
  return [a] {
    const RunConfig cfg = resolve(a->config);
    SlurmOptions o = a->slurm;
    o.dir = a->out;
    if (!a->config.backend.empty()) o.backend = a->config.backend;
    if (o.job_name.empty()) o.job_name = "gac-" + std::filesystem::absolute(o.dir).lexically_normal().filename().string();
    const SlurmFiles files = write_slurm_files(cfg, o);
    if (!a->submit) {
      std::cout << "wrote " << files.script.string() << " (" << o.tasks << " tasks); submit it with: bash "
                << files.submit.string() << "\n";
      return 0;
    }
    const std::vector<std::string> ids = submit_slurm(files, o, a->merge_after);
    for (size_t i = 0; i < ids.size(); ++i)
      std::cout << (a->merge_after && i + 1 == ids.size() ? "merge job " : "job array ") << ids[i] << "\n";
    return 0;
  };
}

}  // namespace gac::cli
