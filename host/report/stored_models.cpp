#include "host/report/stored_models.h"

#include "gac/config.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"

namespace gac {

ModelSpec stored_model_spec(const Store& store) {
  return prepare_experiment(parse_config(store.config_toml(), (store.dir() / "config.toml").string())).model.spec;
}

std::vector<float> stored_params(const Store& store, const StoredModel& m, const ModelSpec& spec, const std::string& what) {
  const NpyArray weights = read_npy(store.dir() / m.file);
  if (weights.data.size() != static_cast<size_t>(spec.n_params))
    throw Error(what + ": " + (store.dir() / m.file).string() + " holds " + std::to_string(weights.data.size()) +
                " numbers, the model has " + std::to_string(spec.n_params) + " parameters");
  return std::vector<float>(weights.data.begin(), weights.data.end());
}

}  // namespace gac
