// TOML config parsing. Each accepted key has one setter that checks its type
// and value; any other key is an error, so a typo never silently does nothing.
#include "gac/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "gac/error.h"
#include "gac/text.h"

namespace gac {
namespace {

constexpr int kMaxShards = 1 << 20;

using Setter = std::function<void(RunConfig&, const toml::node&, const std::string& key)>;

std::string type_name(const toml::node& v) {
  switch (v.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

[[noreturn]] void bad(const std::string& key, const std::string& what) { throw Error("config: " + key + ": " + what); }

int64_t get_int(const toml::node& v, const std::string& key, int64_t lo, int64_t hi) {
  if (!v.is_integer()) bad(key, "expected an integer, got " + type_name(v));
  const int64_t x = v.as_integer()->get();
  if (x < lo || x > hi) bad(key, std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

double get_number(const toml::node& v, const std::string& key) {
  double x;
  if (v.is_integer()) x = static_cast<double>(v.as_integer()->get());
  else if (v.is_floating_point()) x = v.as_floating_point()->get();
  else bad(key, "expected a number, got " + type_name(v));
  if (!std::isfinite(x)) bad(key, "must be finite");
  return x;
}

double get_positive(const toml::node& v, const std::string& key) {
  const double x = get_number(v, key);
  if (!(x > 0)) bad(key, "must be positive, got " + shortest(x));
  return x;
}

bool get_bool(const toml::node& v, const std::string& key) {
  if (!v.is_boolean()) bad(key, "expected true or false, got " + type_name(v));
  return v.as_boolean()->get();
}

std::string get_string(const toml::node& v, const std::string& key) {
  if (!v.is_string()) bad(key, "expected a string, got " + type_name(v));
  return v.as_string()->get();
}

std::string get_choice(const toml::node& v, const std::string& key, std::initializer_list<const char*> choices) {
  const std::string s = get_string(v, key);
  std::string list;
  for (const char* c : choices) {
    if (s == c) return s;
    list += list.empty() ? c : std::string(", ") + c;
  }
  bad(key, "'" + s + "' is not one of " + list);
}

std::vector<int> get_int_list(const toml::node& v, const std::string& key, int lo, int hi) {
  std::vector<int> out;
  if (v.is_integer()) return {static_cast<int>(get_int(v, key, lo, hi))};
  if (!v.is_array()) bad(key, "expected an integer or an array of integers, got " + type_name(v));
  for (const auto& e : *v.as_array()) out.push_back(static_cast<int>(get_int(e, key, lo, hi)));
  if (out.empty()) bad(key, "must not be empty");
  return out;
}

std::vector<double> get_number_list(const toml::node& v, const std::string& key) {
  if (!v.is_array()) bad(key, "expected an array of numbers, got " + type_name(v));
  std::vector<double> out;
  for (const auto& e : *v.as_array()) out.push_back(get_number(e, key));
  return out;
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table = {
      // [data]
      {"data.kind", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.kind = get_choice(v, k, {"idx", "cifar10", "npy", "csv", "kink", "slab"});
       }},
      {"data.path", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.path = get_string(v, k); }},
      {"data.prefix", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.prefix = get_string(v, k); }},
      {"data.classes", [](RunConfig& c, const toml::node& v, const std::string& k) {
         if (v.is_string()) {
           if (get_string(v, k) != "all") bad(k, "expected an array of labels, \"all\", or use data.random_classes");
           c.data.classes.clear();
         } else {
           c.data.classes = get_int_list(v, k, 0, 1 << 30);
         }
       }},
      {"data.random_classes", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.random_classes = static_cast<int>(get_int(v, k, 0, 1 << 20));
       }},
      {"data.class_draw", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.class_draw = get_choice(v, k, {"per_training_set", "per_run"});
       }},
      {"data.statistics", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.statistics = get_choice(v, k, {"all", "classes"});
       }},
      {"data.train_x", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.train_x = get_string(v, k); }},
      {"data.train_y", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.train_y = get_string(v, k); }},
      {"data.test_x", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.test_x = get_string(v, k); }},
      {"data.test_y", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.test_y = get_string(v, k); }},
      {"data.train_file", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.train_file = get_string(v, k); }},
      {"data.test_file", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.test_file = get_string(v, k); }},
      {"data.label_column", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.label_column = static_cast<int>(get_int(v, k, -1, 1 << 20));
       }},
      {"data.shape", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.shape = get_int_list(v, k, 1, 1 << 20);
         if (c.data.shape.size() != 3) bad(k, "expected [channels, height, width]");
       }},
      {"data.standardize", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.standardize = get_bool(v, k); }},
      {"data.test_size", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.data.test_size = static_cast<int>(get_int(v, k, 0, 1 << 30));
       }},
      {"data.margin", [](RunConfig& c, const toml::node& v, const std::string& k) { c.data.margin = get_positive(v, k); }},
      // [model]
      {"model.arch", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.model.arch = parse_arch(get_choice(v, k, {"linear", "mlp", "lenet"}));
       }},
      {"model.hidden", [](RunConfig& c, const toml::node& v, const std::string& k) { c.model.hidden = static_cast<int>(get_int(v, k, 1, 1 << 16)); }},
      {"model.layers", [](RunConfig& c, const toml::node& v, const std::string& k) { c.model.layers = static_cast<int>(get_int(v, k, 1, 12)); }},
      {"model.hidden_bias", [](RunConfig& c, const toml::node& v, const std::string& k) { c.model.hidden_bias = get_bool(v, k); }},
      {"model.width", [](RunConfig& c, const toml::node& v, const std::string& k) { c.model.width = get_positive(v, k); }},
      // [prior]
      {"prior.kind", [](RunConfig& c, const toml::node& v, const std::string& k) {
         const std::string s = get_choice(v, k, {"uniform", "normal", "kaiming", "sphere"});
         c.prior.kind = s == "uniform" ? PriorKind::uniform : s == "normal" ? PriorKind::normal
                        : s == "kaiming" ? PriorKind::kaiming : PriorKind::sphere;
       }},
      {"prior.radius", [](RunConfig& c, const toml::node& v, const std::string& k) { c.prior.radius = get_positive(v, k); }},
      {"prior.sigma", [](RunConfig& c, const toml::node& v, const std::string& k) { c.prior.sigma = get_positive(v, k); }},
      {"prior.sphere_radius", [](RunConfig& c, const toml::node& v, const std::string& k) { c.prior.sphere_radius = get_positive(v, k); }},
      // [optimizer]
      {"optimizer.kind", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.optimizer = get_choice(v, k, {"guess", "sgd"});
       }},
      {"optimizer.lr", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.sgd.lr = get_positive(v, k);
         const float lr = static_cast<float>(c.sgd.lr);  // SGD trains in float
         if (!(lr > 0) || !std::isfinite(lr)) bad(k, shortest(c.sgd.lr) + " is not a positive float");
       }},
      {"optimizer.momentum", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.sgd.momentum = get_number(v, k);
         if (!(c.sgd.momentum >= 0 && c.sgd.momentum < 1)) bad(k, "must be in [0, 1), got " + shortest(c.sgd.momentum));
       }},
      {"optimizer.batch_size", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.sgd.batch_size = static_cast<int>(get_int(v, k, 1, 1 << 24));
       }},
      {"optimizer.epochs", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.sgd.epochs = static_cast<int>(get_int(v, k, 0, 1 << 24));
       }},
      // [run]
      {"run.seed", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.seed = static_cast<uint64_t>(get_int(v, k, 0, INT64_MAX));
       }},
      {"run.n", [](RunConfig& c, const toml::node& v, const std::string& k) { c.ns = get_int_list(v, k, 1, 1 << 24); }},
      {"run.repeats", [](RunConfig& c, const toml::node& v, const std::string& k) { c.repeats = static_cast<int>(get_int(v, k, 1, 1 << 20)); }},
      {"run.bins", [](RunConfig& c, const toml::node& v, const std::string& k) { c.bins = get_number_list(v, k); }},
      {"run.target", [](RunConfig& c, const toml::node& v, const std::string& k) { c.target = static_cast<int>(get_int(v, k, 1, 1 << 24)); }},
      {"run.loss", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.loss = get_choice(v, k, {"normalized", "raw"}) == "raw" ? LossKind::raw : LossKind::normalized;
       }},
      {"run.early_reject", [](RunConfig& c, const toml::node& v, const std::string& k) { c.early_reject = get_bool(v, k); }},
      {"run.shard", [](RunConfig& c, const toml::node& v, const std::string& k) {
         if (v.is_string() && get_string(v, k) == "all") c.shard = -1;
         else if (v.is_string()) bad(k, "expected a task index or \"all\"");
         else c.shard = static_cast<int>(get_int(v, k, 0, kMaxShards - 1));
       }},
      {"run.shards", [](RunConfig& c, const toml::node& v, const std::string& k) { c.shards = static_cast<int>(get_int(v, k, 1, kMaxShards)); }},
      {"run.max_draws", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.max_draws = static_cast<uint64_t>(get_int(v, k, 1, INT64_MAX));
       }},
      {"run.time_limit", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.time_limit = get_number(v, k);
         if (c.time_limit < 0) bad(k, "must be >= 0 (0 = no limit)");
       }},
      // [exec]
      {"exec.backend", [](RunConfig& c, const toml::node& v, const std::string& k) { c.backend = get_choice(v, k, {"auto", "cpu", "cuda"}); }},
      {"exec.threads", [](RunConfig& c, const toml::node& v, const std::string& k) { c.threads = static_cast<int>(get_int(v, k, 0, 4096)); }},
      {"exec.batch", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.batch = static_cast<uint64_t>(get_int(v, k, 0, int64_t{1} << 32));
       }},
      {"exec.output", [](RunConfig& c, const toml::node& v, const std::string& k) { c.output = get_string(v, k); }},
      {"exec.order", [](RunConfig& c, const toml::node& v, const std::string& k) {
         c.order = get_choice(v, k, {"interleaved", "sequential"});
       }},
  };
  return table;
}

// The keys set so far, each with whether a --set override gave it (for check_keys_apply).
using GivenKeys = std::map<std::string, bool>;

void apply(RunConfig& cfg, const std::string& key, const toml::node& value, GivenKeys& given, bool from_override) {
  const auto& table = setters();
  const auto it = table.find(key);
  if (it == table.end()) {
    std::string known;
    const std::string section = key.substr(0, key.find('.') + 1);
    for (const auto& [k, _] : table)
      if (k.rfind(section, 0) == 0) known += (known.empty() ? "" : ", ") + k;
    throw Error("config: unknown key '" + key + "'" + (known.empty() ? " (sections: data, model, prior, optimizer, run, exec)" : " (known: " + known + ")"));
  }
  it->second(cfg, value, key);
  given[key] = from_override;
}

void apply_table(RunConfig& cfg, const toml::table& root, GivenKeys& given) {
  for (const auto& [section, node] : root) {
    const std::string name(section.str());
    if (!node.is_table()) throw Error("config: unknown key '" + name + "' (settings belong in [data], [model], [prior], [optimizer], [run] or [exec])");
    for (const auto& [key, value] : *node.as_table()) apply(cfg, name + "." + std::string(key.str()), value, given, false);
  }
}

// The SGD trainer holds every epoch's order of the training examples. (The
// setters check each value as validate_sgd_config does.)
constexpr int64_t kMaxEpochExamples = int64_t{1} << 26;

void validate_optimizer(const RunConfig& c) {
  const int64_t n = *std::max_element(c.ns.begin(), c.ns.end());
  if (static_cast<int64_t>(c.sgd.epochs) * n > kMaxEpochExamples)
    bad("optimizer.epochs", std::to_string(c.sgd.epochs) + " epochs of up to n = " + std::to_string(n) +
                                " examples: epochs x n must be at most " + std::to_string(kMaxEpochExamples));
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
  if (c.shard >= c.shards)
    bad("run.shard", "task " + std::to_string(c.shard) + " does not exist in a run of run.shards = " +
                         std::to_string(c.shards) + " tasks (0.." + std::to_string(c.shards - 1) + ")");
  if (c.optimizer == "sgd") validate_optimizer(c);
}

const char* prior_name(PriorKind k);

// Keys that mean something only for some data kinds, architectures or priors.
// Given for another, they would be ignored without a word: they are refused,
// except the config file's keys when a --set override chose another kind
// (`--set model.arch=lenet` on an MLP config replaces the MLP and its keys).
struct KeyScope {
  std::string setting;              // the key it depends on
  std::vector<std::string> values;  // the values of that key it applies to
};

const std::map<std::string, KeyScope>& key_scopes() {
  static const std::map<std::string, KeyScope> scopes = {
      {"data.path", {"data.kind", {"idx", "cifar10"}}},
      {"data.prefix", {"data.kind", {"idx"}}},
      {"data.classes", {"data.kind", {"idx", "cifar10", "npy", "csv"}}},
      {"data.random_classes", {"data.kind", {"idx", "cifar10", "npy", "csv"}}},
      {"data.class_draw", {"data.kind", {"idx", "cifar10", "npy", "csv"}}},
      {"data.statistics", {"data.kind", {"idx", "cifar10", "npy", "csv"}}},
      {"data.train_x", {"data.kind", {"npy"}}},
      {"data.train_y", {"data.kind", {"npy"}}},
      {"data.test_x", {"data.kind", {"npy"}}},
      {"data.test_y", {"data.kind", {"npy"}}},
      {"data.train_file", {"data.kind", {"csv"}}},
      {"data.test_file", {"data.kind", {"csv"}}},
      {"data.label_column", {"data.kind", {"csv"}}},
      {"data.shape", {"data.kind", {"npy", "csv"}}},
      {"data.standardize", {"data.kind", {"npy", "csv"}}},
      {"data.test_size", {"data.kind", {"kink", "slab"}}},
      {"data.margin", {"data.kind", {"kink"}}},
      {"model.hidden", {"model.arch", {"mlp"}}},
      {"model.layers", {"model.arch", {"mlp"}}},
      {"model.hidden_bias", {"model.arch", {"mlp"}}},
      {"model.width", {"model.arch", {"lenet"}}},
      {"prior.radius", {"prior.kind", {"uniform"}}},
      {"prior.sigma", {"prior.kind", {"normal"}}},
      {"prior.sphere_radius", {"prior.kind", {"sphere"}}},
      {"optimizer.lr", {"optimizer.kind", {"sgd"}}},
      {"optimizer.momentum", {"optimizer.kind", {"sgd"}}},
      {"optimizer.batch_size", {"optimizer.kind", {"sgd"}}},
      {"optimizer.epochs", {"optimizer.kind", {"sgd"}}},
  };
  return scopes;
}

void check_keys_apply(const RunConfig& c, const GivenKeys& given) {
  for (const auto& [key, from_override] : given) {
    const auto it = key_scopes().find(key);
    if (it == key_scopes().end()) continue;
    const KeyScope& scope = it->second;
    const auto setting = given.find(scope.setting);
    if (!from_override && setting != given.end() && setting->second) continue;
    const std::string value = scope.setting == "data.kind"    ? c.data.kind
                              : scope.setting == "model.arch"     ? std::string(arch_name(c.model.arch))
                              : scope.setting == "optimizer.kind" ? c.optimizer
                                                                  : std::string(prior_name(c.prior.kind));
    if (std::find(scope.values.begin(), scope.values.end(), value) != scope.values.end()) continue;
    std::string list;
    for (const std::string& v : scope.values) list += (list.empty() ? "" : ", ") + v;
    bad(key, "does not apply to " + scope.setting + " = \"" + value + "\" (only to " + list + "); remove it");
  }
}

// Where toml++ 3.3 (Debian's) would classify a byte >= 0x80 as whitespace: it
// reaches undefined behaviour doing so for some of them (found by
// fuzz/fuzz_config), so such text never reaches it. That is anywhere outside
// strings and comments (TOML allows none there), and in a """string""" right
// after a backslash and any ASCII whitespace (an escape, or a line-ending
// backslash). A quote starts a string only where a key or value can start
// (after = [ , { . or at the start of a line); anywhere else toml++ reads it
// as part of a bare token, which is where it would classify.
struct NonAsciiSpot {
  size_t at = std::string_view::npos;
  const char* what = "";
};

NonAsciiSpot non_ascii_toml_cannot_read(std::string_view text) {
  const size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // a UTF-8 byte order mark is allowed
  char previous = '\n';  // the last character that is not a space or tab
  for (size_t i = start; i < text.size();) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) return {i, "a non-ASCII character outside a string or comment"};
    if (c == '#') {
      i = std::min(text.find('\n', i), text.size());
      continue;
    }
    if ((c == '"' || c == '\'') && std::string_view("=[,{.\n").find(previous) != std::string_view::npos) {
      // "...", '...' (both end at a newline at the latest), """...""" or ''''...''''
      const size_t width = text.substr(i, 3) == std::string(3, c) ? 3 : 1;
      const std::string_view close = text.substr(i, width);
      i += width;
      while (i < text.size() && text.substr(i, width) != close && (width == 3 || text[i] != '\n')) {
        if (c == '"' && text[i] == '\\') {  // an escape: the next byte is the string's
          size_t next = i + 1;
          while (width == 3 && next < text.size() && std::string_view(" \t\r\n").find(text[next]) != std::string_view::npos)
            ++next;
          if (width == 3 && next < text.size() && static_cast<unsigned char>(text[next]) >= 0x80)
            return {next, "a non-ASCII character after a backslash in a \"\"\"string\"\"\" (write it as \\u.... or \\U........)"};
          i += 2;
        } else {
          ++i;
        }
      }
      if (i < text.size() && text[i] == c) i += width;
      while (width == 3 && i < text.size() && text[i] == c) ++i;  // """a"""" ends with a quote in the string
      previous = c;
      continue;
    }
    if (c != ' ' && c != '\t') previous = c;
    ++i;
  }
  return {};
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
    if (non_ascii_toml_cannot_read(text).at == std::string_view::npos) parsed = toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
  }
  apply(cfg, key, *parsed.get("v"), given, true);
}

toml::array to_array(const auto& values) {
  toml::array a;
  for (const auto& v : values) a.push_back(v);
  return a;
}

const char* prior_name(PriorKind k) {
  switch (k) {
    case PriorKind::uniform: return "uniform";
    case PriorKind::normal: return "normal";
    case PriorKind::kaiming: return "kaiming";
    case PriorKind::sphere: return "sphere";
  }
  return "?";
}

toml::table identity_table(const RunConfig& c) {
  toml::table data{{"kind", c.data.kind}};
  if (c.data.kind == "kink" || c.data.kind == "slab") {
    data.insert("test_size", c.data.test_size);
    if (c.data.kind == "kink") data.insert("margin", c.data.margin);
  } else {
    if (c.data.kind == "idx" || c.data.kind == "cifar10") data.insert("path", c.data.path);
    if (c.data.kind == "idx") data.insert("prefix", c.data.prefix);
    if (c.data.kind == "npy") {
      data.insert("train_x", c.data.train_x);
      data.insert("train_y", c.data.train_y);
      data.insert("test_x", c.data.test_x);
      data.insert("test_y", c.data.test_y);
    }
    if (c.data.kind == "csv") {
      data.insert("train_file", c.data.train_file);
      data.insert("test_file", c.data.test_file);
      data.insert("label_column", c.data.label_column);
    }
    if (c.data.kind == "npy" || c.data.kind == "csv") {
      data.insert("standardize", c.data.standardize);
      if (!c.data.shape.empty()) data.insert("shape", to_array(c.data.shape));
    }
    if (c.data.random_classes > 0) data.insert("random_classes", c.data.random_classes);
    else if (!c.data.classes.empty()) data.insert("classes", to_array(c.data.classes));
    else data.insert("classes", "all");
    if (c.data.random_classes > 0) data.insert("class_draw", c.data.class_draw);
    if (c.data.kind == "idx" || c.data.kind == "cifar10" || c.data.standardize) data.insert("statistics", c.data.statistics);
  }
  toml::table model{{"arch", arch_name(c.model.arch)}};
  if (c.model.arch == Arch::mlp) {
    model.insert("hidden", c.model.hidden);
    model.insert("layers", c.model.layers);
    model.insert("hidden_bias", c.model.hidden_bias);
  }
  if (c.model.arch == Arch::lenet) model.insert("width", c.model.width);
  toml::table prior{{"kind", prior_name(c.prior.kind)}};
  if (c.prior.kind == PriorKind::uniform) prior.insert("radius", c.prior.radius);
  if (c.prior.kind == PriorKind::normal) prior.insert("sigma", c.prior.sigma);
  if (c.prior.kind == PriorKind::sphere) prior.insert("sphere_radius", c.prior.sphere_radius);
  toml::table out{{"data", data}, {"model", model}, {"prior", prior}};
  // A guess-and-check run has no [optimizer]: directories made before it existed still open.
  if (c.optimizer == "sgd")
    out.insert("optimizer", toml::table{{"kind", c.optimizer},
                                        {"lr", c.sgd.lr},
                                        {"momentum", c.sgd.momentum},
                                        {"batch_size", c.sgd.batch_size},
                                        {"epochs", c.sgd.epochs}});
  toml::table run{{"seed", static_cast<int64_t>(c.seed)},
                  {"n", to_array(c.ns)},
                  {"repeats", c.repeats},
                  {"bins", to_array(c.bins)},
                  {"target", c.target},
                  {"loss", c.loss == LossKind::raw ? "raw" : "normalized"},
                  {"early_reject", c.early_reject}};
  // One task is the whole run; a split run names its task, or "all" for every task's units (merged).
  if (c.shards == 1) run.insert("shard", 0);
  else if (c.shard < 0) run.insert("shard", "all");
  else run.insert("shard", c.shard);
  if (c.shards > 1) run.insert("shards", c.shards);
  out.insert("run", run);
  return out;
}

// toml++ as Debian builds it prints floats with 17 digits (0.29999999999999999),
// so values are printed here: floats in the shortest form that reads back
// exactly, everything else by toml++.
void print_value(std::ostream& out, const toml::node& v) {
  if (const auto* x = v.as_floating_point()) {
    std::string text = shortest(x->get());
    if (text.find_first_of(".e") == std::string::npos) text += ".0";  // "1" would read back as an integer
    out << text;
  } else if (const auto* a = v.as_array()) {
    out << "[";
    for (size_t i = 0; i < a->size(); ++i) {
      out << (i ? ", " : " ");
      print_value(out, *a->get(i));
    }
    out << (a->empty() ? "]" : " ]");
  } else {
    out << toml::toml_formatter(v, toml::format_flags::none);
  }
}

// Sections of scalars and arrays: all an identity holds.
std::string to_text(const toml::table& t) {
  std::ostringstream out;
  for (const auto& [section, node] : t) {
    out << (out.tellp() > 0 ? "\n[" : "[") << section.str() << "]\n";
    for (const auto& [key, value] : *node.as_table()) {
      out << key.str() << " = ";
      print_value(out, value);
      out << "\n";
    }
  }
  return out.str();
}

// "section.key" -> its value as TOML text, for every key of the run's identity.
std::map<std::string, std::string> identity_values(const RunConfig& c) {
  std::map<std::string, std::string> out;
  for (const auto& [section, table] : identity_table(c))
    for (const auto& [key, value] : *table.as_table()) {
      std::ostringstream text;
      text << toml::toml_formatter(value, toml::format_flags::none);
      out[std::string(section.str()) + "." + std::string(key.str())] = text.str();
    }
  return out;
}

}  // namespace

std::string identity_difference(const RunConfig& there_cfg, const RunConfig& here_cfg) {
  const auto there = identity_values(there_cfg), here = identity_values(here_cfg);
  for (const auto& [key, value] : here) {
    const auto it = there.find(key);
    if (it == there.end()) return key + " is " + value + " here but not set there";
    if (it->second != value) return key + " is " + it->second + " there, " + value + " here";
  }
  for (const auto& [key, value] : there)
    if (!here.count(key)) return key + " is " + value + " there but not set here";
  return "";
}

RunConfig parse_config(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  RunConfig cfg;
  toml::table root;
  if (const NonAsciiSpot spot = non_ascii_toml_cannot_read(text); spot.at != std::string_view::npos) {
    const size_t line_start = text.rfind('\n', spot.at) + 1;  // npos + 1 = 0 on the first line
    throw Error("config: " + source + ":" + std::to_string(std::count(text.begin(), text.begin() + spot.at, '\n') + 1) +
                ":" + std::to_string(spot.at - line_start + 1) + ": " + spot.what);
  }
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw Error("config: " + source + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
                std::string(e.description()));
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
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("config: cannot read " + path.string() + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path.string(), overrides);
}

std::string identity_toml(const RunConfig& cfg) { return to_text(identity_table(cfg)); }

std::string resolved_toml(const RunConfig& c) {
  toml::table t = identity_table(c);
  t["run"].as_table()->insert("max_draws", static_cast<int64_t>(c.max_draws));
  t["run"].as_table()->insert("time_limit", c.time_limit);
  t.insert("exec", toml::table{{"backend", c.backend}, {"threads", c.threads}, {"batch", static_cast<int64_t>(c.batch)},
                               {"order", c.order}});
  return to_text(t);
}

}  // namespace gac
