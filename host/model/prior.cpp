#include <cmath>
#include <string>

#include "gac/error.h"
#include "gac/model.h"
#include "gac/prior.h"

namespace gac {

namespace {

float inverse_sqrt(int count) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(count))); }

// The paper's reset_parameters() (its utils.py): LeNet's layers keep
// PyTorch's default (kaiming_uniform(a=sqrt(5)) weights and biases, both
// bounded by 1/sqrt(fan_in)); MLPModels and LinearModels draw weights from
// U(+-1/sqrt(fan_out)) -- their weight is stored [in, out] and the bound uses
// shape[3], the outputs -- and the bias from U(-1, 1).
float regular_scale(const Model& model, const TensorInfo& t) {
  if (model.arch_name == "lenet") return inverse_sqrt(t.fan_in);
  return t.is_weight ? inverse_sqrt(t.shape[0]) : 1.0f;  // dense weights are [out, in]
}

}  // namespace

const char* prior_name(PriorKind k) {
  switch (k) {
    case PriorKind::uniform: return "uniform";
    case PriorKind::normal: return "normal";
    case PriorKind::kaiming: return "kaiming";
    case PriorKind::sphere: return "sphere";
    case PriorKind::regular: return "regular";
  }
  return "?";
}

PriorSpec make_prior_spec(const PriorConfig& p, const Model& model, uint32_t heads) {
  PriorSpec s;
  if (heads < 1 || heads > kMaxHeads)
    throw Error("sampler.heads must be between 1 and " + std::to_string(kMaxHeads) + " (got " + std::to_string(heads) + ")");
  if (heads > 1 && p.kind == PriorKind::sphere)
    throw Error("sampler.heads > 1 needs a product prior (uniform, normal, kaiming, regular): the sphere prior's one global norm "
                "ties every head to its body");
  s.heads = heads;
  s.head_begin = model.spec.layers[model.spec.n_layers - 1].w_off;
  s.kind = p.kind;
  s.sphere_radius = p.sphere_radius;
  if (model.tensors.size() > PriorSpec::kMaxTensors) throw Error("prior: model has too many tensors");
  s.n_tensors = static_cast<int32_t>(model.tensors.size());
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const TensorInfo& t = model.tensors[i];
    s.tensor_end[i] = t.offset + t.size;
    switch (p.kind) {
      case PriorKind::uniform: s.scale[i] = static_cast<float>(p.radius); break;
      case PriorKind::normal: s.scale[i] = static_cast<float>(p.sigma); break;
      case PriorKind::kaiming: s.scale[i] = inverse_sqrt(t.fan_in); break;
      case PriorKind::sphere: s.scale[i] = 1.0f; break;
      case PriorKind::regular: s.scale[i] = regular_scale(model, t); break;
    }
  }
  return s;
}

}  // namespace gac
