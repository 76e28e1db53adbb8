// The table of config keys, one row per key (see keys.h), and the checked
// reading of each kind of value.
#include "host/config/keys.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <type_traits>

#include "gac/error.h"
#include "gac/text.h"
#include "host/config/device_list.h"

namespace gac {

void bad(const std::string& key, const std::string& what) { throw Error("config: " + key + ": " + what); }

namespace {

constexpr int kMaxTasks = 1 << 20;

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

std::string get_choice(const toml::node& v, const std::string& key, const std::vector<std::string>& choices) {
  const std::string s = get_string(v, key);
  std::string list;
  for (const std::string& c : choices) {
    if (s == c) return s;
    list += list.empty() ? c : ", " + c;
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

// exec.devices as written, "all" or "0,2"; a device number or an array of them
// (as 0 or [0, 2], the natural TOML) reads as the same text.
std::string get_device_list(const toml::node& v, const std::string& key) {
  std::string text;
  if (v.is_string()) text = v.as_string()->get();
  else if (v.is_integer() || v.is_array()) {
    for (const int d : get_int_list(v, key, 0, 999999)) {
      if (!text.empty()) text += ',';
      text += std::to_string(d);
    }
  } else {
    bad(key, "expected \"all\", a device number or an array of them, got " + type_name(v));
  }
  if (const std::string why = device_list_problem(text); !why.empty()) bad(key, why);
  return text;
}

// Readers of a checked value for the table below, each called as read(value, key).
auto integer(int64_t lo, int64_t hi) {
  return [lo, hi](const toml::node& v, const std::string& k) { return get_int(v, k, lo, hi); };
}
auto integers(int lo, int hi) {
  return [lo, hi](const toml::node& v, const std::string& k) { return get_int_list(v, k, lo, hi); };
}
auto choice(std::vector<std::string> choices) {
  return [choices](const toml::node& v, const std::string& k) { return get_choice(v, k, choices); };
}

template <class T>
TomlValue toml_value(const T& v) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, double> || std::is_same_v<T, std::string> ||
                std::is_same_v<T, std::vector<double>>)
    return v;
  else if constexpr (std::is_integral_v<T>)
    return static_cast<int64_t>(v);
  else
    return std::vector<int64_t>(v.begin(), v.end());
}

// A value kept as it is in one member of RunConfig (field(c) is that member):
// read with `read`, then checked against the rest of the key's rules by
// `check` (if any), and written as it is.
template <class Field, class Read>
KeyValue stored(Field field, Read read, void (*check)(const RunConfig& c, const std::string& key) = nullptr) {
  return {[field, read, check](RunConfig& c, const toml::node& v, const std::string& k) {
            auto& member = field(c);
            member = static_cast<std::remove_reference_t<decltype(member)>>(read(v, k));
            if (check) check(c, k);
          },
          [field](const RunConfig& c) { return toml_value(field(c)); }};
}

// An enum member written as its name (name(value)), read from one of the names of `values`.
template <class Field, class E>
KeyValue named(Field field, std::vector<E> values, const char* (*name)(E)) {
  std::vector<std::string> names;
  for (E e : values) names.push_back(name(e));
  return {[field, values, names](RunConfig& c, const toml::node& v, const std::string& k) {
            const std::string s = get_choice(v, k, names);
            field(c) = values[std::find(names.begin(), names.end(), s) - names.begin()];
          },
          [field, name](const RunConfig& c) -> TomlValue { return std::string(name(field(c))); }};
}

// data.classes: a list of labels, or "all" (written so when the list is empty).
KeyValue class_list() {
  return {[](RunConfig& c, const toml::node& v, const std::string& k) {
            if (v.is_string()) {
              if (get_string(v, k) != "all") bad(k, "expected an array of labels, \"all\", or use data.random_classes");
              c.data.classes.clear();
            } else {
              c.data.classes = get_int_list(v, k, 0, 1 << 30);
            }
          },
          [](const RunConfig& c) -> TomlValue {
            if (c.data.classes.empty()) return std::string("all");
            return toml_value(c.data.classes);
          }};
}

// run.shard: a task index or "all" (-1: every task's units). A run of one
// task is written as task 0, whatever was given.
KeyValue task_index() {
  return {[](RunConfig& c, const toml::node& v, const std::string& k) {
            if (v.is_string() && get_string(v, k) == "all") c.task = -1;
            else if (v.is_string()) bad(k, "expected a task index or \"all\"");
            else c.task = static_cast<int>(get_int(v, k, 0, kMaxTasks - 1));
          },
          [](const RunConfig& c) -> TomlValue {
            if (c.tasks == 1) return int64_t{0};
            if (c.task < 0) return std::string("all");
            return int64_t{c.task};
          }};
}

const char* loss_name(LossKind loss) { return loss == LossKind::raw ? "raw" : "normalized"; }

}  // namespace

// The member of RunConfig a key is kept in.
#define FIELD(member) [](auto& c) -> auto& { return c.member; }

const std::vector<ConfigKey>& config_keys() {
  static const Scope labeled{"data.kind", {"idx", "cifar10", "npy", "csv"}};  // data sets with labels (not kink, slab)
  static const Scope npy{"data.kind", {"npy"}}, csv{"data.kind", {"csv"}}, npy_csv{"data.kind", {"npy", "csv"}};
  static const Scope mlp{"model.arch", {"mlp"}}, sgd{"optimizer.kind", {"sgd"}};
  static const Scope search{"optimizer.kind", {"pattern", "greedy"}}, pattern{"optimizer.kind", {"pattern"}};
  static const std::vector<ConfigKey> keys = {
      // [data]
      {"data.kind", stored(FIELD(data.kind), choice({"idx", "cifar10", "npy", "csv", "kink", "slab"}))},
      {"data.path", stored(FIELD(data.path), get_string), {"data.kind", {"idx", "cifar10"}}},
      {"data.prefix", stored(FIELD(data.prefix), get_string), {"data.kind", {"idx"}}},
      {"data.classes", class_list(), labeled, Written::identity, [](const RunConfig& c) { return c.data.random_classes == 0; }},
      {"data.random_classes", stored(FIELD(data.random_classes), integer(0, 1 << 20)), labeled, Written::identity,
       [](const RunConfig& c) { return c.data.random_classes > 0; }},
      {"data.class_draw", stored(FIELD(data.class_draw), choice({"per_training_set", "per_run"})), labeled,
       Written::identity, [](const RunConfig& c) { return c.data.random_classes > 0; }},
      {"data.statistics", stored(FIELD(data.statistics), choice({"all", "classes"})), labeled, Written::identity,
       [](const RunConfig& c) { return c.data.kind == "idx" || c.data.kind == "cifar10" || c.data.standardize; }},
      {"data.train_x", stored(FIELD(data.train_x), get_string), npy},
      {"data.train_y", stored(FIELD(data.train_y), get_string), npy},
      {"data.test_x", stored(FIELD(data.test_x), get_string), npy},
      {"data.test_y", stored(FIELD(data.test_y), get_string), npy},
      {"data.train_file", stored(FIELD(data.train_file), get_string), csv},
      {"data.test_file", stored(FIELD(data.test_file), get_string), csv},
      {"data.label_column", stored(FIELD(data.label_column), integer(-1, 1 << 20)), csv},
      {"data.shape", stored(FIELD(data.shape), integers(1, 1 << 20),
                            [](const RunConfig& c, const std::string& k) {
                              if (c.data.shape.size() != 3) bad(k, "expected [channels, height, width]");
                            }),
       npy_csv, Written::identity, [](const RunConfig& c) { return !c.data.shape.empty(); }},
      {"data.standardize", stored(FIELD(data.standardize), get_bool), npy_csv},
      {"data.test_size", stored(FIELD(data.test_size), integer(1, 1 << 30)), {"data.kind", {"kink", "slab"}}},
      {"data.margin", stored(FIELD(data.margin), get_positive), {"data.kind", {"kink"}}},
      // [model]
      {"model.arch", named(FIELD(model.arch), std::vector{Arch::linear, Arch::mlp, Arch::lenet}, arch_name)},
      {"model.hidden", stored(FIELD(model.hidden), integer(1, 1 << 16)), mlp},
      {"model.layers", stored(FIELD(model.layers), integer(1, 12)), mlp},
      {"model.hidden_bias", stored(FIELD(model.hidden_bias), get_bool), mlp},
      {"model.width", stored(FIELD(model.width), get_positive), {"model.arch", {"lenet"}}},
      // [prior]
      {"prior.kind", named(FIELD(prior.kind),
                           std::vector{PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::sphere,
                                       PriorKind::regular},
                           prior_name)},
      {"prior.radius", stored(FIELD(prior.radius), get_positive), {"prior.kind", {"uniform"}}},
      {"prior.sigma", stored(FIELD(prior.sigma), get_positive), {"prior.kind", {"normal"}}},
      {"prior.sphere_radius", stored(FIELD(prior.sphere_radius), get_positive), {"prior.kind", {"sphere"}}},
      // [optimizer]: a guess-and-check run writes none, so directories made before it existed still open
      {"optimizer.kind", stored(FIELD(optimizer), choice({"guess", "sgd", "pattern", "greedy"})), {}, Written::identity,
       [](const RunConfig& c) { return c.optimizer != "guess"; }},
      {"optimizer.lr", stored(FIELD(sgd.lr), get_positive,
                              [](const RunConfig& c, const std::string& k) {
                                const float lr = static_cast<float>(c.sgd.lr);  // SGD trains in float
                                if (!(lr > 0) || !std::isfinite(lr)) bad(k, shortest(c.sgd.lr) + " is not a positive float");
                              }),
       sgd},
      {"optimizer.momentum", stored(FIELD(sgd.momentum), get_number,
                                    [](const RunConfig& c, const std::string& k) {
                                      if (!(c.sgd.momentum >= 0 && c.sgd.momentum < 1))
                                        bad(k, "must be in [0, 1), got " + shortest(c.sgd.momentum));
                                    }),
       sgd},
      {"optimizer.batch_size", stored(FIELD(sgd.batch_size), integer(1, 1 << 24)), sgd},
      {"optimizer.epochs", stored(FIELD(sgd.epochs), integer(0, 1 << 24)), sgd},
      // written only when on, so SGD directories made before it existed still open
      {"optimizer.poison_repeats", stored(FIELD(sgd.poison_repeats), integer(0, 1 << 16)), sgd, Written::identity,
       [](const RunConfig& c) { return c.sgd.poison_repeats > 0; }},
      // [sampler]: a plain run (heads = 1) writes none, so directories made before it existed still open
      {"sampler.heads", stored(FIELD(heads), integer(1, kMaxHeads)), {}, Written::identity,
       [](const RunConfig& c) { return c.heads > 1; }},
      {"optimizer.budget", stored(FIELD(search.budget), integer(1, int64_t{1} << 40)), search},
      {"optimizer.max_calls", stored(FIELD(search.max_calls), integer(1, int64_t{1} << 40)), search},
      {"optimizer.check_every", stored(FIELD(search.check_every), integer(0, int64_t{1} << 40)), search},
      // how candidates are evaluated, not what they give: not part of the identity
      {"optimizer.incremental", stored(FIELD(search.incremental), get_bool), pattern, Written::resolved},
      // [run]
      {"run.seed", stored(FIELD(seed), integer(0, INT64_MAX))},
      {"run.n", stored(FIELD(ns), integers(1, 1 << 24))},
      {"run.repeats", stored(FIELD(repeats), integer(1, 1 << 20))},
      {"run.bins", stored(FIELD(bins), get_number_list)},
      {"run.target", stored(FIELD(target), integer(1, 1 << 24))},
      {"run.loss", named(FIELD(loss), std::vector{LossKind::normalized, LossKind::raw}, loss_name)},
      {"run.early_reject", stored(FIELD(early_reject), get_bool)},
      {"run.shards", stored(FIELD(tasks), integer(1, kMaxTasks)), {}, Written::identity,
       [](const RunConfig& c) { return c.tasks > 1; }},
      {"run.shard", task_index()},
      // [run] stopping rules: not part of the identity, so a stopped run can be extended
      {"run.max_draws", stored(FIELD(max_draws), integer(1, INT64_MAX)), {}, Written::resolved},
      {"run.time_limit", stored(FIELD(time_limit), get_number,
                                [](const RunConfig& c, const std::string& k) {
                                  if (c.time_limit < 0) bad(k, "must be >= 0 (0 = no limit)");
                                }),
       {}, Written::resolved},
      // [exec]: how to run, never what is found
      {"exec.backend", stored(FIELD(backend), choice({"auto", "cpu", "cuda"})), {}, Written::resolved},
      {"exec.devices", stored(FIELD(devices), get_device_list), {}, Written::resolved},
      {"exec.threads", stored(FIELD(threads), integer(0, 4096)), {}, Written::resolved},
      {"exec.batch", stored(FIELD(batch), integer(0, int64_t{1} << 32)), {}, Written::resolved},
      {"exec.commit_bytes", stored(FIELD(commit_bytes), integer(1, int64_t{1} << 50)), {}, Written::resolved},
      {"exec.checkpoint_seconds", stored(FIELD(checkpoint_seconds), get_number,
                                         [](const RunConfig& c, const std::string& k) {
                                           if (!(c.checkpoint_seconds >= 0)) bad(k, "must be >= 0 (0 = after every call)");
                                         }),
       search, Written::resolved},
      {"exec.order", stored(FIELD(order), choice({"interleaved", "sequential"})), {}, Written::resolved},
      {"exec.output", stored(FIELD(output), get_string), {}, Written::never},
  };
  return keys;
}

#undef FIELD

const ConfigKey* find_config_key(const std::string& name) {
  static const std::map<std::string, const ConfigKey*> index = [] {
    std::map<std::string, const ConfigKey*> out;
    for (const ConfigKey& key : config_keys()) out[key.name] = &key;
    return out;
  }();
  const auto it = index.find(name);
  return it == index.end() ? nullptr : it->second;
}

std::string scope_setting_value(const Scope& scope, const RunConfig& c) {
  return std::get<std::string>(find_config_key(scope.setting)->value.write(c));
}

bool applies(const ConfigKey& key, const RunConfig& c) {
  const Scope& scope = key.scope;
  if (scope.setting.empty()) return true;
  return std::ranges::find(scope.values, scope_setting_value(scope, c)) != scope.values.end();
}

}  // namespace gac
