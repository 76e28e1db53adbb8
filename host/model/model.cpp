// Builds the layer list and the state_dict layout of each architecture.
#include <nlohmann/json.hpp>

#include "gac/error.h"
#include "gac/model.h"

namespace gac {
namespace {

class Builder {
 public:
  Builder(int c, int h, int w) : c_(c), h_(h), w_(w) {
    model_.spec.in_c = c;
    model_.spec.in_h = h;
    model_.spec.in_w = w;
    model_.spec.max_activation = c * h * w;
  }

  void dense(const std::string& name, int out, bool bias, bool relu) {
    const int in = c_ * h_ * w_;
    Layer L{LayerKind::dense, c_, h_, w_, out, 1, 1, 0, -1, -1, relu ? 1 : 0};
    L.w_off = add_tensor(name + ".weight", {out, in}, true, in);
    if (bias) L.b_off = add_tensor(name + ".bias", {out}, false, in);
    model_.flops_per_example += 2.0 * out * in;
    push(L);
  }

  void conv(const std::string& name, int out, int k, bool relu) {
    if (h_ < k || w_ < k)
      throw Error("model: input of " + shape() + " is too small for the " + std::to_string(k) + "x" +
                  std::to_string(k) + " convolution " + name);
    const int fan_in = c_ * k * k;
    Layer L{LayerKind::conv, c_, h_, w_, out, h_ - k + 1, w_ - k + 1, k, -1, -1, relu ? 1 : 0};
    L.w_off = add_tensor(name + ".weight", {out, c_, k, k}, true, fan_in);
    L.b_off = add_tensor(name + ".bias", {out}, false, fan_in);
    model_.flops_per_example += 2.0 * L.out_size() * fan_in;
    push(L);
  }

  void maxpool2() {
    if (h_ < 2 || w_ < 2) throw Error("model: input of " + shape() + " is too small for 2x2 max pooling");
    push(Layer{LayerKind::maxpool2, c_, h_, w_, c_, h_ / 2, w_ / 2, 2, -1, -1, 0});
  }

  Model finish(const std::string& arch, int n_classes, float norm_divisor) {
    model_.arch_name = arch;
    model_.spec.n_classes = n_classes;
    model_.spec.norm_divisor = norm_divisor;
    return model_;
  }

 private:
  std::string shape() const {
    return std::to_string(c_) + "x" + std::to_string(h_) + "x" + std::to_string(w_);
  }

  int add_tensor(const std::string& name, std::vector<int> shape, bool is_weight, int fan_in) {
    int size = 1;
    for (int d : shape) size *= d;
    const int offset = model_.spec.n_params;
    model_.tensors.push_back({name, std::move(shape), offset, size, is_weight, fan_in});
    model_.spec.n_params += size;
    return offset;
  }

  void push(const Layer& L) {
    ModelSpec& s = model_.spec;
    if (s.n_layers == ModelSpec::kMaxLayers)
      throw Error("model: more than " + std::to_string(ModelSpec::kMaxLayers) + " layers");
    s.layers[s.n_layers++] = L;
    s.max_activation = std::max(s.max_activation, L.out_size());
    c_ = L.out_c;
    h_ = L.out_h;
    w_ = L.out_w;
  }

  int c_, h_, w_;
  Model model_;
};

}  // namespace

Arch parse_arch(const std::string& name) {
  if (name == "linear") return Arch::linear;
  if (name == "mlp") return Arch::mlp;
  if (name == "lenet") return Arch::lenet;
  throw Error("model.arch: unknown architecture '" + name + "' (expected linear, mlp or lenet)");
}

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::linear: return "linear";
    case Arch::mlp: return "mlp";
    case Arch::lenet: return "lenet";
  }
  return "?";
}

Model build_model(const ModelConfig& cfg, int in_c, int in_h, int in_w, int n_classes) {
  if (n_classes < 2) throw Error("model: need at least 2 classes, got " + std::to_string(n_classes));
  Builder b(in_c, in_h, in_w);
  switch (cfg.arch) {
    case Arch::linear:
      b.dense("fc", n_classes, true, false);
      return b.finish("linear", n_classes, 1.0f);
    case Arch::mlp: {
      if (cfg.layers < 1) throw Error("model.layers must be at least 1, got " + std::to_string(cfg.layers));
      if (cfg.hidden < 1) throw Error("model.hidden must be at least 1, got " + std::to_string(cfg.hidden));
      // nn.Sequential numbering: Linear at even indices, ReLU between them.
      for (int l = 0; l < cfg.layers; ++l) b.dense("layers." + std::to_string(2 * l), cfg.hidden, cfg.hidden_bias, true);
      b.dense("layers." + std::to_string(2 * cfg.layers), n_classes, true, false);
      return b.finish("mlp", n_classes, 1.0f);
    }
    case Arch::lenet: {
      if (in_h == 1)
        throw Error("model: lenet needs image inputs (c x h x w), but the data has flat features of size " +
                    std::to_string(in_c * in_w) + " (give data.shape for flat image data)");
      const auto scaled = [&](int units) {
        const int v = static_cast<int>(units * cfg.width);
        if (v < 1) throw Error("model.width = " + std::to_string(cfg.width) + " leaves a layer with no units");
        return v;
      };
      b.conv("conv1", scaled(6), 5, true);
      b.maxpool2();
      b.conv("conv2", scaled(16), 5, true);
      b.maxpool2();
      b.dense("fc1", scaled(120), true, true);
      b.dense("fc2", scaled(84), true, true);
      b.dense("fc3", n_classes, true, false);
      return b.finish("lenet", n_classes, 3.0f);  // the paper's code divides each layer norm by 3
    }
  }
  throw Error("model: unknown architecture");
}

std::string layout_json(const Model& model) {
  nlohmann::ordered_json j;
  j["arch"] = model.arch_name;
  j["n_params"] = model.spec.n_params;
  j["input_shape"] = {model.spec.in_c, model.spec.in_h, model.spec.in_w};
  j["n_classes"] = model.spec.n_classes;
  j["dtype"] = "float32";
  auto& tensors = j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : model.tensors)
    tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"offset", t.offset}, {"size", t.size}});
  return j.dump(2) + "\n";
}

}  // namespace gac
