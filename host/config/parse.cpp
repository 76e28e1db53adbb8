// TOML config parsing. Each accepted key has one row in host/config/keys.cpp,
// whose reader checks its type and value; any other key is an error, so a typo
// never silently does nothing.
#include "gac/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "gac/error.h"
#include "gac/text.h"
#include "host/config/keys.h"
#include "host/config/toml_guard.h"
#include "host/util/small_file.h"

namespace gac {
namespace {

// The keys set so far, each with whether a --set override gave it (for check_keys_apply).
using GivenKeys = std::map<std::string, bool>;

void apply(RunConfig& cfg, const std::string& key, const toml::node& value, GivenKeys& given, bool from_override) {
  const ConfigKey* row = find_config_key(key);
  if (!row) {
    std::vector<std::string> names;
    const std::string section = key.substr(0, key.find('.') + 1);
    for (const ConfigKey& k : config_keys())
      if (k.name.rfind(section, 0) == 0) names.push_back(k.name);
    std::ranges::sort(names);
    std::string known;
    for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
    throw Error("config: unknown key '" + key + "'" + (known.empty() ? " (sections: data, model, prior, optimizer, sampler, run, exec)" : " (known: " + known + ")"));
  }
  row->value.read(cfg, value, key);
  given[key] = from_override;
}

void apply_table(RunConfig& cfg, const toml::table& root, GivenKeys& given) {
  for (const auto& [section, node] : root) {
    const std::string name(section.str());
    if (!node.is_table()) throw Error("config: unknown key '" + name + "' (settings belong in [data], [model], [prior], [optimizer], [sampler], [run] or [exec])");
    for (const auto& [key, value] : *node.as_table()) apply(cfg, name + "." + std::string(key.str()), value, given, false);
  }
}

// The SGD trainer holds every epoch's order of the training examples (a
// poisoned set's test part is counted when a stream begins). The keys'
// readers, host/config/keys.cpp, check each value as validate_sgd_config does.
void validate_optimizer(const RunConfig& c) {
  const int64_t n = *std::max_element(c.ns.begin(), c.ns.end());
  const int repeats = std::max(1, c.sgd.poison_repeats);
  if (static_cast<int64_t>(c.sgd.epochs) * n * repeats > kMaxSgdEpochExamples)
    bad("optimizer.epochs", std::to_string(c.sgd.epochs) + " epochs of up to n = " + std::to_string(n) + " examples" +
                                (repeats > 1 ? " x poison_repeats = " + std::to_string(repeats) : "") +
                                ": epochs x n must be at most " + std::to_string(kMaxSgdEpochExamples));
}

void validate(const RunConfig& c) {
  if (c.bins.size() < 2) bad("run.bins", "need at least two edges (one bin)");
  for (size_t i = 1; i < c.bins.size(); ++i)
    if (!(c.bins[i] > c.bins[i - 1]))
      bad("run.bins", "edges must be strictly increasing, but edge " + std::to_string(i) + " (" + shortest(c.bins[i]) +
                          ") <= edge " + std::to_string(i - 1) + " (" + shortest(c.bins[i - 1]) + ")");
  if (c.bins.size() > 65) bad("run.bins", "at most 64 bins");
  for (size_t i = 1; i < c.ns.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.ns[i] == c.ns[j]) bad("run.n", "size " + std::to_string(c.ns[i]) + " is listed twice");
  const bool files = c.data.kind == "idx" || c.data.kind == "cifar10";
  if (files && c.data.path.empty()) bad("data.path", "required for data.kind = \"" + c.data.kind + "\"");
  if (c.data.kind == "npy" && (c.data.train_x.empty() || c.data.train_y.empty() || c.data.test_x.empty() || c.data.test_y.empty()))
    bad("data", "kind \"npy\" needs train_x, train_y, test_x and test_y");
  if (c.data.kind == "csv" && (c.data.train_file.empty() || c.data.test_file.empty()))
    bad("data", "kind \"csv\" needs train_file and test_file");
  if (!c.data.classes.empty() && c.data.random_classes > 0)
    bad("data", "give either classes or random_classes, not both");
  if (c.task >= c.tasks)
    bad("run.shard", "task " + std::to_string(c.task) + " does not exist in a run of run.shards = " +
                         std::to_string(c.tasks) + " tasks (0.." + std::to_string(c.tasks - 1) + ")");
  if (c.optimizer == "sgd") validate_optimizer(c);
  if (c.heads > 1 && c.prior.kind == PriorKind::sphere)
    bad("sampler.heads", "heads > 1 needs a product prior (uniform, normal, kaiming): the sphere prior's one global norm "
                         "ties every head to its body");
}

// Refuses a key given for a config it does not apply to (see Scope in keys.h),
// except the config file's keys when a --set override chose another kind
// (`--set model.arch=lenet` on an MLP config replaces the MLP and its keys).
void check_keys_apply(const RunConfig& c, const GivenKeys& given) {
  for (const auto& [key, from_override] : given) {
    const Scope& scope = find_config_key(key)->scope;
    if (scope.setting.empty()) continue;
    const auto setting = given.find(scope.setting);
    if (!from_override && setting != given.end() && setting->second) continue;
    const std::string value = scope_setting_value(scope, c);
    if (std::ranges::find(scope.values, value) != scope.values.end()) continue;
    std::string list;
    for (const std::string& v : scope.values) list += (list.empty() ? "" : ", ") + v;
    bad(key, "does not apply to " + scope.setting + " = \"" + value + "\" (only to " + list + "); remove it");
  }
}

// Parses the value of a --set override as TOML; a bare word is a string.
void apply_override(RunConfig& cfg, const std::string& assignment, GivenKeys& given) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set: expected key=value, got '" + assignment + "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  // A TOML file is UTF-8 (toml++ checks); the value of an override must be too, or config.toml could not hold it.
  if (!valid_utf8(assignment)) throw Error("--set " + key + ": not valid UTF-8");
  if (key.find('.') == std::string::npos) throw Error("--set: key '" + key + "' must be section.name, e.g. run.target");
  toml::table parsed{{"v", text}};
  try {
    parsed = parse_toml_safely("v = " + text, "--set");
  } catch (const Error&) {
  }
  apply(cfg, key, *parsed.get("v"), given, true);
}

}  // namespace

RunConfig parse_config(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  RunConfig cfg;
  toml::table root;
  try {
    root = parse_toml_safely(text, source);
  } catch (const Error& e) {
    throw Error(std::string("config: ") + e.what());
  }
  GivenKeys given;
  apply_table(cfg, root, given);
  for (const auto& o : overrides) apply_override(cfg, o, given);
  validate(cfg);
  check_keys_apply(cfg, given);
  return cfg;
}

RunConfig load_config(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error("config: " + path.string() + " is a directory, not a config file");
  const std::string text = read_small_file(path, "config: ", "a config is a small TOML file");
  return parse_config(text, path.string(), overrides);
}

}  // namespace gac
