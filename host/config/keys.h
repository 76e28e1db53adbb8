// Every key a config may set, one row each (host/config/keys.cpp): how its
// value is read and checked, where it applies, whether it is part of the
// run's identity, and how it is written to config.toml. A new key is one new
// row, plus its line in docs/configuration.md (a test holds the two together).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <toml++/toml.h>
#include <variant>
#include <vector>

#include "gac/config.h"

namespace gac {

// A value as config.toml holds it.
using TomlValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

// How a key's value gets into a RunConfig and back out.
struct KeyValue {
  // Checks the TOML value's type and range and stores it; throws gac::Error naming `key`.
  std::function<void(RunConfig& c, const toml::node& value, const std::string& key)> read;
  std::function<TomlValue(const RunConfig& c)> write;
};

// Where a key means something: for some values of another key (a data kind,
// an architecture, a prior, the optimizer), or for every run. Given for
// another, it would be ignored without a word, so it is refused (parse.cpp,
// check_keys_apply); it is never written there.
struct Scope {
  std::string setting;              // the key it depends on; "": every run
  std::vector<std::string> values;  // the values of that key it applies to
};

// Where a key is written: in the run's identity (what its results depend
// on: DIR/config.toml, compared when the directory is opened again), only in
// the resolved config (the stopping rules and [exec]: what was run), or
// nowhere (exec.output, where the run directory is).
enum class Written { identity, resolved, never };

struct ConfigKey {
  std::string name;  // "section.key", as in a TOML file and in --set
  KeyValue value;
  Scope scope = {};  // default: every run
  Written written = Written::identity;
  // Within its scope, the configs it is written for (nullptr: all of them).
  bool (*written_if)(const RunConfig& c) = nullptr;
};

// Every key, in the order of docs/configuration.md.
const std::vector<ConfigKey>& config_keys();

// The row of `name`; nullptr when there is none.
const ConfigKey* find_config_key(const std::string& name);

// Whether `key` means something for `c` (its scope).
bool applies(const ConfigKey& key, const RunConfig& c);

// The value of `c`'s key that `scope` depends on, as written ("kink", "mlp", ...).
std::string scope_setting_value(const Scope& scope, const RunConfig& c);

// Throws gac::Error "config: KEY: WHAT".
[[noreturn]] void bad(const std::string& key, const std::string& what);

}  // namespace gac
