// `gac plot RUN_DIR... -o FILE.png|.svg`: the paper's figures. gac hands the
// runs' reports to gac_plot.py, a matplotlib script shipped with it (next to
// the executable in the build tree, or in ../share/gac/ when installed).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/report.h"
#include "gac/store.h"
#include "host/cli/commands.h"
#include "host/report/boundary.h"

extern char** environ;

namespace gac::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_executable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p); }

// Debian's python3 first: python3-matplotlib installs for it, and a python3
// earlier in PATH (a virtualenv, pyenv) may lack it.
fs::path find_python() {
  if (is_executable("/usr/bin/python3")) return "/usr/bin/python3";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(start, end - start)) / "python3";
    if (end > start && is_executable(candidate)) return candidate;
    start = end + 1;
  }
  throw Error("plot: python3 not found (gac plot draws with matplotlib: Debian packages python3 and python3-matplotlib)");
}

// gac_plot.py next to the executable (build tree, relocated binary) or in
// ../share/gac/ (installed under a prefix).
fs::path find_plot_script() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path dir = ec ? fs::current_path() : exe.parent_path();
  const fs::path candidates[] = {dir / "gac_plot.py", dir.parent_path() / "share" / "gac" / "gac_plot.py"};
  for (const fs::path& p : candidates)
    if (fs::is_regular_file(p, ec)) return p;
  throw Error("plot: gac_plot.py is missing: looked for " + candidates[0].string() + " and " + candidates[1].string() +
              " (install gac with its share/gac/ folder, or keep gac_plot.py next to the gac binary)");
}

// What the script needs of one run: its report and what labels it.
json run_entry(const std::string& dir) {
  const auto store = Store::open_existing(dir);
  // parse_config, not toml::parse: it refuses what toml++ cannot read safely.
  const RunConfig cfg = parse_config(store->config_toml(), (fs::path(dir) / "config.toml").string());
  std::string name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  json run;
  run["name"] = name;
  run["label"] = optimizer_title(cfg.optimizer) + ": " + name;
  run["optimizer"] = cfg.optimizer;
  run["hidden"] = cfg.model.arch == Arch::mlp ? json(cfg.model.hidden) : json(nullptr);
  run["width"] = cfg.model.arch == Arch::lenet ? json(cfg.model.width) : json(nullptr);
  run["report"] = json::parse(format_report(*store, ReportFormat::json));
  return run;
}

// The decision map of a run's first stream (smallest n, repeat 0) for --figure boundary.
json boundary_entry(const std::string& dir) {
  const auto store = Store::open_existing(dir);
  const std::vector<int>& ns = store->meta().ns;
  const DecisionMap map = decision_map(*store, *std::min_element(ns.begin(), ns.end()), 0);
  json j;
  j["n"] = map.n;
  j["repeat"] = map.repeat;
  j["extent"] = {map.x_lo, map.x_hi, map.y_lo, map.y_hi};
  j["grid"] = map.grid;
  j["share"] = map.share;
  j["models"] = map.models;
  j["models_available"] = map.models_available;
  j["sets"] = map.sets;
  j["train_x"] = map.train_x;
  j["train_y"] = map.train_y;
  j["test_x"] = map.test_x;
  j["test_y"] = map.test_y;
  return j;
}

// The points of a run's first stream (smallest n, repeat 0) for --figure data.
json data_entry(const std::string& dir) {
  const auto store = Store::open_existing(dir);
  const std::vector<int>& ns = store->meta().ns;
  const int n = *std::min_element(ns.begin(), ns.end());
  const StreamPoints p = stream_points(*store, n, 0);
  return json{{"n", n},           {"train_x", p.train_x}, {"train_y", p.train_y},
              {"test_x", p.test_x}, {"test_y", p.test_y}};
}

// A file that is removed when it goes out of scope.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& contents) {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/gac_plot_XXXXXX.json";
    const int fd = ::mkstemps(pattern.data(), 5);
    if (fd < 0) throw Error("plot: cannot create a temporary file in " + pattern + ": " + std::strerror(errno));
    ::close(fd);
    path = pattern;
    std::ofstream(path, std::ios::binary) << contents;
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

// Runs the script; returns its exit status.
int run_script(const fs::path& python, const fs::path& script, const std::string& input) {
  const std::string py = python.string(), sc = script.string();
  char* argv[] = {const_cast<char*>(py.c_str()), const_cast<char*>(sc.c_str()), const_cast<char*>(input.c_str()), nullptr};
  pid_t pid;
  const int rc = ::posix_spawn(&pid, py.c_str(), nullptr, nullptr, argv, environ);
  if (rc != 0) throw Error("plot: cannot run " + py + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct PlotArgs {
  std::vector<std::string> dirs;
  std::string output;
  std::string figure = "accuracy";
};

int plot(const PlotArgs& a) {
  const std::string ext = fs::path(a.output).extension().string();
  if (ext != ".png" && ext != ".svg") throw Error("plot: -o " + a.output + ": the file must end in .png or .svg");
  json spec;
  spec["figure"] = a.figure;
  spec["output"] = a.output;
  spec["runs"] = json::array();
  for (const std::string& dir : a.dirs) spec["runs"].push_back(run_entry(dir));
  if (a.figure == "boundary")
    for (size_t i = 0; i < a.dirs.size(); ++i) spec["runs"][i]["boundary"] = boundary_entry(a.dirs[i]);
  if (a.figure == "data")
    for (size_t i = 0; i < a.dirs.size(); ++i) spec["runs"][i]["data"] = data_entry(a.dirs[i]);
  if (a.figure == "difference") {
    if (a.dirs.size() != 2)
      throw Error("plot --figure difference: give exactly two runs, A and B (it plots A - B), not " +
                  std::to_string(a.dirs.size()));
    spec["versus"] = json::parse(
        format_versus(*Store::open_existing(a.dirs[0]), *Store::open_existing(a.dirs[1]), ReportFormat::json));
  }
  const fs::path python = find_python(), script = find_plot_script();
  const TempFile input(spec.dump());
  const int status = run_script(python, script, input.path);
  if (status == 2) return 2;  // the script said what is wrong, in one "gac: error:" line
  if (status != 0)
    throw Error("plot: " + script.string() + " failed with exit status " + std::to_string(status));
  std::cerr << "gac: wrote " << a.output << "\n";
  return 0;
}

}  // namespace

Command add_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  auto* cmd = app.add_subcommand("plot", "the paper's figures from run directories, as PNG or SVG (matplotlib)");
  cmd->add_option("dirs", a->dirs, "run directories (several: side by side, e.g. GAC and SGD)")->required();
  cmd->add_option("-o,--output", a->output, "image file, .png or .svg")->required();
  cmd->add_option("--figure", a->figure,
                  "accuracy: test accuracy vs n per loss bin (default); rate: log10 acceptance rate vs n per bin; "
                  "width: test accuracy vs model.hidden (MLP, Figure 2) or model.width (LeNet, Table 6) over the runs; "
                  "difference: A - B per cell, paired by training set, for two runs A B of the same bins (the sizes n both have); "
                  "boundary: what the accepted models decide over the plane, one panel per run (2-D data: kink, slab); "
                  "data: a run's training set over its test points, one panel per run (2-D data; Figure 1)")
      ->check(CLI::IsMember({"accuracy", "rate", "width", "difference", "boundary", "data"}));
  return [a] { return plot(*a); };
}

}  // namespace gac::cli
