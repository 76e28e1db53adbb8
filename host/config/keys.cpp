#include "host/config/keys.h"

#include <cmath>

#include "gac/error.h"
#include "gac/text.h"

namespace gac {

void bad(const std::string& key, const std::string& what) { throw Error("config: " + key + ": " + what); }

namespace {

constexpr int kMaxShards = 1 << 20;

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

}  // namespace

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

}  // namespace gac
