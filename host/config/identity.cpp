// The run's identity and its resolved config as canonical TOML, and the
// first difference between two identities.
#include "gac/config.h"

#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "gac/text.h"

namespace gac {
namespace {

toml::array to_array(const auto& values) {
  toml::array a;
  for (const auto& v : values) a.push_back(v);
  return a;
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
