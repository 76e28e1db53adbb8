// The keys a config may set: each one's setter, which checks the value's type
// and range, and the data kinds, architectures, priors or optimizer a key
// applies to.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "gac/config.h"

namespace gac {

// Throws gac::Error "config: KEY: WHAT".
[[noreturn]] void bad(const std::string& key, const std::string& what);

using Setter = std::function<void(RunConfig&, const toml::node&, const std::string& key)>;

const std::map<std::string, Setter>& setters();

// Keys that mean something only for some data kinds, architectures or priors.
// Given for another, they would be ignored without a word: they are refused,
// except the config file's keys when a --set override chose another kind
// (`--set model.arch=lenet` on an MLP config replaces the MLP and its keys).
struct KeyScope {
  std::string setting;              // the key it depends on
  std::vector<std::string> values;  // the values of that key it applies to
};

const std::map<std::string, KeyScope>& key_scopes();

}  // namespace gac
