#include "host/cli/commands.h"

#include <charconv>

#include "host/config/device_list.h"

namespace gac::cli {

CLI::Validator whole_number(long long lo, long long hi) {
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        long long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi)
          return "expected a whole number from " + range + ", got '" + text + "'";
        return "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

void add_config_options(CLI::App* cmd, ConfigArgs& a, bool config_required) {
  auto* opt = cmd->add_option("config", a.config, "TOML config file");
  if (config_required) opt->required();
  cmd->add_option("--set", a.sets, "override a config key: section.key=value (repeatable)");
  cmd->add_option("--backend", a.backend, "auto, cpu or cuda (default: exec.backend, auto)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--devices", a.devices, "the GPUs to drive: all, or numbers as 0,2 (default: exec.devices, all)")
      ->check(CLI::Validator(device_list_problem, "all|0,2,..."));
  cmd->add_option("--threads", a.threads, "CPU threads (0 = all cores)")->check(whole_number(0, 4096));
}

RunConfig resolve(const ConfigArgs& a) {
  RunConfig cfg = load_config(a.config, a.sets);
  if (!a.backend.empty()) cfg.backend = a.backend;
  if (a.threads >= 0) cfg.threads = a.threads;
  if (!a.devices.empty()) cfg.devices = a.devices;
  return cfg;
}

}  // namespace gac::cli
