// `gac slurm`: an sbatch job array whose task I runs task I of K of a run
// (include/gac/shards.h) into DIR/shards/I, to be merged with `gac merge DIR`.
//
//   DIR/slurm/config.toml   the run's resolved config, split into K tasks
//   DIR/slurm/gac.sbatch    the job array script (read and edit it freely)
//   DIR/slurm/submit.sh     the sbatch commands that submit it (chunks of MaxArraySize)
//   DIR/slurm/logs/         %A_%a.out / .err of each task, appended across requeues
//
// Preemption and time limits: SLURM sends USR1 `signal_seconds` before the
// time limit (--signal=B:USR1@...) and TERM on preemption or requeue; the
// script passes either on to gac, which commits and exits 75 within seconds.
// After USR1 the script requeues its own task (scontrol requeue), at most
// `max_requeues` times (SLURM_RESTART_COUNT); a preempted task is requeued by
// SLURM itself (--requeue). A requeued task resumes where it stopped.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "gac/config.h"

namespace gac {

struct SlurmOptions {
  std::filesystem::path dir;   // the run directory
  int tasks = 0;               // K
  int throttle = 0;            // at most this many tasks at once (%P; 0: no limit)
  int max_array_size = 1001;   // the cluster's MaxArraySize: more tasks are submitted in chunks
  int max_requeues = 10;       // requeues after a time limit, per task
  int signal_seconds = 120;    // USR1 this long before the time limit
  std::string backend = "auto";
  std::filesystem::path gac;   // the gac binary the tasks run (default: this one)
  // Passed through as #SBATCH options when set.
  std::string job_name, partition, time, account, qos, mem, gpus_per_task, gres, constraint;
  int cpus_per_task = 0;
  std::vector<std::string> sbatch_lines;  // extra raw lines, e.g. "--mail-type=END" or "#SBATCH --exclusive"
};

struct SlurmFiles {
  std::filesystem::path config, script, submit;
  // One sbatch invocation per chunk of at most max_array_size tasks.
  std::vector<std::vector<std::string>> sbatch_commands;
};

// Writes DIR/slurm/*. Refuses (gac::Error) a DIR that holds another run or
// tasks of a run split differently.
SlurmFiles write_slurm_files(const RunConfig& cfg, const SlurmOptions& options);

// Submits every chunk with sbatch (never waiting on the queue), and, with
// `merge_after`, a job running `gac merge DIR` once every task has ended
// (--dependency=afterany). Returns the job ids. Throws gac::Error when sbatch
// is missing or refuses, with its message in one line.
std::vector<std::string> submit_slurm(const SlurmFiles& files, const SlurmOptions& options, bool merge_after);

}  // namespace gac
