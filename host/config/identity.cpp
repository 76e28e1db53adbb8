// The run's identity and its resolved config as canonical TOML, and the
// first difference between two identities.
#include "gac/config.h"

#include <map>
#include <sstream>
#include <toml++/toml.h>
#include <type_traits>
#include <variant>

#include "gac/text.h"
#include "host/config/keys.h"

namespace gac {
namespace {

toml::array to_array(const auto& values) {
  toml::array a;
  for (const auto& v : values) a.push_back(v);
  return a;
}

// The keys written for `c`, by section: its identity, or (resolved) all it writes.
toml::table written_table(const RunConfig& c, bool resolved) {
  toml::table out;
  for (const ConfigKey& key : config_keys()) {
    if (key.written == Written::never || (key.written == Written::resolved && !resolved)) continue;
    if (!applies(key, c) || (key.written_if && !key.written_if(c))) continue;
    const size_t dot = key.name.find('.');
    const std::string section = key.name.substr(0, dot), name = key.name.substr(dot + 1);
    if (!out.contains(section)) out.insert(section, toml::table{});
    toml::table& values = *out[section].as_table();
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>>)
            values.insert(name, to_array(v));
          else
            values.insert(name, v);
        },
        key.value.write(c));
  }
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
  for (const auto& [section, table] : written_table(c, false))
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

std::string identity_toml(const RunConfig& cfg) { return to_text(written_table(cfg, false)); }

std::string resolved_toml(const RunConfig& cfg) { return to_text(written_table(cfg, true)); }

}  // namespace gac
