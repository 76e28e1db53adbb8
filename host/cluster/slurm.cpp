#include "gac/slurm.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "gac/error.h"
#include "gac/exit_codes.h"
#include "gac/npy.h"
#include "gac/shards.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

// 'text' for bash, whatever it holds.
std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// sbatch splits #SBATCH lines at blanks: paths there must have none.
void check_sbatch_path(const fs::path& path) {
  const std::string text = path.string();
  if (text.find_first_of(" \t\n\"'") != std::string::npos)
    throw Error("cannot use " + text + " in #SBATCH lines (it holds a blank or a quote); choose another directory");
}

// An #SBATCH value on one line, one word: a newline would end the comment and
// run the rest as a command of the script; sbatch splits a line at blanks.
void check_sbatch_value(const std::string& option, const std::string& value, bool blanks_allowed) {
  for (const unsigned char c : value) {
    if (c < 0x20 || c == 0x7f)
      throw Error("--" + option + ": '" + value + "' holds a control character (a newline?); #SBATCH values are one line");
    if (!blanks_allowed && (c == ' ' || c == '"' || c == '\''))
      throw Error("--" + option + ": '" + value + "' holds a blank or a quote, which sbatch would split or strip");
  }
}

// SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (whole numbers), or UNLIMITED / INFINITE.
void check_time_limit(const std::string& time) {
  if (time == "UNLIMITED" || time == "INFINITE" || time == "unlimited" || time == "infinite") return;
  const size_t dash = time.find('-');
  const std::string days = dash == std::string::npos ? "" : time.substr(0, dash);
  const std::string clock = dash == std::string::npos ? time : time.substr(dash + 1);
  std::vector<std::string> fields;
  std::stringstream in(clock);
  for (std::string field; std::getline(in, field, ':');) fields.push_back(field);
  if (!clock.empty() && clock.back() == ':') fields.push_back("");
  const auto whole = [](const std::string& f) {
    return !f.empty() && f.size() <= 9 && std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const bool ok = (dash == std::string::npos || whole(days)) && !fields.empty() && fields.size() <= 3 &&
                  std::all_of(fields.begin(), fields.end(), whole);
  if (!ok)
    throw Error("--time: '" + time +
                "' is not a SLURM time limit (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED)");
}

// Whether DIR may take this split run: empty, or holding this run's own
// files (a merged run's, with its lock file and a killed writer's temporaries).
void check_directory(const fs::path& dir, const RunConfig& whole) {
  static const std::set<std::string> run_entries = {"config.toml", "layout.json", "ledger.sqlite", "ledger.sqlite-journal",
                                                    "weights",     "data",        "slurm",         "shards",
                                                    "writer.lock"};
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw Error("cannot use " + dir.string() + ": it exists and is not a directory");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!run_entries.count(name) && name.find(".tmp.") == std::string::npos)
      throw Error(dir.string() + " is not empty and is not a gac run directory (it holds " + name +
                  "); use a new or empty directory");
  }

  // Everything there must be this run, split the same way (a larger target may follow).
  std::vector<fs::path> configs = {dir / "slurm" / "config.toml", dir / "config.toml"};
  for (const auto& entry : fs::directory_iterator(dir / "shards", ec)) configs.push_back(entry.path() / "config.toml");
  for (const fs::path& file : configs) {
    if (!fs::exists(file)) continue;
    RunConfig there = load_config(file);
    there.task = -1;
    const std::string problem = extension_problem(there, whole);
    if (!problem.empty())
      throw Error(dir.string() + " holds another run (" + file.string() + "): " + problem + " (use a new directory)");
  }
}

// "0-(count-1)", with "%throttle" when set.
std::string array_range(int count, int throttle) {
  std::string range = "0-" + std::to_string(count - 1);
  if (throttle > 0) range += "%" + std::to_string(throttle);
  return range;
}

// The gac binary the tasks run: the given one, else this one.
fs::path gac_binary(const SlurmOptions& o) {
  return o.gac.empty() ? fs::read_symlink("/proc/self/exe") : fs::absolute(o.gac).lexically_normal();
}

std::string sbatch_line(const std::string& option) {
  return option.rfind("#SBATCH", 0) == 0 ? option + "\n" : "#SBATCH " + option + "\n";
}

// `o.dir` is absolute.
std::string script_text(const SlurmOptions& o) {
  const fs::path& dir = o.dir;
  std::ostringstream s;
  s << "#!/bin/bash\n"
       "# A gac job array, written by `gac slurm` (docs/clusters.md). Array task I\n"
       "# runs task I of the "
    << o.tasks << " tasks of the run in " << (dir / "slurm" / "config.toml").string() << "\n"
    << "# into " << (dir / "shards").string() << "/I; `gac merge " << dir.string() << "` combines them.\n"
    << "# Submit with: bash " << (dir / "slurm" / "submit.sh").string() << "\n";
  s << sbatch_line("--job-name=" + o.job_name);
  s << sbatch_line("--array=" + array_range(std::min(o.tasks, o.max_array_size), o.throttle));
  s << sbatch_line("--output=" + (dir / "slurm" / "logs" / "%A_%a.out").string());
  s << sbatch_line("--error=" + (dir / "slurm" / "logs" / "%A_%a.err").string());
  s << sbatch_line("--open-mode=append");
  s << sbatch_line("--requeue");
  s << sbatch_line("--signal=B:USR1@" + std::to_string(o.signal_seconds));
  s << sbatch_line("--chdir=" + fs::current_path().string());  // relative data paths, as where gac slurm ran
  const std::vector<std::pair<const char*, std::string>> passed = {
      {"partition", o.partition}, {"time", o.time},     {"account", o.account},
      {"qos", o.qos},             {"mem", o.mem},       {"gpus-per-task", o.gpus_per_task},
      {"gres", o.gres},           {"constraint", o.constraint}};
  for (const auto& [name, value] : passed)
    if (!value.empty()) s << sbatch_line(std::string("--") + name + "=" + value);
  if (o.cpus_per_task > 0) s << sbatch_line("--cpus-per-task=" + std::to_string(o.cpus_per_task));
  for (const std::string& line : o.sbatch_lines) s << sbatch_line(line);
  s << "\n"
    << "gac=" << quote(gac_binary(o).string()) << "\n"
    << "dir=" << quote(dir.string()) << "\n"
    << "tasks=" << o.tasks << "\n"
    << "max_requeues=" << o.max_requeues << "\n"
    << "task=$((SLURM_ARRAY_TASK_ID + ${GAC_TASK_OFFSET:-0}))  # submit.sh offsets chunks beyond MaxArraySize\n"
    << "echo \"gac: task $task of $tasks on $(hostname) at $(date -Is), restart ${SLURM_RESTART_COUNT:-0}\"\n"
    << "\n"
       "# gac runs in the background so that this shell can pass SLURM's signals on:\n"
       "# USR1 before the time limit, TERM on preemption, requeue or scancel. gac\n"
       "# then commits and exits "
    << kExitResumable
    << " (stopped early, resumable) within seconds.\n"
       "\"$gac\" run \"$dir/slurm/config.toml\" --shard \"$task/$tasks\" -o \"$dir/shards/$task\" --backend "
    << o.backend << " &\n"
    << "pid=$!\n"
       "warned=0\n"
       "trap 'warned=1; kill -USR1 $pid 2>/dev/null' USR1\n"
       "trap 'kill -TERM $pid 2>/dev/null' TERM INT\n"
       "wait $pid\n"
       "status=$?\n"
       "# A trapped signal ends `wait` early (status > 128): wait again for gac's own status.\n"
       "while [ $status -gt 128 ]; do\n"
       "  wait $pid 2>/dev/null\n"
       "  next=$?\n"
       "  [ $next -eq 127 ] && break  # no such child: $status was gac's own\n"
       "  status=$next\n"
       "done\n"
       "echo \"gac: task $task exited with $status at $(date -Is)\"\n"
       "# Stopped before the time limit: requeue this task, a bounded number of times;\n"
       "# the requeued task resumes where it stopped. (After a preemption SLURM\n"
       "# requeues it itself.)\n"
       "if [ $status -eq "
    << kExitResumable
    << " ] && [ $warned -eq 1 ]; then\n"
       "  if [ \"${SLURM_RESTART_COUNT:-0}\" -lt $max_requeues ]; then\n"
       "    echo \"gac: requeueing task $task to continue\"\n"
       "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
       "  else\n"
       "    echo \"gac: task $task was requeued $max_requeues times; submit again to continue\"\n"
       "  fi\n"
       "fi\n"
       "exit $status\n";
  return s.str();
}

std::vector<std::vector<std::string>> chunk_commands(const SlurmOptions& o, const fs::path& script) {
  std::vector<std::vector<std::string>> commands;
  for (int offset = 0; offset < o.tasks; offset += o.max_array_size) {
    const int count = std::min(o.max_array_size, o.tasks - offset);
    commands.push_back({"sbatch", "--parsable", "--array=" + array_range(count, o.throttle),
                        "--export=ALL,GAC_TASK_OFFSET=" + std::to_string(offset), script.string()});
  }
  return commands;
}

std::string command_line(const std::vector<std::string>& args) {
  std::string line;
  for (const std::string& a : args) {
    if (!line.empty()) line += ' ';
    line += quote(a);
  }
  return line;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && ::access((fs::path(d) / program).c_str(), X_OK) == 0) return true;
  return false;
}

// Runs `args`; returns its exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run_program(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Error(std::string("cannot run ") + args[0] + ": " + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot run ") + args[0] + ": " + std::strerror(errno));
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

// sbatch --parsable prints "id" or "id;cluster".
std::string submit(const std::vector<std::string>& args) {
  const auto [status, output] = run_program(args);
  std::string message = output;
  std::replace(message.begin(), message.end(), '\n', ' ');
  while (!message.empty() && message.back() == ' ') message.pop_back();
  if (status != 0) throw Error("sbatch failed (exit " + std::to_string(status) + "): " + message);
  const std::string id = output.substr(0, output.find_first_of(";\n"));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error("sbatch printed no job id: " + message);
  return id;
}

std::vector<std::string> merge_command(const SlurmOptions& o, const std::vector<std::string>& ids) {
  std::string dependency = "--dependency=afterany";
  for (const std::string& id : ids) dependency += ":" + id;
  std::vector<std::string> args = {"sbatch",
                                   "--parsable",
                                   dependency,
                                   "--job-name=" + o.job_name + "-merge",
                                   "--output=" + (o.dir / "slurm" / "logs" / "merge_%j.out").string(),
                                   "--chdir=" + fs::current_path().string()};
  for (const auto& [name, value] : {std::pair{"partition", o.partition}, {"account", o.account}, {"qos", o.qos}})
    if (!value.empty()) args.push_back(std::string("--") + name + "=" + value);
  args.push_back("--wrap=" + quote(gac_binary(o).string()) + " merge " + quote(o.dir.string()));
  return args;
}

}  // namespace

SlurmFiles write_slurm_files(const RunConfig& cfg, const SlurmOptions& options) {
  if (options.tasks < 1) throw Error("--tasks must be at least 1, got " + std::to_string(options.tasks));
  const fs::path dir = fs::absolute(options.dir).lexically_normal();
  check_sbatch_path(dir);
  check_sbatch_path(fs::current_path());
  const std::vector<std::pair<const char*, const std::string*>> values = {
      {"job-name", &options.job_name}, {"partition", &options.partition}, {"time", &options.time},
      {"account", &options.account},   {"qos", &options.qos},             {"mem", &options.mem},
      {"gpus-per-task", &options.gpus_per_task}, {"gres", &options.gres}, {"constraint", &options.constraint}};
  for (const auto& [option, value] : values) check_sbatch_value(option, *value, false);
  for (const std::string& line : options.sbatch_lines) check_sbatch_value("sbatch", line, true);
  if (!options.time.empty()) check_time_limit(options.time);
  RunConfig whole = cfg;
  whole.tasks = options.tasks;
  whole.task = -1;
  check_directory(dir, whole);

  SlurmFiles files;
  files.config = dir / "slurm" / "config.toml";
  files.script = dir / "slurm" / "gac.sbatch";
  files.submit = dir / "slurm" / "submit.sh";
  std::error_code ec;
  fs::create_directories(dir / "slurm" / "logs", ec);
  if (ec) throw Error("cannot create " + (dir / "slurm" / "logs").string() + ": " + ec.message());
  SlurmOptions o = options;
  o.dir = dir;
  write_file_atomic(files.config, resolved_toml(whole));
  write_file_atomic(files.script, script_text(o));
  files.sbatch_commands = chunk_commands(options, files.script);
  std::string submit = "#!/bin/bash\n# Submits " + files.script.string() + ": " + std::to_string(options.tasks) +
                       " tasks in chunks of at most MaxArraySize (" + std::to_string(options.max_array_size) +
                       ").\nset -e\n";
  for (const auto& command : files.sbatch_commands) submit += command_line(command) + "\n";
  write_file_atomic(files.submit, submit);
  ::chmod(files.script.c_str(), 0755);
  ::chmod(files.submit.c_str(), 0755);
  return files;
}

std::vector<std::string> submit_slurm(const SlurmFiles& files, const SlurmOptions& options, bool merge_after) {
  if (!on_path("sbatch"))
    throw Error("sbatch is not on PATH (is this a SLURM login node?); the job is written to " + files.script.string() +
                ": submit it with bash " + files.submit.string());
  std::vector<std::string> ids;
  for (const auto& command : files.sbatch_commands) ids.push_back(submit(command));
  if (merge_after) {
    SlurmOptions o = options;
    o.dir = fs::absolute(options.dir).lexically_normal();
    ids.push_back(submit(merge_command(o, ids)));
  }
  return ids;
}

}  // namespace gac
