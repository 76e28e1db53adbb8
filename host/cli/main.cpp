// gac: guess-and-check training. One binary, CLI11 subcommands, one file each.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "gac/error.h"
#include "gac/text.h"
#include "gac/exit_codes.h"
#include "host/cli/commands.h"

using namespace gac;

// Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to
// generic SSE3 kernels, which would make `gac bench`'s CPU SGEMM column far too
// low. The kernel set is chosen when the library loads, so the bench re-runs
// itself once with OPENBLAS_CORETYPE naming the widest kernels this CPU runs.
void choose_openblas_kernels_for_bench(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "bench" || std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : nullptr;
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // on failure, carry on with the default kernels
}

// What a command printed must have reached stdout: `gac report --csv > f` on a
// full disk is an error, not a short file and exit 0.
int check_output_written(int status) {
  std::cout.flush();
  if (std::fflush(stdout) == 0 && !std::ferror(stdout) && std::cout) return status;
  std::cerr << "gac: error: cannot write the output to standard output: " << std::strerror(errno) << "\n";
  return status == 0 ? kExitError : status;
}

int main(int argc, char** argv) {
  choose_openblas_kernels_for_bench(argc, argv);
  CLI::App app{"gac: train neural networks by guess and check"};
  // Every error is one line: what came from outside (file names, values,
  // file contents) is escaped, and CLI11's second line is folded in.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "gac: error: " + one_line(e.what()) + " (see gac --help)\n";
  });
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gac ") + GAC_VERSION);

  const std::map<std::string, cli::Command> commands = {
      {"run", cli::add_run(app)},       {"report", cli::add_report(app)}, {"verify", cli::add_verify(app)},
      {"info", cli::add_info(app)},     {"bench", cli::add_bench(app)},   {"slurm", cli::add_slurm(app)},
      {"merge", cli::add_merge(app)}, {"plot", cli::add_plot(app)},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints --help, --version or the error
    return code == 0 ? code : kExitError;
  }
  try {
    for (const auto& [name, command] : commands)
      if (app.got_subcommand(name)) return check_output_written(command());
  } catch (const Error& e) {
    std::cerr << "gac: error: " << one_line(e.what()) << "\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "gac: internal error: " << one_line(e.what()) << "\n";
    return kExitInternal;
  }
  return 0;
}
